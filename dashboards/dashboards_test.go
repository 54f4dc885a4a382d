package dashboards

//lint:file-ignore SA1019 the tests build v1 dashboards like the package does.

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// jsonPanel is the part of a generated panel (or row) the tests read.
type jsonPanel struct {
	Type        string `json:"type"`
	ID          *int   `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	GridPos     struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Collapsed   bool             `json:"collapsed"`
	Panels      []jsonPanel      `json:"panels"`
	Options     any              `json:"options"`
	Targets     []map[string]any `json:"targets"`
	Datasource  map[string]any   `json:"datasource"`
	FieldConfig struct {
		Defaults  map[string]any   `json:"defaults"`
		Overrides []map[string]any `json:"overrides"`
	} `json:"fieldConfig"`
}

func (p jsonPanel) title() string { return p.Title }

type jsonDashboard struct {
	UID        string      `json:"uid"`
	Title      string      `json:"title"`
	Editable   bool        `json:"editable"`
	Tags       []string    `json:"tags"`
	Panels     []jsonPanel `json:"panels"`
	Templating struct {
		List []struct {
			Type       string `json:"type"`
			Name       string `json:"name"`
			Query      any    `json:"query"`
			Multi      bool   `json:"multi"`
			IncludeAll bool   `json:"includeAll"`
			AllValue   string `json:"allValue"`
			Datasource map[string]any
		} `json:"list"`
	} `json:"templating"`
	Links []map[string]any `json:"links"`
}

func parseDashboard(t *testing.T, doc []byte) jsonDashboard {
	t.Helper()
	var d jsonDashboard
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// allPanels returns every non-row panel, including those nested in
// collapsed rows.
func allPanels(t *testing.T, doc []byte) []jsonPanel {
	t.Helper()
	var out []jsonPanel
	for _, p := range parseDashboard(t, doc).Panels {
		if p.Type == "row" {
			out = append(out, p.Panels...)
			continue
		}
		out = append(out, p)
	}
	return out
}

func generated(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestDashboardConventions checks the project's dashboard conventions
// (docs/dashboards.md) on the generated JSON.
func TestDashboardConventions(t *testing.T) {
	files := generated(t)
	for name, uid := range map[string]string{FleetFile: FleetUID, AccountFile: AccountUID} {
		t.Run(name, func(t *testing.T) {
			d := parseDashboard(t, files[name])
			if d.UID != uid || !strings.HasPrefix(d.Title, titlePrefix) || d.Editable {
				t.Errorf("uid %q title %q editable %v", d.UID, d.Title, d.Editable)
			}
			if !contains(d.Tags, Tag) {
				t.Errorf("tags %v lack %q", d.Tags, Tag)
			}
			var names []string
			for _, v := range d.Templating.List {
				names = append(names, v.Name)
				if v.Name != "datasource" && (v.Datasource["uid"] != "${datasource}") {
					t.Errorf("variable %s does not query ${datasource}", v.Name)
				}
			}
			if strings.Join(names, ",") != "datasource,job,instance,account" {
				t.Errorf("variables %v, want datasource, job, instance, account", names)
			}
			acct := d.Templating.List[3]
			if wantMulti := name == FleetFile; acct.Multi != wantMulti || acct.IncludeAll != wantMulti {
				t.Errorf("account variable multi=%v includeAll=%v", acct.Multi, acct.IncludeAll)
			}
			for _, l := range d.Links {
				if _, ok := l["placement"]; ok {
					t.Errorf("link %v has a placement (hidden in Grafana 12.4+)", l["title"])
				}
			}

			ids := map[int]string{}
			type cell struct{ x, y int }
			used := map[cell]string{}
			var rows []jsonPanel
			place := func(p jsonPanel) {
				if p.ID == nil || *p.ID == 0 {
					t.Errorf("%q has no id", p.Title)
				} else if other, dup := ids[*p.ID]; dup {
					t.Errorf("%q and %q share id %d", p.Title, other, *p.ID)
				} else {
					ids[*p.ID] = p.Title
				}
				g := p.GridPos
				if g.W <= 0 || g.H <= 0 || g.X+g.W > 24 {
					t.Errorf("%q has grid position %+v", p.Title, g)
				}
				for x := g.X; x < g.X+g.W; x++ {
					for y := g.Y; y < g.Y+g.H; y++ {
						if other, ok := used[cell{x, y}]; ok {
							t.Errorf("%q overlaps %q at %d,%d", p.Title, other, x, y)
							return
						}
						used[cell{x, y}] = p.Title
					}
				}
			}
			for _, p := range d.Panels {
				place(p)
				if p.Type == "row" {
					rows = append(rows, p)
					for _, n := range p.Panels {
						place(n)
					}
				}
			}
			if name == FleetFile {
				last := rows[len(rows)-1]
				if last.Title != "Daemon internals" || !last.Collapsed || len(last.Panels) == 0 {
					t.Errorf("last row %q collapsed=%v with %d panels, want the collapsed daemon internals", last.Title, last.Collapsed, len(last.Panels))
				}
			}
			for _, p := range allPanels(t, files[name]) {
				if strings.TrimSpace(p.Description) == "" {
					t.Errorf("panel %q has no description", p.Title)
				}
				if u, _ := p.FieldConfig.Defaults["unit"].(string); u == "" {
					t.Errorf("panel %q has no unit", p.Title)
				}
				if p.Datasource["uid"] != "${datasource}" {
					t.Errorf("panel %q datasource %v", p.Title, p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				for _, tg := range p.Targets {
					if tg["refId"] == nil {
						t.Errorf("panel %q has a query without refId", p.Title)
					}
				}
			}
		})
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// rangeRE finds range selectors and subquery ranges.
var rangeRE = regexp.MustCompile(`\[([^\]]*)\]`)

// TestDashboardRangesUseRateInterval: every range in a dashboard query is
// $__rate_interval, which Grafana keeps at four scrape intervals or more.
func TestDashboardRangesUseRateInterval(t *testing.T) {
	n := 0
	for _, q := range dashboardQueries(t) {
		for _, m := range rangeRE.FindAllStringSubmatch(q.expr, -1) {
			n++
			if m[1] != rateInterval {
				t.Errorf("%s: range [%s], want [%s]", q.where, m[1], rateInterval)
			}
		}
	}
	if n == 0 {
		t.Fatal("no ranges found: the check is not looking at the queries")
	}
}

// query is one PromQL expression of the generated files.
type query struct {
	where string
	expr  string
	// variable: a label_values() variable query, not PromQL itself.
	variable bool
}

// dashboardQueries returns every panel and variable query of both
// dashboards, as written in the JSON.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	files := generated(t)
	var out []query
	for _, name := range []string{FleetFile, AccountFile} {
		for _, p := range allPanels(t, files[name]) {
			for _, tg := range p.Targets {
				out = append(out, query{where: name + ": " + p.Title + " " + tg["refId"].(string), expr: tg["expr"].(string)})
			}
		}
		for _, v := range parseDashboard(t, files[name]).Templating.List {
			if v.Type == "query" {
				out = append(out, query{where: name + ": variable " + v.Name, expr: v.Query.(string), variable: true})
			}
		}
	}
	return out
}

// Grafana's date units take epoch milliseconds and tgsafety's timestamps
// are Unix seconds: every query of a panel with a date unit (as default or
// override) that reads a timestamp metric must scale it, or dates show as
// January 1970.
func TestDatePanelsScaleSecondsToMilliseconds(t *testing.T) {
	dateUnit := regexp.MustCompile(`"(dateTimeAsIso|dateTimeFromNow|dateTimeAsUS|dateTimeAsSystem)"`)
	n := 0
	for name, doc := range generated(t) {
		if !strings.HasSuffix(name, ".json") || !strings.Contains(string(doc), `"panels"`) {
			continue
		}
		for _, p := range allPanels(t, doc) {
			fc, err := json.Marshal(p.FieldConfig)
			if err != nil {
				t.Fatal(err)
			}
			if !dateUnit.Match(fc) {
				continue
			}
			for _, tg := range p.Targets {
				expr, _ := tg["expr"].(string)
				if strings.Contains(expr, "_timestamp_seconds") {
					n++
					if !strings.Contains(expr, "* 1000") {
						t.Errorf("%s: panel %q shows %s with a date unit but does not scale seconds to milliseconds", name, p.Title, expr)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no date panel found: the check checks nothing")
	}
}
