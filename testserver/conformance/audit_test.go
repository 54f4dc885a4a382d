package conformance

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A careful Telethon program (docs/examples/audit-telethon.py) passes
// `scenario-run audit` with the default fault plan: every one of
// Telegram's reactions is delivered and met, and the program reacts to
// each as it should, so no rule breaks. This is the audit of a real
// client of another language and API layer (144) that issue 15 asks for.
func TestAuditOfACarefulTelethonProgramPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Telethon program for 50 s")
	}
	t.Parallel() // alongside TestConformance: both mostly wait in real time
	if out, err := exec.Command(debianPython, "-c", "import telethon").CombinedOutput(); err != nil {
		if os.Getenv(requireEnv) != "" {
			t.Fatalf("%s cannot import telethon (apt-get install python3-telethon): %v: %s", debianPython, err, bytes.TrimSpace(out))
		}
		t.Skip("Telethon is not installed; make deps installs it")
	}
	script, err := filepath.Abs("../../docs/examples/audit-telethon.py")
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "audit.json")
	// --for bounds the program's real time: long enough for the default
	// plan's timed faults (the last at +30 s, the ban 10 s after the freeze
	// is met). A failure guard, not a budget: the audit judges behaviour.
	cmd := exec.Command(scenarioRun(t), "audit", "--for", "50s", "--json", report, "--", debianPython, script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil {
		t.Fatalf("audit of the Telethon program: %v\n%s", err, out.String())
	}
	var r struct {
		Accounts []struct {
			Name   string `json:"name"`
			Faults []struct {
				Name   string `json:"name"`
				Status string `json:"status"`
			} `json:"faults"`
		} `json:"accounts"`
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	met := 0
	for _, a := range r.Accounts {
		for _, f := range a.Faults {
			if f.Status == "met" {
				met++
			} else {
				t.Errorf("%s: fault %s %s, want met", a.Name, f.Name, f.Status)
			}
		}
	}
	if met != 7 {
		t.Errorf("%d of the default plan's 7 faults met\n%s", met, out.String())
	}
	if !strings.Contains(out.String(), "audit PASSED") {
		t.Errorf("report:\n%s", out.String())
	}
}
