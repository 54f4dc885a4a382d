package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Generated file names, in dashboards/generated/.
const (
	FleetFile               = "tgsafety-fleet.json"
	AccountFile             = "tgsafety-account.json"
	PrometheusRulesFile     = "tgsafety-alerts.rules.yml"
	GrafanaRuleGroupsFile   = "tgsafety-grafana-rule-groups.json"
	GrafanaProvisioningFile = "tgsafety-grafana-alert-rules.yaml"
)

// Files renders every generated file: both dashboards (v1 JSON, as
// Grafana's import, file provisioning and /api/dashboards/db take it), the
// Prometheus rule file, the Grafana rule groups (provisioning API shape)
// and the Grafana alerting provisioning file. The output is deterministic,
// so a test can compare it with the committed files.
func Files() (map[string][]byte, error) {
	out := map[string][]byte{}
	fleet, err := Fleet()
	if err != nil {
		return nil, fmt.Errorf("fleet dashboard: %w", err)
	}
	account, err := Account()
	if err != nil {
		return nil, fmt.Errorf("account dashboard: %w", err)
	}
	for name, v := range map[string]any{FleetFile: fleet, AccountFile: account} {
		if out[name], err = marshalJSON(v); err != nil {
			return nil, err
		}
	}
	as := Alerts()
	if out[PrometheusRulesFile], err = PrometheusRules(as); err != nil {
		return nil, err
	}
	groups, err := GrafanaRuleGroups(as)
	if err != nil {
		return nil, err
	}
	if out[GrafanaRuleGroupsFile], err = marshalJSON(groups); err != nil {
		return nil, err
	}
	if out[GrafanaProvisioningFile], err = GrafanaProvisioning(groups); err != nil {
		return nil, err
	}
	return out, nil
}

func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write writes Files into dir, creating it, and returns the names written.
func Write(dir string) ([]string, error) {
	files, err := Files()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var names []string
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}
