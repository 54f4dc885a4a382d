package scenarios_test

import (
	"fmt"
	"sort"
	"strings"

	"github.com/onsi/gomega/types"

	"github.com/tgsafety/tgsafety/monitor"
	sc "github.com/tgsafety/tgsafety/scenarios"
)

// matcher is a small Gomega matcher built from a check function, so that
// each custom matcher is one function and its messages say what was
// expected and what was there.
type matcher struct {
	want  string
	check func(actual any) (ok bool, got string, err error)
	got   string
}

func (m *matcher) Match(actual any) (bool, error) {
	ok, got, err := m.check(actual)
	m.got = got
	return ok, err
}

func (m *matcher) FailureMessage(any) string {
	return fmt.Sprintf("Expected %s\nGot %s", m.want, m.got)
}

func (m *matcher) NegatedFailureMessage(any) string {
	return fmt.Sprintf("Expected not %s\nGot %s", m.want, m.got)
}

// accountOf accepts an *sc.AccountReport or a monitor.Snapshot.
func stateOf(actual any) (monitor.State, string, error) {
	switch a := actual.(type) {
	case *sc.AccountReport:
		return a.State, a.Reason, nil
	case monitor.Snapshot:
		return a.State, a.Reason, nil
	case *monitor.Account:
		s := a.Snapshot()
		return s.State, s.Reason, nil
	}
	return 0, "", fmt.Errorf("BeInState wants an *sc.AccountReport, a monitor.Snapshot or a *monitor.Account, got %T", actual)
}

// BeInState matches an account (report, snapshot or monitor account) in
// the named state: Expect(rep.Account("alice")).To(BeInState("limited")).
func BeInState(state string) types.GomegaMatcher {
	return &matcher{want: "state " + state, check: func(actual any) (bool, string, error) {
		want, ok := monitor.ParseState(state)
		if !ok {
			return false, "", fmt.Errorf("BeInState: unknown state %q", state)
		}
		st, reason, err := stateOf(actual)
		got := st.String()
		if reason != "" {
			got += " (" + reason + ")"
		}
		return err == nil && st == want, got, err
	}}
}

// HaveFloodWaitOn matches an account report with at least one FLOOD_WAIT
// on the method: Expect(acct).To(HaveFloodWaitOn("contacts.resolveUsername")).
func HaveFloodWaitOn(method string) types.GomegaMatcher {
	return &matcher{want: "a FLOOD_WAIT on " + method, check: func(actual any) (bool, string, error) {
		a, ok := actual.(*sc.AccountReport)
		if !ok {
			return false, "", fmt.Errorf("HaveFloodWaitOn wants an *sc.AccountReport, got %T", actual)
		}
		return a.FloodWaits[method] > 0, "flood waits by method: " + counts(a.FloodWaits), nil
	}}
}

// HaveSignals matches an account report with exactly n signals of a kind.
func HaveSignals(kind string, n int) types.GomegaMatcher {
	return &matcher{want: fmt.Sprintf("%d %s signal(s)", n, kind), check: func(actual any) (bool, string, error) {
		a, ok := actual.(*sc.AccountReport)
		if !ok {
			return false, "", fmt.Errorf("HaveSignals wants an *sc.AccountReport, got %T", actual)
		}
		return a.Signals[kind] == n, "signals: " + counts(a.Signals), nil
	}}
}

// HaveSpamBotAnswer matches an account report whose last conclusive
// SpamBot answer is the given state (free, limited_temporary, ...).
func HaveSpamBotAnswer(state string) types.GomegaMatcher {
	return &matcher{want: "SpamBot answer " + state, check: func(actual any) (bool, string, error) {
		a, ok := actual.(*sc.AccountReport)
		if !ok {
			return false, "", fmt.Errorf("HaveSpamBotAnswer wants an *sc.AccountReport, got %T", actual)
		}
		return a.SpamBot == state || strings.HasPrefix(a.SpamBot, state+" until "), a.SpamBot, nil
	}}
}

// Pass matches a report whose scenario passed; the failure message is the
// whole text report, with every failed expectation.
func Pass() types.GomegaMatcher {
	return &matcher{want: "the scenario to pass", check: func(actual any) (bool, string, error) {
		r, ok := actual.(*sc.Report)
		if !ok {
			return false, "", fmt.Errorf("Pass wants a *sc.Report, got %T", actual)
		}
		var b strings.Builder
		_ = r.WriteText(&b)
		return r.Passed, b.String(), nil
	}}
}

// counts renders a count map in key order.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
