package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/reporters"
)

func TestRunLibraryPassesWithJUnitListingEveryScenario(t *testing.T) {
	dir := t.TempDir()
	junit, jsonOut := filepath.Join(dir, "j.xml"), filepath.Join(dir, "r.json")
	var out, errOut bytes.Buffer
	code := run([]string{"run", "--junit", junit, "--json", jsonOut, "../../scenarios/library"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	files, _ := filepath.Glob("../../scenarios/library/*.yaml")
	var suites reporters.JUnitTestSuites
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatal(err)
	}
	if suites.Tests != len(files) || suites.Failures != 0 || len(suites.TestSuites[0].TestCases) != len(files) {
		t.Fatalf("JUnit: %d tests, %d failures for %d files", suites.Tests, suites.Failures, len(files))
	}
	var reps []map[string]any
	if b, err = os.ReadFile(jsonOut); err != nil || json.Unmarshal(b, &reps) != nil || len(reps) != len(files) {
		t.Fatalf("JSON report: %v, %d reports", err, len(reps))
	}
	for _, want := range []string{"▶ cold-dms-to-strangers", "[2/3]", "scenario guard-prevents-peer-flood", "guard refusals: budget 168",
		"passed, 0 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestRunWrongExpectationFailsSayingWhy(t *testing.T) {
	junit := filepath.Join(t.TempDir(), "j.xml")
	var out, errOut bytes.Buffer
	code := run([]string{"run", "--junit", junit, "../../scenarios/testdata/wrong-expectation.yaml"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := "expect[0].state (account alice): expected state ok, got limited"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, out.String())
	}
	b, _ := os.ReadFile(junit)
	if !strings.Contains(string(b), "<failure") || !strings.Contains(string(b), "expected state ok, got limited") {
		t.Fatalf("JUnit has no failure:\n%s", b)
	}
}

func TestRunRefusals(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--target", "production", "x"}, 2, "there is no production target"},
		{[]string{"run"}, 2, "name at least one scenario"},
		{[]string{"run", "--label-filter", "sim &&", "x"}, 2, "--label-filter: Syntax Error Parsing Label Filter: sim && Unexpected EOF. (see https://onsi.github.io/ginkgo/#spec-labels)\n"},
		{[]string{"run", "no-such-dir"}, 2, "no-such-dir"},
		{[]string{"list"}, 2, "usage: scenario-run list"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errOut.String(), c.code, c.want)
		}
		if strings.Contains(errOut.String(), "\x1b") {
			t.Errorf("%v: stderr has terminal escape codes: %q", c.args, errOut.String())
		}
	}
	// Staging without credentials: a setup error (exit 2), naming the variables.
	for _, k := range []string{"TGSAFETY_STAGING_APP_ID", "TGSAFETY_STAGING_APP_HASH", "TGSAFETY_STAGING_PHONE"} {
		t.Setenv(k, "")
	}
	var out, errOut bytes.Buffer
	code := run([]string{"run", "--target", "staging", "../../scenarios/library"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "TGSAFETY_STAGING_APP_ID, TGSAFETY_STAGING_APP_HASH, TGSAFETY_STAGING_PHONE") {
		t.Fatalf("staging without credentials: exit %d, %q", code, errOut.String())
	}
}

func TestRunLabelFilterAndList(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"run", "--label-filter", "staging", "../../scenarios/library"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "1 scenario(s): 1 passed") || !strings.Contains(out.String(), "not selected by --label-filter") {
		t.Fatalf("label filter output:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"list", "../../scenarios/library"}, &out, &errOut); code != 0 {
		t.Fatalf("list exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "spambot-check-fresh-account        [sim,staging]") {
		t.Fatalf("list output:\n%s", out.String())
	}
}

// scenario-run registers no hooks: a file with a hook step is refused at
// load time, naming the step and where hooks run instead.
func TestRunRefusesHookStepsAtLoad(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"run", "../../scenarios/testdata/hook.yaml"}, &out, &errOut)
	want := `../../scenarios/testdata/hook.yaml:9: steps[1].hook: hook "warm-cache" runs Go code`
	if code != 1 || !strings.Contains(errOut.String(), want) || !strings.Contains(errOut.String(), "docs/scenarios.md") {
		t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errOut.String(), want)
	}
	if strings.Contains(out.String(), "▶") {
		t.Fatalf("a scenario ran:\n%s", out.String())
	}
}

// A scenario that cannot run is a failed report with its error; the other
// scenarios still run, and the text, JSON and JUnit reports cover them all.
func TestRunErrorIsAFailedReportNotAnAbort(t *testing.T) {
	dir := t.TempDir()
	// The profile exists (the parser checks that) but is not a profile:
	// the runner fails to load it, so Run returns an error.
	if err := os.WriteFile(filepath.Join(dir, "broken.profile.yaml"), []byte("not: [a profile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := "name: a-broken-profile\nprofile: broken.profile.yaml\naccounts:\n  - name: alice\nsteps:\n  - login: alice\nexpect:\n  - account: alice\n    state: ok\n"
	if err := os.WriteFile(filepath.Join(dir, "a-broken.yml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	junit, jsonOut := filepath.Join(dir, "j.xml"), filepath.Join(dir, "r.json")
	var out, errOut bytes.Buffer
	code := run([]string{"run", "--junit", junit, "--json", jsonOut, filepath.Join(dir, "a-broken.yml"),
		"../../scenarios/library/spambot-check-fresh-account.yaml"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"scenario a-broken-profile (" + filepath.Join(dir, "a-broken.yml") + "): FAILED",
		"expected the scenario to run, got", "scenario spambot-check-fresh-account", "2 scenario(s): 1 passed, 1 failed, 0 skipped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	var reps []struct {
		Name     string
		Passed   bool
		Failures []struct{ Got string }
	}
	b, err := os.ReadFile(jsonOut)
	if err != nil || json.Unmarshal(b, &reps) != nil || len(reps) != 2 {
		t.Fatalf("JSON report: %v, %d reports", err, len(reps))
	}
	if reps[0].Name != "a-broken-profile" || reps[0].Passed || len(reps[0].Failures) != 1 || reps[0].Failures[0].Got == "" || !reps[1].Passed {
		t.Fatalf("JSON reports: %+v", reps)
	}
	var suites reporters.JUnitTestSuites
	if b, err = os.ReadFile(junit); err != nil || xml.Unmarshal(b, &suites) != nil {
		t.Fatalf("JUnit: %v", err)
	}
	if suites.Tests != 2 || suites.Failures != 1 {
		t.Fatalf("JUnit: %d tests, %d failures; want 2 and 1", suites.Tests, suites.Failures)
	}
}

// A label filter that selects nothing (a typo in CI) must not go green:
// no scenario ran is a setup error unless --allow-empty says it is fine.
func TestRunExitsNonZeroWhenNoScenarioRan(t *testing.T) {
	junit := filepath.Join(t.TempDir(), "j.xml")
	var out, errOut bytes.Buffer
	code := run([]string{"run", "--junit", junit, "--label-filter", "stagin", "../../scenarios/library"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "no scenario ran") || !strings.Contains(errOut.String(), "--allow-empty") {
		t.Fatalf("exit %d, stderr %q; want 2 and a message naming --allow-empty", code, errOut.String())
	}
	if !strings.Contains(out.String(), "0 scenario(s)") {
		t.Fatalf("no summary:\n%s", out.String())
	}
	if _, err := os.Stat(junit); err != nil {
		t.Fatalf("the JUnit report was not written: %v", err)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"run", "--allow-empty", "--label-filter", "stagin", "../../scenarios/library"}, &out, &errOut); code != 0 {
		t.Fatalf("--allow-empty: exit %d, stderr %q", code, errOut.String())
	}
}
