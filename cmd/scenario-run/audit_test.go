package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"

	"github.com/tgsafety/tgsafety/monitor/testbin"
	"github.com/tgsafety/tgsafety/scenarios/audit"
)

// auditGuard bounds an audit run by the real binary: a failure guard,
// generous for a loaded machine. The tests judge which rules broke and
// on what, never how long anything took.
const auditGuard = 4 * time.Minute

// fastPlan is the audit tests' plan: every reaction, triggered by calls.
const fastPlan = "../../scenarios/audit/testdata/fast-plan.yaml"

type auditRun struct {
	code           int
	stdout, stderr string
	report         audit.Report
	junit          reporters.JUnitTestSuites
}

// runAudit runs `scenario-run audit args... -- command...` and reads its
// JSON and JUnit reports when written.
func runAuditBinary(t *testing.T, args []string, command ...string) auditRun {
	t.Helper()
	dir := t.TempDir()
	jsonPath, junitPath := filepath.Join(dir, "report.json"), filepath.Join(dir, "report.xml")
	full := append([]string{"audit", "--json", jsonPath, "--junit", junitPath}, args...)
	full = append(append(full, "--"), command...)
	cmd := exec.Command(build(t), full...)
	var stdout, stderr testbin.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var r auditRun
	select {
	case <-done:
	case <-time.After(auditGuard):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("scenario-run audit did not end within %s; stdout:\n%s\nstderr:\n%s", auditGuard, stdout.String(), stderr.String())
	}
	r.code, r.stdout, r.stderr = cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	if b, err := os.ReadFile(jsonPath); err == nil {
		if err := json.Unmarshal(b, &r.report); err != nil {
			t.Fatalf("JSON report: %v", err)
		}
	}
	if b, err := os.ReadFile(junitPath); err == nil {
		if err := xml.Unmarshal(b, &r.junit); err != nil {
			t.Fatalf("JUnit report: %v", err)
		}
	}
	return r
}

func TestAuditPassesACarefulClientThatReactsToEveryFault(t *testing.T) {
	t.Parallel()
	client := testbin.Package(t, "./scenarios/audit/internal/goodclient")
	r := runAuditBinary(t, []string{"--plan", fastPlan}, client)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0", r.code)
	}
	rep := r.report
	if !rep.Passed || len(rep.Findings) != 0 || !rep.Client.Exited || rep.Client.ExitCode != 0 {
		t.Errorf("report: passed %v, findings %+v, client %+v", rep.Passed, rep.Findings, rep.Client)
	}
	if len(rep.Faults) != 7 {
		t.Fatalf("%d faults, want 7", len(rep.Faults))
	}
	for _, f := range rep.Faults {
		if f.Status != "met" || f.Good == nil || !*f.Good {
			t.Errorf("fault %s: %s; reaction %q", f.Name, f.Status, f.Reaction)
		}
	}
	if !slices.Contains(rep.Client.Output, "acct-1: done") {
		t.Errorf("client output %q lacks its last line", rep.Client.Output)
	}
	s := r.junit.TestSuites[0]
	if want := 3 * len(audit.RuleIDs()); s.Tests != want || s.Failures != 0 {
		t.Errorf("JUnit: %d cases, %d failures; want %d cases (one per rule per account), none failed", s.Tests, s.Failures, want)
	}
	for _, want := range []string{"✔ audit PASSED", "reaction: waited: called contacts.resolveUsername again", "rules: none broken"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
}

func TestAuditFailsAMisbehavingClientWithExactlyTheRulesItBroke(t *testing.T) {
	t.Parallel()
	client := testbin.Package(t, "./scenarios/audit/internal/badclient")
	r := runAuditBinary(t, []string{"--plan", fastPlan}, client)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	var got []string
	for _, f := range r.report.Findings {
		got = append(got, f.Account+" "+f.Rule)
		for _, e := range f.Evidence {
			switch f.Rule {
			case "flood-wait-retry":
				if e.Method != "contacts.resolveUsername" || !strings.Contains(e.Note, "after FLOOD_WAIT_2") {
					t.Errorf("flood-wait-retry evidence %s", e)
				}
			case "peer-flood-ignored":
				if e.Method != "messages.sendMessage" {
					t.Errorf("peer-flood-ignored evidence %s", e)
				}
			case "reconnect-storm":
				if e.Conn == 0 {
					t.Errorf("reconnect-storm evidence %s", e)
				}
			}
		}
	}
	if want := []string{"acct-1 flood-wait-retry", "acct-1 peer-flood-ignored", "acct-1 reconnect-storm"}; !slices.Equal(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
	var failed []string
	for _, tc := range r.junit.TestSuites[0].TestCases {
		if tc.Failure != nil {
			failed = append(failed, tc.Name)
		}
	}
	if want := []string{"flood-wait-retry (acct-1)", "peer-flood-ignored (acct-1)", "reconnect-storm (acct-1)"}; !slices.Equal(failed, want) {
		t.Errorf("JUnit failures %q, want %q", failed, want)
	}
	if !strings.Contains(r.stdout, "✘ audit FAILED: 3 error(s)") {
		t.Error("stdout lacks the verdict")
	}
}

func TestAuditReportsTheClientsExitCodeAndLastLinesAndStopsOneThatOutlivesFor(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	r := runAuditBinary(t, []string{"--plan", "none"}, sh, "-c", `echo "my number is $TGSAFETY_ACCOUNT_1_PHONE"; echo bye; exit 3`)
	if r.code != 0 {
		t.Errorf("exit %d: a client that broke no rule passes, whatever its status", r.code)
	}
	c := r.report.Client
	if !c.Exited || c.ExitCode != 3 || !slices.Equal(c.Output, []string{"my number is <phone of acct-1>", "bye"}) {
		t.Errorf("client %+v", c)
	}
	if strings.Contains(r.stdout, "99966") {
		t.Error("the report shows a phone number")
	}

	r = runAuditBinary(t, []string{"--plan", "none", "--for", "1s"}, sh, "-c", "echo started; exec sleep 600")
	if c := r.report.Client; c.Exited || !strings.Contains(c.Stopped, "still running after 1s: stopped (SIGTERM)") {
		t.Errorf("client %+v, want stopped by SIGTERM after --for", c)
	}
}

func TestAuditUsageAndSetupErrorsExit2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badPlan := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badPlan, []byte("faults:\n  - {name: x, account: acct-1, bann: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherAcct := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(otherAcct, []byte("faults:\n  - {name: x, account: acct-9, ban: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"audit"}, "name the command to audit after --"},
		{[]string{"audit", "--plan", badPlan, "--", "true"}, badPlan + ":2:32: faults[0].bann: unknown key (did you mean ban?)"},
		{[]string{"audit", "--plan", otherAcct, "--", "true"}, otherAcct + `:2: faults[0].account: no account "acct-9" in this audit`},
		{[]string{"audit", "--accounts", "2", "--", "true"}, "--accounts: the plan default lists its accounts"},
		{[]string{"audit", "--plan", "none", "--lang", "de", "--", "true"}, "--lang must be en or ru"},
		{[]string{"audit", "--plan", "none", "--for", "0s", "--", "true"}, "--for must be within 1s-24h"},
		{[]string{"audit", "--plan", "none", "--", filepath.Join(dir, "no-such-program")}, "cannot start"},
	} {
		cmd := exec.Command(build(t), c.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%q: exit %d (%v), stderr:\n%s\nwant exit 2 and %q", c.args, code, err, stderr.String(), c.want)
		}
	}
	out, err := exec.Command(build(t), "audit", "--rules").Output()
	if err != nil || !strings.Contains(string(out), "flood-wait-retry") || !strings.Contains(string(out), "qr-login") {
		t.Errorf("--rules: %v\n%s", err, out)
	}
	out, err = exec.Command(build(t), "audit", "--print-plan").Output()
	if err != nil || !bytes.Equal(out, audit.DefaultPlanYAML()) {
		t.Errorf("--print-plan: %v", err)
	}
}
