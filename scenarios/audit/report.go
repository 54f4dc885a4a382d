package audit

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
)

// Report is the verdict of an audit and what it rests on. It marshals to
// the JSON `scenario-run audit --json` writes.
type Report struct {
	Command []string `json:"command"`
	Plan    string   `json:"plan"`
	// Profile and Margin are the limits profile and the guard's margin
	// the rules judged budgets by.
	Profile string  `json:"profile"`
	Margin  float64 `json:"margin"`
	// Passed is true when no rule at error severity broke.
	Passed   bool `json:"passed"`
	Errors   int  `json:"errors"`
	Warnings int  `json:"warnings"`
	// Start is when the client started; Wall how long the audit ran; For
	// its bound.
	Start    time.Time        `json:"start"`
	Wall     time.Duration    `json:"wall_ns"`
	For      time.Duration    `json:"for_ns"`
	Client   ClientResult     `json:"client"`
	Records  RecordStats      `json:"records"`
	Accounts []*AccountReport `json:"accounts"`
	Faults   []FaultReport    `json:"faults"`
	Findings []Finding        `json:"findings"`
	// Rules is every rule's verdict per account: the JUnit cases.
	Rules []RuleResult `json:"rules"`
}

// RecordStats says what the recorder kept and what its cap left out.
type RecordStats struct {
	Calls       int `json:"calls"`
	Connections int `json:"connections"`
	KeyEvents   int `json:"key_events"`
	// DroppedCalls and DroppedEvents were seen but not kept: the rules
	// did not judge them (the per-method counts include them).
	DroppedCalls  int `json:"dropped_calls"`
	DroppedEvents int `json:"dropped_events"`
	Cap           int `json:"cap"`
}

// AccountReport is what one account did.
type AccountReport struct {
	Name        string        `json:"name"`
	Calls       int           `json:"calls"`
	Connections int           `json:"connections"`
	Methods     []MethodStats `json:"methods"`
	// Timeline lists what happened, in order: connections, key
	// exchanges, faults, every call that did not succeed.
	Timeline     []TimelineEntry `json:"timeline"`
	TimelineMore int             `json:"timeline_more,omitempty"`
	Faults       []FaultReport   `json:"faults"`
	Findings     []Finding       `json:"findings"`
}

// TimelineEntry is one line of an account's timeline.
type TimelineEntry struct {
	At   time.Duration `json:"at_ns"`
	Text string        `json:"text"`
}

// maxTimeline bounds an account's timeline in the report.
const maxTimeline = 40

// RuleResult is one rule's verdict for one account.
type RuleResult struct {
	Rule     string   `json:"rule"`
	Account  string   `json:"account"`
	Severity Severity `json:"severity"`
	// Broken is true when the account broke the rule.
	Broken bool `json:"broken"`
}

func ruleResults(t *trace, severity map[string]Severity, findings []Finding) []RuleResult {
	var out []RuleResult
	for _, acct := range t.accountsJudged() {
		for _, r := range rules {
			sev := r.severity
			if s, ok := severity[r.id]; ok {
				sev = s
			}
			rr := RuleResult{Rule: r.id, Account: t.name(acct), Severity: sev}
			for _, f := range findings {
				if f.Rule == r.id && f.Account == rr.Account {
					rr.Broken = true
				}
			}
			out = append(out, rr)
		}
	}
	return out
}

func accountReports(t *trace, rec *recorder, rep *Report) []*AccountReport {
	var out []*AccountReport
	for _, acct := range t.accountsJudged() {
		ar := &AccountReport{Name: t.name(acct), Methods: rec.methodStats(acct)}
		for _, m := range ar.Methods {
			ar.Calls += m.Calls
		}
		var tl []TimelineEntry
		add := func(at time.Time, format string, args ...any) {
			tl = append(tl, TimelineEntry{At: at.Sub(t.start), Text: fmt.Sprintf(format, args...)})
		}
		for _, cn := range t.conns {
			if cn.acct != acct {
				continue
			}
			ar.Connections++
			add(cn.opened, "connection %d opened", cn.id)
			for _, k := range cn.keys {
				switch {
				case k.key == ([8]byte{}):
					add(k.at, "key exchange on connection %d", cn.id)
				case !t.provisioned[k.key] && firstUse(t, k):
					add(k.at, "new auth key %s on connection %d", shortKey(k.key), cn.id)
				}
			}
			if !cn.closed.IsZero() {
				add(cn.closed, "connection %d closed", cn.id)
			}
		}
		for _, i := range t.callsOf(acct) {
			c := &t.calls[i]
			if c.err != "" || c.dropped {
				add(c.arrived, "call #%d %s → %s", c.seq, c.method, c.result())
			}
		}
		for _, f := range rep.Faults {
			if f.Account != ar.Name {
				continue
			}
			ar.Faults = append(ar.Faults, f)
			if f.Status != "not armed" && f.Status != "armed, not fired" && f.Status != "could not fire" {
				tl = append(tl, TimelineEntry{At: f.FiredAt, Text: fmt.Sprintf("fault %s fired: %s", f.Name, f.Does)})
			}
		}
		for _, f := range rep.Findings {
			if f.Account == ar.Name {
				ar.Findings = append(ar.Findings, f)
			}
		}
		sort.SliceStable(tl, func(i, j int) bool { return tl[i].At < tl[j].At })
		if len(tl) > maxTimeline {
			ar.TimelineMore = len(tl) - maxTimeline
			tl = tl[:maxTimeline]
		}
		ar.Timeline = tl
		if acct < 0 && ar.Calls == 0 && ar.Connections == 0 && len(ar.Findings) == 0 {
			continue
		}
		out = append(out, ar)
	}
	return out
}

// firstUse reports whether k is the first time its key was seen.
func firstUse(t *trace, k keyUse) bool {
	for _, e := range t.keyEvents {
		if e.Key == k.key {
			return e.Time.Equal(k.at)
		}
	}
	return false
}

// Verdict is PASSED or FAILED, with the counts.
func (r *Report) Verdict() string {
	v := "PASSED"
	if !r.Passed {
		v = "FAILED"
	}
	return fmt.Sprintf("%s: %d error(s), %d warning(s)", v, r.Errors, r.Warnings)
}

// WriteText prints the report for people: the verdict, how the client
// ended, then per account its calls, faults and the rules it broke with
// their evidence, then the client's last output lines.
func (r *Report) WriteText(out io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "audit of %s (plan %s): %s\n", strings.Join(r.Command, " "), r.Plan, r.Verdict())
	fmt.Fprintf(&b, "  ran %s of at most %s; %s\n", fmtOffset(r.Wall), fmtDur(r.For), r.Client.describe())
	rs := r.Records
	fmt.Fprintf(&b, "  recorded %s and %s (cap %d each", plural(rs.Calls, "call"), plural(rs.Connections, "connection"), rs.Cap)
	if rs.DroppedCalls+rs.DroppedEvents > 0 {
		fmt.Fprintf(&b, "; %d calls and %d connection events over the cap were counted but not judged", rs.DroppedCalls, rs.DroppedEvents)
	}
	fmt.Fprintf(&b, "); budgets: profile %s × guard margin %g\n", r.Profile, r.Margin)
	for _, a := range r.Accounts {
		fmt.Fprintf(&b, "  %s: %s on %s\n", a.Name, plural(a.Calls, "call"), plural(a.Connections, "connection"))
		if len(a.Methods) > 0 {
			b.WriteString("    calls:\n")
			for _, m := range a.Methods {
				fmt.Fprintf(&b, "      %-34s %s\n", m.Method, m.String())
			}
		}
		if len(a.Faults) > 0 {
			b.WriteString("    faults:\n")
			for _, f := range a.Faults {
				fmt.Fprintf(&b, "      %s %s: %s, %s: %s\n", f.Mark(), f.Name, f.Does, f.When, f.Status)
				if f.FiredOn != "" || f.MetBy != "" {
					line := "fired at +" + fmtOffset(f.FiredAt)
					if f.FiredOn != "" {
						line += " on " + f.FiredOn
					}
					if f.MetBy != "" {
						line += "; met at +" + fmtOffset(f.MetAt) + " by " + f.MetBy
					}
					fmt.Fprintf(&b, "          %s\n", line)
				}
				if f.Reaction != "" {
					fmt.Fprintf(&b, "          reaction: %s\n", f.Reaction)
				}
				if f.Error != "" {
					fmt.Fprintf(&b, "          error: %s\n", f.Error)
				}
			}
		}
		if len(a.Timeline) > 0 {
			b.WriteString("    timeline:\n")
			for _, e := range a.Timeline {
				fmt.Fprintf(&b, "      +%-7s %s\n", fmtOffset(e.At), e.Text)
			}
			if a.TimelineMore > 0 {
				fmt.Fprintf(&b, "      … %d more\n", a.TimelineMore)
			}
		}
		if len(a.Findings) == 0 {
			b.WriteString("    rules: none broken\n")
			continue
		}
		b.WriteString("    rules broken:\n")
		for _, f := range a.Findings {
			mark := "✘"
			if f.Severity != SeverityError {
				mark = "!"
			}
			fmt.Fprintf(&b, "      %s %s %s: %s\n", mark, f.Severity, f.Rule, f.Summary)
			fmt.Fprintf(&b, "          why: %s\n", f.Reason)
			for _, e := range f.Evidence {
				fmt.Fprintf(&b, "          %s\n", e)
			}
			if f.MoreEvidence > 0 {
				fmt.Fprintf(&b, "          … and %d more\n", f.MoreEvidence)
			}
		}
	}
	if len(r.Client.Output) > 0 {
		fmt.Fprintf(&b, "  client output (last %d of %d lines):\n", len(r.Client.Output), r.Client.OutputLines)
		for _, l := range r.Client.Output {
			fmt.Fprintf(&b, "    | %s\n", l)
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func (c ClientResult) describe() string {
	var s string
	switch {
	case c.Exited && c.Function && c.Error != "":
		s = "the function returned an error: " + c.Error
	case c.Exited && c.Function:
		s = "the function returned"
	case c.Exited:
		s = fmt.Sprintf("the client exited with status %d", c.ExitCode)
	default:
		s = "the client was " + c.Stopped
	}
	if !c.Exited && c.Error != "" {
		s += ": " + c.Error
	}
	return s
}

// WriteJUnit writes one test case per rule per account (Ginkgo's JUnit
// types, as `scenario-run run` writes): a failure for a rule broken at
// error severity, a pass with the finding in system-out for a warning, a
// skip for a rule that is off.
func (r *Report) WriteJUnit(out io.Writer) error {
	suite := reporters.JUnitTestSuite{Name: "tgsafety audit: " + strings.Join(r.Command, " "), Package: "audit",
		Timestamp: r.Start.UTC().Format("2006-01-02T15:04:05"), Time: r.Wall.Seconds()}
	for _, rr := range r.Rules {
		tc := reporters.JUnitTestCase{Name: rr.Rule + " (" + rr.Account + ")", Classname: "audit." + rr.Account, Status: "passed"}
		var lines []string
		for _, f := range r.Findings {
			if f.Rule != rr.Rule || f.Account != rr.Account {
				continue
			}
			lines = append(lines, f.Summary, "why: "+f.Reason)
			for _, e := range f.Evidence {
				lines = append(lines, e.String())
			}
			if f.MoreEvidence > 0 {
				lines = append(lines, fmt.Sprintf("… and %d more", f.MoreEvidence))
			}
		}
		switch {
		case rr.Severity == SeverityOff:
			tc.Status = "skipped"
			tc.Skipped = &reporters.JUnitSkipped{Message: "rule is off in the plan"}
			suite.Skipped++
		case rr.Broken && rr.Severity == SeverityError:
			tc.Status = "failed"
			tc.Failure = &reporters.JUnitFailure{Message: lines[0], Type: "failed", Description: strings.Join(lines, "\n")}
			suite.Failures++
		case rr.Broken:
			tc.SystemOut = "warning: " + strings.Join(lines, "\n")
		}
		suite.Tests++
		suite.TestCases = append(suite.TestCases, tc)
	}
	all := reporters.JUnitTestSuites{Tests: suite.Tests, Failures: suite.Failures, Time: suite.Time,
		TestSuites: []reporters.JUnitTestSuite{suite}}
	bs, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, xml.Header+string(bs)+"\n")
	return err
}
