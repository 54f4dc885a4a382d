package dashboards

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// This file checks PromQL expressions against the metrics a real registry
// exports. promtool (rules_test.go) proves they parse; the checks here
// need to know which names are metrics, labels and functions, which a
// small tokenizer tells well enough for the expressions tgsafety writes.
// It is deliberately not a PromQL parser: the prometheus module is huge,
// and an expression this tokenizer misreads fails the test rather than
// passing it.

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tNumber
	tRange // the text between [ and ]
	tPunct
)

type token struct {
	kind tokKind
	text string
}

func tokenize(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(s) && rune(s[j]) != c {
				if s[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, token{tString, s[i+1 : j]})
			i = j + 1
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unterminated range at %d", i)
			}
			out = append(out, token{tRange, s[i+1 : i+j]})
			i += j + 1
		case unicode.IsDigit(c) || (c == '.' && i+1 < len(s) && unicode.IsDigit(rune(s[i+1]))):
			j := i
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || strings.ContainsRune(".eE", rune(s[j])) ||
				((s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E'))) {
				j++
			}
			// A duration (30m, 1d, 5m30s) is one number token.
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || strings.ContainsRune("smhdwy", rune(s[j]))) {
				j++
			}
			out = append(out, token{tNumber, s[i:j]})
			i = j
		case c == '$':
			// A Grafana variable standing for a duration (offset
			// $__rate_interval); in strings and ranges it never gets here.
			j := i + 1
			for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || s[j] == '_') {
				j++
			}
			out = append(out, token{tNumber, s[i:j]})
			i = j
		case unicode.IsLetter(c) || c == '_' || c == ':':
			j := i
			for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || s[j] == '_' || s[j] == ':') {
				j++
			}
			out = append(out, token{tIdent, s[i:j]})
			i = j
		default:
			op := s[i : i+1]
			for _, two := range []string{"=~", "!~", "!=", "==", ">=", "<="} {
				if strings.HasPrefix(s[i:], two) {
					op = two
				}
			}
			if !strings.Contains("(){},=~!<>+-*/%^", op[:1]) {
				return nil, fmt.Errorf("unexpected %q at %d", op, i)
			}
			out = append(out, token{tPunct, op})
			i += len(op)
		}
	}
	return out, nil
}

// keywords are identifiers that are neither metrics nor functions.
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "offset": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

// functions are the PromQL functions and aggregations tgsafety may use.
var functions = map[string]bool{
	"sum": true, "max": true, "min": true, "count": true, "avg": true, "topk": true, "bottomk": true,
	"rate": true, "irate": true, "increase": true, "max_over_time": true, "min_over_time": true, "last_over_time": true,
	"histogram_quantile": true, "time": true, "vector": true, "absent": true, "clamp_min": true,
	"label_values": true, // Grafana's variable query function
}

// counterFunctions need counters (or histogram series, which are counters).
var counterFunctions = map[string]bool{"rate": true, "irate": true, "increase": true}

// targetLabels are attached by Prometheus to every scraped series.
var targetLabels = map[string]bool{"job": true, "instance": true}

// metricUse is one metric selector in an expression.
type metricUse struct {
	name     string
	matchers []string // label names
	inFunc   string   // the innermost enclosing function, "" at top level
}

type analysis struct {
	metrics  []metricUse
	grouping []string // labels named by by/without/on/ignoring/group_*
	ranges   []string
}

func analyse(expr string) (analysis, error) {
	toks, err := tokenize(expr)
	if err != nil {
		return analysis{}, err
	}
	var a analysis
	var stack []string // open parentheses: function name or ""
	pending := ""      // an aggregation whose "(" comes after its by (...) list
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		next := func(k int) token {
			if i+k < len(toks) {
				return toks[i+k]
			}
			return token{tPunct, ""}
		}
		switch {
		case t.kind == tRange:
			a.ranges = append(a.ranges, t.text)
		case t.kind == tPunct && t.text == "(":
			stack = append(stack, pending)
			pending = ""
		case t.kind == tPunct && t.text == ")":
			if len(stack) == 0 {
				return a, fmt.Errorf("unbalanced )")
			}
			stack = stack[:len(stack)-1]
		case t.kind == tIdent && keywords[t.text]:
			switch t.text {
			case "by", "without", "on", "ignoring", "group_left", "group_right":
				if next(1).text != "(" {
					if t.text == "group_left" || t.text == "group_right" {
						continue
					}
					return a, fmt.Errorf("%s without a label list", t.text)
				}
				j := i + 2
				for ; j < len(toks) && toks[j].text != ")"; j++ {
					if toks[j].kind == tIdent {
						a.grouping = append(a.grouping, toks[j].text)
					} else if toks[j].text != "," {
						return a, fmt.Errorf("unexpected %q in %s list", toks[j].text, t.text)
					}
				}
				i = j
			}
		case t.kind == tIdent && functions[t.text] && (next(1).text == "by" || next(1).text == "without"):
			pending = t.text
		case t.kind == tIdent && next(1).text == "(":
			if !functions[t.text] {
				return a, fmt.Errorf("unknown function %s", t.text)
			}
			stack = append(stack, t.text)
			i++
		case t.kind == tIdent:
			u := metricUse{name: t.text}
			for k := len(stack) - 1; k >= 0; k-- {
				if stack[k] != "" {
					u.inFunc = stack[k]
					break
				}
			}
			if next(1).text == "{" {
				j := i + 2
				for ; j < len(toks) && toks[j].text != "}"; j++ {
					if toks[j].kind == tIdent {
						u.matchers = append(u.matchers, toks[j].text)
						op, val := toks[j+1], toks[j+2]
						if op.kind != tPunct || val.kind != tString {
							return a, fmt.Errorf("bad matcher on %s", u.name)
						}
						j += 2
					} else if toks[j].text != "," {
						return a, fmt.Errorf("unexpected %q in %s{}", toks[j].text, u.name)
					}
				}
				i = j
			}
			a.metrics = append(a.metrics, u)
		}
	}
	if len(stack) != 0 {
		return a, fmt.Errorf("unbalanced (")
	}
	return a, nil
}

// family resolves a series name to its exported family: a histogram's
// _bucket, _sum and _count series belong to the histogram, and _bucket
// adds the le label. up is synthesised by Prometheus for every target.
func family(reg map[string]exported, name string) (exported, bool) {
	if name == "up" {
		return exported{typ: "gauge", labels: map[string]bool{}}, true
	}
	if name == "process_start_time_seconds" {
		// client_golang's process collector, which safetyd registers
		// (and a library user's default registry has).
		return exported{typ: "gauge", labels: map[string]bool{}}, true
	}
	if e, ok := reg[name]; ok {
		return e, e.typ != "histogram" // a histogram is only queried through its series
	}
	for _, sfx := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, sfx); ok {
			if e, ok := reg[base]; ok && e.typ == "histogram" {
				ls := map[string]bool{}
				for l := range e.labels {
					ls[l] = true
				}
				if sfx == "_bucket" {
					ls["le"] = true
				}
				return exported{typ: "counter", labels: ls}, true
			}
		}
	}
	return exported{}, false
}

// Label references: {{label}} in a legend, $labels.label in an alert's
// description.
var (
	legendLabelRE = regexp.MustCompile(`{{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*}}`)
	alertLabelRE  = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
	labelValuesRE = regexp.MustCompile(`^label_values\((.*), *([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
)

func legendLabels(legend string) []string { return submatches(legendLabelRE, legend) }

func alertLabels(description string) []string { return submatches(alertLabelRE, description) }

func submatches(re *regexp.Regexp, s string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// checkExpr returns every problem of expr against the registry: unknown
// metrics, matchers or grouping labels the metrics do not have, rate()
// or increase() over something that is not a counter, and referenced
// labels (legend, description) that no metric in the expression carries.
// A Grafana label_values(selector, label) variable query is checked as its
// selector, with label as a reference.
func checkExpr(reg map[string]exported, expr string, refs []string) []string {
	if m := labelValuesRE.FindStringSubmatch(expr); m != nil {
		expr, refs = m[1], append(refs, m[2])
	}
	a, err := analyse(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	available := map[string]bool{"job": true, "instance": true}
	for _, u := range a.metrics {
		e, ok := family(reg, u.name)
		if !ok {
			problems = append(problems, "unknown metric "+u.name)
			continue
		}
		for l := range e.labels {
			available[l] = true
		}
		for _, m := range u.matchers {
			if !e.labels[m] && !targetLabels[m] && m != "__name__" {
				problems = append(problems, fmt.Sprintf("%s has no label %s", u.name, m))
			}
		}
		if counterFunctions[u.inFunc] && e.typ != "counter" {
			problems = append(problems, fmt.Sprintf("%s() over %s, a %s", u.inFunc, u.name, e.typ))
		}
	}
	if len(a.metrics) == 0 {
		problems = append(problems, "no metric selector found")
	}
	for _, l := range a.grouping {
		if !available[l] {
			problems = append(problems, "grouping by "+l+", which no metric here has")
		}
	}
	for _, l := range refs {
		if !available[l] {
			problems = append(problems, "refers to label "+l+", which no metric here has")
		}
	}
	return problems
}

func TestQueriesNameExportedMetricsAndLabels(t *testing.T) {
	reg := realRegistry(t)
	files := generated(t)
	n := 0
	for _, name := range []string{FleetFile, AccountFile} {
		for _, p := range allPanels(t, files[name]) {
			for _, tg := range p.Targets {
				legend, _ := tg["legendFormat"].(string)
				n++
				for _, e := range checkExpr(reg, tg["expr"].(string), legendLabels(legend)) {
					t.Errorf("%s %q: %s", name, p.Title, e)
				}
			}
		}
	}
	for _, q := range dashboardQueries(t) {
		if q.variable {
			n++
			for _, e := range checkExpr(reg, q.expr, nil) {
				t.Errorf("%s: %s", q.where, e)
			}
		}
	}
	for _, a := range Alerts() {
		n++
		for _, e := range checkExpr(reg, a.Expr, alertLabels(a.Description)) {
			t.Errorf("alert %s: %s", a.Name, e)
		}
	}
	t.Logf("%d expressions checked", n)
}

// TestCheckExprCatchesMistakes: the checker fails on each kind of mistake
// it exists for, so a passing TestQueriesNameExportedMetricsAndLabels
// means something.
func TestCheckExprCatchesMistakes(t *testing.T) {
	reg := realRegistry(t)
	for expr, want := range map[string]string{
		`tgsafety_no_such_metric`:                                                                    "unknown metric tgsafety_no_such_metric",
		`tgsafety_account_risk_score{phone="1"}`:                                                     "has no label phone",
		`rate(tgsafety_account_risk_score[5m])`:                                                      "rate() over tgsafety_account_risk_score, a gauge",
		`increase(tgsafety_budget_used_ratio[5m])`:                                                   "increase() over tgsafety_budget_used_ratio, a gauge",
		`sum by (method) (tgsafety_account_risk_score)`:                                              "grouping by method",
		`tgsafety_flood_wait_seconds{account="a"}`:                                                   "unknown metric tgsafety_flood_wait_seconds",
		`histogram_quantile(0.9, rate(tgsafety_rpc_duration_seconds_bucket{le="1", state="x"}[5m]))`: "has no label state",
		`sum(foo(tgsafety_account_risk_score))`:                                                      "unknown function foo",
	} {
		got := strings.Join(checkExpr(reg, expr, nil), "; ")
		if !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", expr, got, want)
		}
	}
	if got := checkExpr(reg, `sum by (le) (rate(tgsafety_flood_wait_seconds_bucket{method=~"x"}[5m])) or vector(0)`, legendLabels("{{le}}")); len(got) != 0 {
		t.Errorf("valid expression rejected: %v", got)
	}
	if got := checkExpr(reg, `max by (account) (tgsafety_account_risk_score)`, legendLabels("{{method}}")); len(got) == 0 {
		t.Error("legend label that no metric has was accepted")
	}
	if got := checkExpr(reg, `label_values(tgsafety_account_state{job=~"$job"}, phone)`, nil); len(got) == 0 {
		t.Error("label_values of a label the metric lacks was accepted")
	}
}
