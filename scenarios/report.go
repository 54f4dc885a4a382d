package scenarios

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/signal"
)

// Report is the result of one scenario run: what happened per step and
// per account, and which expectations failed and why. It marshals to the
// JSON that `scenario-run run --json` writes.
type Report struct {
	Name        string   `json:"name"`
	File        string   `json:"file"`
	Description string   `json:"description,omitempty"`
	Labels      []string `json:"labels"`
	Target      string   `json:"target"`
	// Passed is true when every step ran and every check and expectation
	// held.
	Passed bool `json:"passed"`
	// Skipped says why the scenario did not run (e.g. not labelled staging).
	Skipped string `json:"skipped,omitempty"`
	// Start and End are the scenario's (virtual) clock at its first and
	// last step.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Wall is the real time the run took.
	Wall     time.Duration    `json:"wall_ns"`
	Steps    []*StepReport    `json:"steps"`
	Accounts []*AccountReport `json:"accounts"`
	Failures []Failure        `json:"failures"`
}

// Account returns the report of the named account, or nil.
func (r *Report) Account(name string) *AccountReport {
	for _, a := range r.Accounts {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AccountReport is what happened to one account.
type AccountReport struct {
	Name   string        `json:"name"`
	State  monitor.State `json:"state"`
	Reason string        `json:"reason,omitempty"`
	Risk   float64       `json:"risk"`
	// Timeline lists the state changes in order.
	Timeline []StateChange `json:"timeline"`
	// Signals counts signals by kind.
	Signals map[string]int `json:"signals"`
	// FloodWaits counts FLOOD_WAIT signals by method.
	FloodWaits       map[string]int `json:"flood_waits"`
	LongestFloodWait time.Duration  `json:"longest_flood_wait_ns"`
	// Probes lists every probe result, SpamBot's answers included.
	Probes []ProbeResult `json:"probes"`
	// SpamBot is the last conclusive SpamBot answer ("none" if never asked).
	SpamBot string `json:"spambot"`
	// Outcomes counts the scenario client's calls by outcome.
	Outcomes map[string]int `json:"outcomes"`
	// GuardBlocks counts the guard's refusals by reason.
	GuardBlocks map[string]int `json:"guard_blocks,omitempty"`
	// Server is the simulation's own view (test server only).
	Server *ServerView `json:"server,omitempty"`
}

// StateChange is one transition of the account's state.
type StateChange struct {
	At     time.Time     `json:"at"`
	From   monitor.State `json:"from"`
	To     monitor.State `json:"to"`
	Reason string        `json:"reason,omitempty"`
}

// ProbeResult is one probe run as the account recorded it.
type ProbeResult struct {
	At     time.Time `json:"at"`
	Probe  string    `json:"probe"`
	Answer string    `json:"answer"`
}

// ServerView is the test server's view of an account: the ground truth
// the monitor tries to learn.
type ServerView struct {
	Limited      bool      `json:"limited"`
	LimitedUntil time.Time `json:"limited_until,omitzero"`
	Permanent    bool      `json:"permanent,omitempty"`
	Restrictions int       `json:"restrictions"`
	Banned       bool      `json:"banned"`
	Frozen       bool      `json:"frozen"`
	Reports      int       `json:"reports"`
}

// Failure is one expectation (or check, or step) that did not hold.
type Failure struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Account string `json:"account,omitempty"`
	// Expected says what should have happened; Got what did.
	Expected string `json:"expected"`
	Got      string `json:"got"`
}

// Error formats the failure as file:line: field (account a): expected X,
// got Y (file: ... when the failure has no line, e.g. a scenario that
// could not run).
func (f Failure) Error() string {
	acct := ""
	if f.Account != "" {
		acct = fmt.Sprintf(" (account %s)", f.Account)
	}
	where := f.File
	if f.Line > 0 {
		where = fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	return fmt.Sprintf("%s: %s%s: expected %s, got %s", where, f.Field, acct, f.Expected, f.Got)
}

func (w *world) accountReports() []*AccountReport {
	var out []*AccountReport
	for _, a := range w.order {
		a.mon.Refresh()
		snap := a.mon.Snapshot()
		ar := &AccountReport{Name: a.spec.Name, State: snap.State, Reason: snap.Reason, Risk: round(snap.Risk),
			Signals: map[string]int{}, FloodWaits: map[string]int{}, SpamBot: spamBotOf(snap)}
		for _, e := range w.eventsOf(a.spec.Name) {
			switch e.Type {
			case monitor.EventState:
				ar.Timeline = append(ar.Timeline, StateChange{At: e.Time, From: e.From, To: e.State, Reason: e.Reason})
			case monitor.EventSignal:
				ar.Signals[e.Signal.Kind.String()]++
				if e.Signal.Kind == signal.FloodWait {
					ar.FloodWaits[e.Method]++
					ar.LongestFloodWait = max(ar.LongestFloodWait, e.Signal.Wait)
				}
			case monitor.EventProbe:
				ar.Probes = append(ar.Probes, ProbeResult{At: e.Time, Probe: e.Probe, Answer: e.Reason})
			}
		}
		w.mu.Lock()
		ar.Outcomes = copyCounts(a.outcomes)
		if len(a.blocks) > 0 {
			ar.GuardBlocks = copyCounts(a.blocks)
		}
		w.mu.Unlock()
		if w.srv != nil {
			if st, err := w.srv.Status(a.phone); err == nil {
				ar.Server = &ServerView{Limited: st.Limited, LimitedUntil: st.LimitedUntil, Permanent: st.Permanent,
					Restrictions: st.Restrictions, Banned: st.Banned, Frozen: st.Frozen, Reports: st.Reports}
			}
		}
		out = append(out, ar)
	}
	return out
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func round(x float64) float64 { return math.Round(x*10) / 10 }

// WriteText prints the report for people: the verdict, the steps, what
// happened to each account, and every failure with what was expected and
// what happened.
func (r *Report) WriteText(out io.Writer) error {
	var b strings.Builder
	verdict := "PASSED"
	switch {
	case r.Skipped != "":
		verdict = "SKIPPED: " + r.Skipped
	case !r.Passed:
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "scenario %s (%s): %s\n", r.Name, r.File, verdict)
	if r.Skipped != "" {
		_, err := io.WriteString(out, b.String())
		return err
	}
	if r.Description != "" {
		fmt.Fprintf(&b, "  %s\n", strings.Join(strings.Fields(r.Description), " "))
	}
	if r.Start.IsZero() {
		// Never started (Runner.Run's error, reported by scenario-run).
		fmt.Fprintf(&b, "  target %s, did not run\n", r.Target)
		writeFailures(&b, r.Failures)
		_, err := io.WriteString(out, b.String())
		return err
	}
	fmt.Fprintf(&b, "  target %s, virtual time %s (%s → %s), wall %s\n", r.Target, limits.FormatDuration(r.End.Sub(r.Start), limits.AllUnits),
		r.Start.UTC().Format("2006-01-02 15:04"), r.End.UTC().Format("2006-01-02 15:04 MST"), r.Wall.Round(time.Millisecond))
	b.WriteString("  steps:\n")
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "    %2d. %s\n", s.Index+1, s.line(r.Start))
		if s.FirstError != "" {
			fmt.Fprintf(&b, "        first non-RPC error: %s\n", s.FirstError)
		}
	}
	b.WriteString("  accounts:\n")
	for _, a := range r.Accounts {
		fmt.Fprintf(&b, "    %s: %s", a.Name, a.State)
		if a.Reason != "" {
			fmt.Fprintf(&b, " (%s)", a.Reason)
		}
		fmt.Fprintf(&b, ", risk %g\n", a.Risk)
		if len(a.Timeline) > 0 {
			parts := []string{a.Timeline[0].From.String()}
			for _, c := range a.Timeline {
				parts = append(parts, fmt.Sprintf("%s at +%s", c.To, limits.FormatDuration(c.At.Sub(r.Start), limits.AllUnits)))
			}
			fmt.Fprintf(&b, "      states: %s\n", strings.Join(parts, " → "))
		}
		if len(a.Signals) > 0 {
			fmt.Fprintf(&b, "      signals: %s\n", formatCounts(a.Signals))
		}
		if len(a.FloodWaits) > 0 {
			fmt.Fprintf(&b, "      flood waits: %s (longest %s)\n", formatCounts(a.FloodWaits), a.LongestFloodWait)
		}
		for _, p := range a.Probes {
			if p.Probe == monitor.ProbeSelf {
				continue // every connect; not worth a line each
			}
			fmt.Fprintf(&b, "      %s probe at +%s: %s\n", p.Probe, limits.FormatDuration(p.At.Sub(r.Start), limits.AllUnits), p.Answer)
		}
		fmt.Fprintf(&b, "      last SpamBot answer: %s\n", a.SpamBot)
		if len(a.Outcomes) > 0 {
			fmt.Fprintf(&b, "      calls: %s\n", formatCounts(a.Outcomes))
		}
		if len(a.GuardBlocks) > 0 {
			fmt.Fprintf(&b, "      guard refusals: %s\n", formatCounts(a.GuardBlocks))
		}
		if s := a.Server; s != nil {
			fmt.Fprintf(&b, "      server: %s\n", s.describe(r.Start))
		}
	}
	writeFailures(&b, r.Failures)
	_, err := io.WriteString(out, b.String())
	return err
}

func writeFailures(b *strings.Builder, fs []Failure) {
	if len(fs) > 0 {
		b.WriteString("  failures:\n")
		for _, f := range fs {
			fmt.Fprintf(b, "    %s\n", f.Error())
		}
	}
}

func (s *ServerView) describe(start time.Time) string {
	var parts []string
	switch {
	case s.Banned:
		parts = append(parts, "banned")
	case s.Frozen:
		parts = append(parts, "frozen")
	case s.Permanent:
		parts = append(parts, "limited permanently")
	case s.Limited:
		parts = append(parts, fmt.Sprintf("limited until +%s", limits.FormatDuration(s.LimitedUntil.Sub(start), limits.AllUnits)))
	default:
		parts = append(parts, "free")
	}
	parts = append(parts, fmt.Sprintf("%d restriction(s)", s.Restrictions), fmt.Sprintf("%d spam report(s)", s.Reports))
	return strings.Join(parts, ", ")
}
