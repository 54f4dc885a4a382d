package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"

	"github.com/tgsafety/tgsafety/dashboards/internal/jsonschema"
)

// panelSchemas maps a panel type to its schema file. A panel of another
// type fails the test: its options would go unchecked.
var panelSchemas = map[string]string{
	"timeseries": "timeseries", "stat": "stat", "state-timeline": "statetimeline", "table": "table",
}

func loadSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("schema", name+".jsonschema.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jsonschema.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// schemaErrors validates one dashboard's JSON: the whole document, then
// each panel's options, custom field config and targets against the
// panel plugin's and the Prometheus query's schemas.
func schemaErrors(t *testing.T, doc []byte) []string {
	t.Helper()
	var out []string
	add := func(where string, errs []error) {
		for _, e := range errs {
			out = append(out, where+": "+e.Error())
		}
	}
	dash := loadSchema(t, "dashboard")
	add("dashboard", dash.Validate(schemaNarrowings(decode(t, doc)), ""))
	prom := loadSchema(t, "prometheus")
	for _, p := range allPanels(t, doc) {
		where := "panel " + p.title()
		file, ok := panelSchemas[p.Type]
		if !ok {
			out = append(out, where+": no schema for panel type "+p.Type)
			continue
		}
		s := loadSchema(t, file)
		add(where+" options", s.Validate(p.Options, "#/definitions/Options"))
		if custom, ok := p.FieldConfig.Defaults["custom"]; ok {
			add(where+" fieldConfig.defaults.custom", s.Validate(custom, "#/definitions/FieldConfig"))
		}
		for _, tg := range p.Targets {
			add(where+" target", prom.Validate(tg, ""))
		}
		// Each override value against the field option it sets:
		// "unit" is dashboard FieldConfig.unit, "custom.cellOptions" the
		// panel plugin's FieldConfig.cellOptions.
		for _, o := range p.FieldConfig.Overrides {
			for _, prop := range asSlice(o["properties"]) {
				prop := prop.(map[string]any)
				id, _ := prop["id"].(string)
				if rest, ok := strings.CutPrefix(id, "custom."); ok {
					def := "FieldConfig"
					if p.Type == "table" {
						def = "TableFieldOptions" // the table schema's FieldConfig is only a $ref to it
					}
					add(where+" override "+id, s.Validate(prop["value"], "#/definitions/"+def+"/properties/"+rest))
				} else {
					add(where+" override "+id, dash.Validate(prop["value"], "#/definitions/FieldConfig/properties/"+id))
				}
			}
		}
	}
	return out
}

// schemaNarrowings works around the two places where the SDK's schema
// is narrower than Grafana and than the SDK's own builders: it types an
// override matcher's options and an override property's value as
// objects, but Grafana's byName matcher takes a string (what
// OverrideByName writes) and property values are whatever the field
// option is (a unit string, a mappings array, a number). Those are
// replaced by {} for the whole-dashboard validation; schemaErrors then
// validates each override value against the field option it sets.
func schemaNarrowings(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "overrides" {
				for _, o := range asSlice(e) {
					o, _ := o.(map[string]any)
					if m, ok := o["matcher"].(map[string]any); ok && isString(m["options"]) {
						m["options"] = map[string]any{}
					}
					for _, p := range asSlice(o["properties"]) {
						if p, ok := p.(map[string]any); ok {
							if _, obj := p["value"].(map[string]any); !obj {
								p["value"] = map[string]any{}
							}
						}
					}
				}
				continue
			}
			schemaNarrowings(e)
		}
	case []any:
		for _, e := range x {
			schemaNarrowings(e)
		}
	}
	return v
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func isString(v any) bool { _, ok := v.(string); return ok }

func TestSchemaValidation(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{FleetFile, AccountFile} {
		for _, e := range schemaErrors(t, files[name]) {
			t.Errorf("%s: %s", name, e)
		}
	}

	groups := decode(t, files[GrafanaRuleGroupsFile]).([]any)
	al, prom, ex := loadSchema(t, "alerting"), loadSchema(t, "prometheus"), loadSchema(t, "expr")
	for i, g := range groups {
		for _, e := range al.Validate(g, "#/definitions/RuleGroup") {
			t.Errorf("rule group %d: %v", i, e)
		}
		for _, r := range g.(map[string]any)["rules"].([]any) {
			for _, q := range r.(map[string]any)["data"].([]any) {
				q := q.(map[string]any)
				s := prom
				if q["datasourceUid"] == "__expr__" {
					s = ex
				}
				for _, e := range s.Validate(q["model"], "") {
					t.Errorf("rule %v query %v model: %v", r.(map[string]any)["title"], q["refId"], e)
				}
			}
		}
	}
}

// TestSchemaCatchesSDKDefaults shows that the schemas reject what the SDK
// writes when the factories do not fix its defaults, so the fixes in
// common.go and finish.go are needed and checked.
func TestSchemaCatchesSDKDefaults(t *testing.T) {
	b := dashboard.NewDashboardBuilder("raw SDK defaults").Uid("raw").
		WithPanel(stat.NewPanelBuilder().Title("s")).
		WithPanel(statetimeline.NewPanelBuilder().Title("st")).
		WithPanel(table.NewPanelBuilder().Title("t"))
	d, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	errs := strings.Join(schemaErrors(t, doc), "\n")
	for _, want := range []string{
		`panel s options: $.orientation: "" is not one of`,
		`panel st options: $.tooltip.mode: "" is not one of`,
		`panel st options: $.tooltip.sort: "" is not one of`,
		`panel t options: $.footer.reducer: type null, want array`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("schema errors lack %q; got:\n%s", want, errs)
		}
	}
}
