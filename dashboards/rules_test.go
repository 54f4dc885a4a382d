package dashboards

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtool returns promtool's path. make test installs it and sets
// TGSAFETY_REQUIRE_PROMTOOL=1, so CI fails rather than skips without it.
func promtool(t *testing.T) string {
	t.Helper()
	return requireBinary(t, "promtool")
}

func requireBinary(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("TGSAFETY_REQUIRE_PROMTOOL") != "" {
			t.Fatalf("%s not found but TGSAFETY_REQUIRE_PROMTOOL is set (make test installs Debian's prometheus package)", name)
		}
		t.Skipf("%s not installed; run make test, which installs Debian's prometheus package", name)
	}
	return path
}

func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	out := runPromtool(t, "check", "rules", filepath.Join("generated", PrometheusRulesFile))
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(Alerts())); !strings.Contains(out, want) {
		t.Fatalf("promtool check rules: %s, want %q", out, want)
	}
}

// TestPromtoolTestRules runs the alerts' unit tests: series that must fire
// with exact labels and rendered annotations, and series that must not.
func TestPromtoolTestRules(t *testing.T) {
	out := runPromtool(t, "test", "rules", filepath.Join("testdata", "alerts_test.yml"))
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules: %s", out)
	}
}

// TestAlertsAreUnitTested: every alert has a firing case in
// testdata/alerts_test.yml, so a new alert cannot ship untested.
func TestAlertsAreUnitTested(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range Alerts() {
		if !regexp.MustCompile(`alertname: ` + a.Name + `\n\s+exp_alerts:\n\s+- exp_labels`).Match(b) {
			t.Errorf("%s has no firing case in testdata/alerts_test.yml", a.Name)
		}
	}
}

// grafanaVariables are the values dashboard variables take when their
// queries are checked outside Grafana.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m",
	"${datasource}", "prometheus",
	"$job", ".+", "$instance", ".+", "$account", ".+",
)

// TestEveryExpressionParses hands promtool every dashboard query (with
// the variables replaced) and every variable's selector as alerting
// rules: check rules parses each expression with Prometheus's own parser.
func TestEveryExpressionParses(t *testing.T) {
	type rule struct {
		Alert string `yaml:"alert"`
		Expr  string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range dashboardQueries(t) {
		expr := grafanaVariables.Replace(q.expr)
		if q.variable {
			m := labelValuesRE.FindStringSubmatch(expr)
			if m == nil {
				t.Fatalf("%s: %q is not label_values(selector, label)", q.where, q.expr)
			}
			expr = m[1]
		}
		if strings.Contains(expr, "$") {
			t.Errorf("%s: unreplaced variable in %q", q.where, expr)
		}
		rules = append(rules, rule{Alert: fmt.Sprintf("Q%d", i), Expr: expr})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out := runPromtool(t, "check", "rules", path)
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(rules)); !strings.Contains(out, want) {
		t.Fatalf("%s, want %q", out, want)
	}
}

// TestAlertDefinitions: what every alert must carry, and that the Grafana
// rendering says the same as the Prometheus one.
func TestAlertDefinitions(t *testing.T) {
	runbook, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	uids := map[string]bool{}
	for _, a := range Alerts() {
		if !regexp.MustCompile(`^Tgsafety[A-Z][A-Za-z]+$`).MatchString(a.Name) || names[a.Name] {
			t.Errorf("alert name %q: want unique CamelCase with the Tgsafety prefix", a.Name)
		}
		names[a.Name] = true
		if a.Severity != SeverityCritical && a.Severity != SeverityWarning {
			t.Errorf("%s: severity %q", a.Name, a.Severity)
		}
		if a.Summary == "" || strings.Contains(a.Summary, "{{") {
			t.Errorf("%s: summary must be static text: %q", a.Name, a.Summary)
		}
		// absent() returns a series without labels: nothing to template.
		if !strings.HasPrefix(a.Expr, "absent(") && !strings.Contains(a.Description, "{{ $labels.") {
			t.Errorf("%s: description is not templated on the series' labels", a.Name)
		}
		if !bytes.Contains(runbook, []byte("\n## "+a.Name+"\n")) {
			t.Errorf("docs/runbook.md has no section \"## %s\" for %s", a.Name, a.RunbookAnchor())
		}
		if u := ruleUID(a); len(u) > 40 || uids[u] {
			t.Errorf("%s: Grafana uid %q too long or duplicate", a.Name, u)
		}
		uids[ruleUID(a)] = true
	}

	groups, err := GrafanaRuleGroups(Alerts())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range groups {
		for _, r := range g.Rules {
			n++
			d := r.Annotations["description"]
			if strings.Contains(strings.ReplaceAll(d, "$values.A.Value", ""), "$value") {
				t.Errorf("%s: Grafana description still uses $value: %s", r.Title, d)
			}
			if r.Labels["severity"] == "" || r.Annotations["runbook_url"] == "" || r.Condition != "C" || len(r.Data) != 3 {
				t.Errorf("%s: incomplete Grafana rule", r.Title)
			}
		}
	}
	if n != len(Alerts()) {
		t.Errorf("%d Grafana rules for %d alerts", n, len(Alerts()))
	}
}

// TestGrafanaProvisioningInterpolation: Grafana expands environment
// variables ($NAME) everywhere in an alerting provisioning file except in
// annotations, so a '$' elsewhere would be silently replaced.
func TestGrafanaProvisioningInterpolation(t *testing.T) {
	var doc struct {
		Groups []struct {
			Rules []map[string]any `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(generated(t)[GrafanaProvisioningFile], &doc); err != nil {
		t.Fatal(err)
	}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			for k, v := range r {
				if k == "annotations" || k == "data" {
					continue
				}
				if s := fmt.Sprint(v); strings.Contains(s, "$") {
					t.Errorf("rule %v field %s contains '$': %s", r["title"], k, s)
				}
			}
			for _, q := range r["data"].([]any) {
				q := q.(map[string]any)
				if q["refId"] == "A" && strings.Contains(fmt.Sprint(q), "$") {
					t.Errorf("rule %v: PromQL query contains '$': %v", r["title"], q)
				}
			}
		}
	}
}
