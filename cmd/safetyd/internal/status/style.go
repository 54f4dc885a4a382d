package status

import (
	_ "embed"
	"fmt"
	"html/template"
	"strings"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
)

// States, colours and severity.

// stateList names every state, most urgent first (the legend's order).
func stateList() string {
	var names []string
	for _, s := range view.StatesBySeverity() {
		names = append(names, s.String())
	}
	return strings.Join(names, ", ")
}

// stateColours are the states' fill colours and the text colour readable
// on each. They are rendered into the stylesheet once (css), so the
// table chips and the SVG band share them.
var stateColours = map[monitor.State][2]string{
	monitor.OK:        {"#2e7d32", "#fff"},
	monitor.Watch:     {"#f9a825", "#000"},
	monitor.Throttled: {"#ef6c00", "#000"},
	monitor.Limited:   {"#c62828", "#fff"},
	monitor.Frozen:    {"#0277bd", "#fff"},
	monitor.Banned:    {"#6a1b9a", "#fff"},
	monitor.Dead:      {"#37474f", "#fff"},
	monitor.Unknown:   {"#9e9e9e", "#000"},
}

// css is the pages' stylesheet: fixed rules plus one class per state
// built from stateColours (constants, hence trusted as template.CSS).
var css = func() template.CSS {
	var b strings.Builder
	b.WriteString(baseCSS)
	for _, st := range monitor.States() {
		c := stateColours[st]
		fmt.Fprintf(&b, ".s-%s{background:%s;color:%s;fill:%s}\n", st, c[0], c[1], c[0])
	}
	return template.CSS(b.String())
}()

// baseCSS is the pages' fixed stylesheet (status.css).
//
//go:embed status.css
var baseCSS string
