package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/tgsafety/tgsafety/scenarios"
)

// runConfig is the parsed `run` command line.
type runConfig struct {
	target   scenarios.Target
	junit    string
	jsonOut  string
	filter   types.LabelFilter
	filterTx string
	timeout  time.Duration
	// allowEmpty accepts a run in which no scenario ran (all filtered out
	// or skipped); without it that is a setup error, so that a mistyped
	// --label-filter cannot go green in CI.
	allowEmpty bool
	paths      []string
}

func parseRun(args []string, stderr io.Writer) (*runConfig, error) {
	fs := flag.NewFlagSet("scenario-run run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "testserver", "where to run: testserver (simulated, virtual time) or staging (Telegram's test DCs; scenarios labelled staging only)")
	cfg := &runConfig{}
	fs.StringVar(&cfg.junit, "junit", "", "write a JUnit XML report to this file")
	fs.StringVar(&cfg.jsonOut, "json", "", "write the reports as JSON to this file")
	fs.StringVar(&cfg.filterTx, "label-filter", "", "run only scenarios whose labels match, Ginkgo syntax: 'sim && !slow'")
	fs.BoolVar(&cfg.allowEmpty, "allow-empty", false, "exit 0 even when no scenario ran (every one filtered out or skipped); without it that exits 2")
	fs.DurationVar(&cfg.timeout, "timeout", 2*time.Minute, "real-time limit per scenario (on staging at least the scenario's total advance + 2m, + 30s per SpamBot/probe step)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: scenario-run run [--target testserver|staging] [--junit FILE] [--json FILE] [--label-filter EXPR] [--allow-empty] PATH...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	t, err := scenarios.ParseTarget(*target)
	if err != nil {
		return nil, usagef("--target: %v", err)
	}
	cfg.target = t
	if cfg.filterTx != "" {
		f, err := types.ParseLabelFilter(cfg.filterTx)
		if err != nil {
			return nil, usagef("--label-filter: %s", plainGinkgoError(err))
		}
		cfg.filter = f
	}
	cfg.paths = fs.Args()
	if len(cfg.paths) == 0 {
		return nil, usagef("run: name at least one scenario file or folder (e.g. scenarios/library)")
	}
	return cfg, nil
}

// ansiRE matches terminal colour and style sequences.
var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

// plainGinkgoError renders a Ginkgo error on one plain line: Ginkgo's own
// Error() is a coloured, multi-line block meant for its terminal output,
// which shows as escape codes in logs and CI.
func plainGinkgoError(err error) string {
	text := err.Error()
	var ge types.GinkgoError
	if errors.As(err, &ge) {
		text = ge.Heading + ": " + ge.Message
		if ge.DocLink != "" {
			text += " (see https://onsi.github.io/ginkgo/#" + ge.DocLink + ")"
		}
	}
	var parts []string
	for _, l := range strings.Split(ansiRE.ReplaceAllString(text, ""), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// runCommand runs `scenario-run run`: progress and the reports go to
// stdout, problems to stderr. Exit 0 only when every expectation of every
// scenario that ran held.
func runCommand(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseRun(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return failCmd(stderr, "run", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := runScenarios(ctx, cfg, os.Getenv, stdout)
	if err != nil {
		return failCmd(stderr, "run", err)
	}
	if !ok {
		return 1
	}
	return 0
}

// runScenarios loads every file first (a bad file, or one with a hook
// step, stops the run before anything runs), then runs the selected ones
// and writes the reports. A scenario that cannot run at all is a failed
// report with the error, so the reports always cover every scenario.
func runScenarios(ctx context.Context, cfg *runConfig, getenv func(string) string, out io.Writer) (bool, error) {
	files, err := scenarios.Find(cfg.paths...)
	if err != nil {
		return false, usagef("%v", err)
	}
	var list []*scenarios.Scenario
	var bad []string
	for _, f := range files {
		s, err := scenarios.Load(f)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if hooks := hookSteps(s); len(hooks) > 0 {
			bad = append(bad, hooks...)
			continue
		}
		list = append(list, s)
	}
	if len(bad) > 0 {
		return false, fmt.Errorf("invalid scenario files:\n%s", strings.Join(bad, "\n"))
	}
	opts := scenarios.Options{Target: cfg.target, Progress: out, Timeout: cfg.timeout}
	if cfg.target == scenarios.TargetStaging {
		st, err := scenarios.StagingFromEnv(getenv)
		if err != nil {
			// A setup error, like a bad flag: nothing ran (exit 2).
			return false, usagef("--target staging: %v", err)
		}
		opts.Staging = st
	}
	r, err := scenarios.NewRunner(opts)
	if err != nil {
		return false, err
	}
	var reports []*scenarios.Report
	allOK := true
	for _, s := range list {
		if cfg.filter != nil && !cfg.filter(s.Labels) {
			fmt.Fprintf(out, "- %s: not selected by --label-filter %q (labels %s)\n", s.Name, cfg.filterTx, strings.Join(s.Labels, ", "))
			continue
		}
		rep, err := r.Run(ctx, s)
		if err != nil {
			// One scenario that cannot run must not lose the others'
			// reports: it is a failed report carrying the error.
			fmt.Fprintf(out, "✘ %s could not run: %v\n", s.Name, err)
			rep = notRun(s, cfg.target, err)
		}
		reports = append(reports, rep)
		if rep.Skipped == "" && !rep.Passed {
			allOK = false
		}
	}
	fmt.Fprintln(out)
	for _, rep := range reports {
		if err := rep.WriteText(out); err != nil {
			return false, err
		}
		fmt.Fprintln(out)
	}
	passed, failed, skipped := 0, 0, 0
	for _, rep := range reports {
		switch {
		case rep.Skipped != "":
			skipped++
		case rep.Passed:
			passed++
		default:
			failed++
		}
	}
	fmt.Fprintf(out, "%d scenario(s): %d passed, %d failed, %d skipped\n", len(reports), passed, failed, skipped)
	if cfg.jsonOut != "" {
		if err := writeJSONFile(cfg.jsonOut, reports); err != nil {
			return false, err
		}
	}
	if cfg.junit != "" {
		if err := writeJUnit(cfg.junit, reports); err != nil {
			return false, err
		}
	}
	if passed+failed == 0 {
		fmt.Fprintln(out, "no scenario ran")
		if !cfg.allowEmpty {
			// After the reports are written: CI still gets its (empty)
			// JUnit file, and a red build.
			what := "every scenario was skipped"
			if len(reports) == 0 {
				what = "none was selected"
			}
			if cfg.filter != nil {
				what += fmt.Sprintf(" (--label-filter %q)", cfg.filterTx)
			}
			return false, usagef("no scenario ran: %s; pass --allow-empty if that is expected", what)
		}
	}
	return allOK, nil
}

// writeJSONFile writes v as indented JSON: the --json reports.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// hookSteps describes every hook step of s as a load error. A hook step
// runs Go code registered in scenarios.Options.Hooks, and scenario-run
// registers none: such a file would pass loading and then fail to run.
func hookSteps(s *scenarios.Scenario) []string {
	var out []string
	for i, st := range s.Steps {
		if st.Kind == scenarios.StepHook {
			out = append(out, fmt.Sprintf("%s:%d: steps[%d].hook: hook %q runs Go code, and scenario-run registers no hooks; "+
				"run this scenario from Go with scenarios.Options.Hooks (docs/scenarios.md, \"Your own client code in a scenario\")",
				s.File, st.Line, i, st.Hook))
		}
	}
	return out
}

// notRun is the report of a scenario whose run failed before it could
// report (Runner.Run's error): failed, with the error as its one failure.
func notRun(s *scenarios.Scenario, target scenarios.Target, err error) *scenarios.Report {
	return &scenarios.Report{Name: s.Name, File: s.File, Description: s.Description, Labels: s.Labels,
		Target: target.String(), Failures: []scenarios.Failure{{File: s.File, Field: "run",
			Expected: "the scenario to run", Got: err.Error()}}}
}

// writeJUnit writes one test case per scenario in Ginkgo's JUnit types,
// so CI shows scenario-run and `go test ./scenarios/` the same way.
func writeJUnit(path string, reports []*scenarios.Report) error {
	suite := reporters.JUnitTestSuite{Name: "tgsafety scenarios", Package: "scenarios",
		Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05")}
	for _, rep := range reports {
		tc := reporters.JUnitTestCase{Name: rep.Name, Classname: rep.File, Status: "passed", Time: rep.Wall.Seconds()}
		var text strings.Builder
		_ = rep.WriteText(&text)
		tc.SystemOut = text.String()
		switch {
		case rep.Skipped != "":
			tc.Status = "skipped"
			tc.Skipped = &reporters.JUnitSkipped{Message: rep.Skipped}
			suite.Skipped++
		case !rep.Passed:
			tc.Status = "failed"
			var msgs []string
			for _, f := range rep.Failures {
				msgs = append(msgs, f.Error())
			}
			tc.Failure = &reporters.JUnitFailure{Message: msgs[0], Type: "failed", Description: strings.Join(msgs, "\n")}
			suite.Failures++
		}
		suite.Tests++
		suite.Time += tc.Time
		suite.TestCases = append(suite.TestCases, tc)
	}
	all := reporters.JUnitTestSuites{Tests: suite.Tests, Failures: suite.Failures, Time: suite.Time,
		TestSuites: []reporters.JUnitTestSuite{suite}}
	b, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}

// listCommand runs `scenario-run list`: one line per scenario with its
// labels, accounts, steps and expectations.
func listCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: scenario-run list PATH...")
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintln(stdout, "usage: scenario-run list PATH...")
		return 0
	}
	files, err := scenarios.Find(args...)
	if err != nil {
		return failCmd(stderr, "list", usagef("%v", err))
	}
	status := 0
	for _, f := range files {
		s, err := scenarios.Load(f)
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			status = 1
			continue
		}
		var names []string
		for _, a := range s.Accounts {
			names = append(names, a.Name)
		}
		fmt.Fprintf(stdout, "%-34s [%s] %s: accounts %s, %d steps, %d expectations\n", s.Name,
			strings.Join(s.Labels, ","), f, strings.Join(names, ","), len(s.Steps), len(s.Expect))
		if s.Description != "" {
			fmt.Fprintf(stdout, "    %s\n", firstSentence(s.Description))
		}
	}
	return status
}

func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i+1]
	}
	return s
}

// failCmd reports err for a subcommand and returns its exit status: 2 for
// a usage error, 1 otherwise.
func failCmd(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "scenario-run %s: %v\n", cmd, err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
