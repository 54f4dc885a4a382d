package monitor

import (
	"os"
	"strings"
	"testing"
)

// TestMetricsDocMatchesDefinitions keeps docs/metrics.md true for the
// monitor core: every defined metric has a row with its type and labels.
// That the page names no metric which does not exist is checked in
// package dashboards, which sees every package's definitions.
func TestMetricsDocMatchesDefinitions(t *testing.T) {
	b, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, d := range Metrics() {
		row := "| `" + d.Name + "` | " + string(d.Type) + " | " + strings.Join(d.Labels, ", ") + " |"
		if !strings.Contains(doc, row) {
			t.Errorf("docs/metrics.md has no row starting %q", row)
		}
	}
}
