package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tgsafety/tgsafety/monitor/testbin"
	"github.com/tgsafety/tgsafety/scenarios/audit"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// The example does what its doc comment says: audited by the real
// `scenario-run audit` with every fault of the tests' plan, it breaks no
// rule and reacts well to each fault. Eight rounds meet every fault of
// that plan (they are triggered by calls); -for is only a failure guard.
func TestExamplePassesTheAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs scenario-run audit for about 20 s")
	}
	client := testbin.Package(t, "./docs/examples/auditclient")
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(testbin.Path(t, "scenario-run"), "audit", "--plan", "../../../scenarios/audit/testdata/fast-plan.yaml",
		"--json", report, "--", client, "-rounds", "8", "-for", "5m")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("scenario-run audit: %v", err)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep audit.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || len(rep.Findings) != 0 {
		t.Errorf("findings %+v", rep.Findings)
	}
	for _, f := range rep.Faults {
		if f.Status != "met" || f.Good == nil || !*f.Good {
			t.Errorf("fault %s: %s, reaction %q", f.Name, f.Status, f.Reaction)
		}
	}
}
