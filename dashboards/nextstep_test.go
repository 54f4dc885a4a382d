package dashboards

import (
	"os"
	"strings"
	"testing"

	"github.com/tgsafety/tgsafety/monitor"
)

// Every state but ok has a next step whose runbook section exists and
// whose alert is one of Alerts; the text names the account where it
// gives a command.
func TestNextStepForEveryNonOKState(t *testing.T) {
	runbook, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	alerts := map[string]bool{}
	for _, a := range Alerts() {
		alerts[a.Name] = true
	}
	for _, st := range monitor.States() {
		n, ok := NextStepFor(st, "acct-1")
		if st == monitor.OK {
			if ok {
				t.Errorf("ok has a next step: %+v", n)
			}
			continue
		}
		if !ok || n.Text == "" {
			t.Errorf("%s: no next step", st)
			continue
		}
		if !alerts[n.Alert] {
			t.Errorf("%s: next step names %q, not an alert", st, n.Alert)
		}
		if !strings.Contains(string(runbook), "\n## "+n.Alert+"\n") {
			t.Errorf("%s: docs/runbook.md has no section %s", st, n.Alert)
		}
		if want := RunbookURL + "#" + strings.ToLower(n.Alert); n.Runbook() != want {
			t.Errorf("%s: runbook link %s, want %s", st, n.Runbook(), want)
		}
		if strings.Contains(n.Text, "%") || strings.Contains(n.Text, "safetyd login") && !strings.Contains(n.Text, "acct-1") {
			t.Errorf("%s: text not filled in: %s", st, n.Text)
		}
	}
}
