package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Careful programs in other languages pass `scenario-run audit` with the
// default fault plan: every one of Telegram's reactions is delivered and
// met, and each program reacts as it should, so no rule breaks. These are
// the audits of real clients of other languages and API layers (Telethon:
// 144, GramJS: 198) that issue 15 asks for.
func TestAuditOfCarefulProgramsInOtherLanguagesPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs each program for 50 s")
	}
	t.Parallel() // alongside TestConformance: both mostly wait in real time
	bin := scenarioRun(t)
	for _, c := range []struct {
		name    string
		install func() error
		argv    []string
	}{
		{"Telethon", func() error {
			out, err := exec.Command(debianPython, "-c", "import telethon").CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s cannot import telethon (apt-get install python3-telethon): %v: %s", debianPython, err, bytes.TrimSpace(out))
			}
			return nil
		}, []string{debianPython, "../../docs/examples/audit-telethon.py"}},
		{"GramJS", func() error { _, err := npmInstalled("telegram"); return err },
			[]string{"node", "clients/audit_gramjs.mjs"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if err := c.install(); err != nil {
				if os.Getenv(requireEnv) != "" {
					t.Fatal(err)
				}
				t.Skipf("%v; make deps installs it", err)
			}
			auditCarefulProgram(t, bin, c.argv)
		})
	}
}

// auditCarefulProgram runs argv under `scenario-run audit` with the
// default plan and requires a pass with all seven faults met.
func auditCarefulProgram(t *testing.T, bin string, argv []string) {
	script, err := filepath.Abs(argv[1])
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "audit.json")
	// --for bounds the program's real time: long enough for the default
	// plan's timed faults (the last at +30 s, the ban 10 s after the freeze
	// is met). A failure guard, not a budget: the audit judges behaviour.
	cmd := exec.Command(bin, "audit", "--for", "50s", "--json", report, "--", argv[0], script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("audit: %v\n%s", err, out.String())
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
