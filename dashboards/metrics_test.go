package dashboards

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestMetricsDoc keeps docs/metrics.md true for every package: each
// defined metric has a row with its type and labels, and the page names no
// tgsafety metric that does not exist.
func TestMetricsDoc(t *testing.T) {
	b, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	defined := map[string]bool{}
	for _, d := range Metrics() {
		if defined[d.Name] {
			t.Errorf("%s is defined twice", d.Name)
		}
		defined[d.Name] = true
		row := "| `" + d.Name + "` | " + string(d.Type) + " | " + strings.Join(d.Labels, ", ") + " |"
		if !strings.Contains(doc, row) {
			t.Errorf("docs/metrics.md has no row starting %q", row)
		}
	}
	for _, m := range regexp.MustCompile("`(tgsafety_[a-z_]+)`").FindAllStringSubmatch(doc, -1) {
		if !defined[m[1]] {
			t.Errorf("docs/metrics.md documents %s, which is not defined", m[1])
		}
	}
}
