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
		{[]string{"run", "--label-filter", "sim &&", "x"}, 2, "--label-filter"},
		{[]string{"run", "no-such-dir"}, 2, "no-such-dir"},
		{[]string{"list"}, 2, "usage: scenario-run list"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errOut.String(), c.code, c.want)
		}
	}
	// Staging without credentials: refused, naming the variables.
	for _, k := range []string{"TGSAFETY_STAGING_APP_ID", "TGSAFETY_STAGING_APP_HASH", "TGSAFETY_STAGING_PHONE"} {
		t.Setenv(k, "")
	}
	var out, errOut bytes.Buffer
	code := run([]string{"run", "--target", "staging", "../../scenarios/library"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "TGSAFETY_STAGING_APP_ID, TGSAFETY_STAGING_APP_HASH, TGSAFETY_STAGING_PHONE") {
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
