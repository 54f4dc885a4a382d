package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/testserver"
)

// StepReport is what one step did.
type StepReport struct {
	Index   int      `json:"index"`
	Line    int      `json:"line"`
	Kind    StepKind `json:"kind"`
	Account string   `json:"account,omitempty"`
	// Start and End are virtual times.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Summary says what happened, for people.
	Summary string `json:"summary"`
	// Outcomes counts the step's calls by outcome (ok, blocked, error or
	// the signal kind of the RPC error).
	Outcomes map[string]int `json:"outcomes,omitempty"`
	// FirstError is the first call error that is not an RPC error, if any:
	// the clue when a step's calls fail for a reason of the runner's own.
	FirstError string `json:"first_error,omitempty"`
	// Error is why the step could not run (the scenario stops there).
	Error string `json:"error,omitempty"`
	// Failures are the step's failed checks (check steps only).
	Failures []Failure `json:"failures,omitempty"`

	failures []Failure
}

// line renders the step for progress output.
func (sr *StepReport) line(start time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "+%-7s %s", limits.FormatDuration(sr.Start.Sub(start), limits.AllUnits), sr.Kind)
	if sr.Account != "" {
		fmt.Fprintf(&b, " %s", sr.Account)
	}
	if sr.Summary != "" {
		fmt.Fprintf(&b, ": %s", sr.Summary)
	}
	if len(sr.Outcomes) > 0 {
		b.WriteString(" → ")
		b.WriteString(formatCounts(sr.Outcomes))
	}
	if sr.Error != "" {
		fmt.Fprintf(&b, " — FAILED: %s", sr.Error)
	}
	if len(sr.Failures) > 0 {
		fmt.Fprintf(&b, " — %d check(s) failed", len(sr.Failures))
	}
	return b.String()
}

func formatCounts(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func (w *world) runStep(ctx context.Context, i int, st *Step) *StepReport {
	sr := &StepReport{Index: i, Line: st.Line, Kind: st.Kind, Account: st.Account, Start: w.clk.Now()}
	summary, err := w.step(ctx, st, sr)
	sr.Summary = summary
	if err != nil {
		sr.Error = err.Error()
	}
	sr.Failures = sr.failures
	sr.End = w.clk.Now()
	return sr
}

func (w *world) step(ctx context.Context, st *Step, sr *StepReport) (string, error) {
	a := w.accounts[st.Account]
	switch st.Kind {
	case StepLogin:
		return a.login(ctx)
	case StepSend:
		return w.repeat(ctx, st, a, st.Count, sr, func(ctx context.Context, _ int) error { return a.send(ctx, st.To) },
			fmt.Sprintf("%d to %s", st.Count, strings.ReplaceAll(st.To, "_", "-")))
	case StepResolve:
		return w.repeat(ctx, st, a, st.Count, sr, func(ctx context.Context, _ int) error { return a.resolve(ctx) },
			fmt.Sprintf("%d usernames", st.Count))
	case StepJoin:
		return w.repeat(ctx, st, a, st.Count, sr, func(ctx context.Context, _ int) error { return a.joinNext(ctx) },
			fmt.Sprintf("%d channels", st.Count))
	case StepInvite:
		return w.repeat(ctx, st, a, st.Count, sr, func(ctx context.Context, _ int) error { return a.invite(ctx) },
			fmt.Sprintf("%d users into @%s", st.Count, group))
	case StepImportContacts:
		calls := (st.Count + st.Batch - 1) / st.Batch
		return w.repeat(ctx, st, a, calls, sr, func(ctx context.Context, i int) error {
			return a.importContacts(ctx, min(st.Batch, st.Count-i*st.Batch))
		}, fmt.Sprintf("%d contacts in %d calls", st.Count, calls))
	case StepAskSpamBot:
		return w.runProbe(ctx, a, monitor.ProbeSpamBot)
	case StepProbe:
		return w.runProbe(ctx, a, st.ProbeKind)
	case StepRequestProbe:
		return w.requestProbes(ctx, st, a)
	case StepAdvance:
		return limits.FormatDuration(st.Duration, limits.AllUnits), w.advanceTo(ctx, w.clk.Now().Add(st.Duration))
	case StepFreeze:
		until := time.Time{}
		if st.Duration > 0 {
			until = w.clk.Now().Add(st.Duration)
		}
		if err := w.srv.Freeze(a.phone, until); err != nil {
			return "", err
		}
		stat, _ := w.srv.Status(a.phone)
		return fmt.Sprintf("frozen by the server, deletion at +%s", limits.FormatDuration(stat.FrozenUntil.Sub(testserver.Epoch), limits.AllUnits)), nil
	case StepUnfreeze:
		return "the server lifted the freeze", w.srv.Unfreeze(a.phone)
	case StepBan:
		return "banned by the server (the next call or reconnect shows it)", w.srv.Ban(a.phone)
	case StepUnban:
		return "the server reversed the ban", w.srv.Unban(a.phone)
	case StepLimit:
		if st.Permanent {
			return "limited permanently by the server", w.srv.Limit(a.phone, 0)
		}
		return fmt.Sprintf("limited by the server for %s", limits.FormatDuration(st.Duration, limits.AllUnits)), w.srv.Limit(a.phone, st.Duration)
	case StepRelease:
		return "the server lifted the limit", w.srv.Release(a.phone)
	case StepFault:
		return w.fault(a, st.Fault)
	case StepReconnect:
		return w.reconnect(ctx)
	case StepHook:
		return w.runHook(ctx, st, a, sr)
	case StepCheck:
		sr.failures = w.evaluate(st.Check)
		if len(sr.failures) == 0 {
			return "holds", nil
		}
		return "does not hold", nil
	}
	return "", fmt.Errorf("step %s is not implemented", st.Kind)
}

// repeat makes n calls, spread over st.Over or at st.Interval, and
// counts their outcomes.
func (w *world) repeat(ctx context.Context, st *Step, a *acctRun, n int, sr *StepReport,
	fn func(ctx context.Context, i int) error, what string) (string, error) {
	interval := st.Interval
	if st.Over > 0 {
		interval = st.Over / time.Duration(n)
	}
	start := w.clk.Now()
	sr.Outcomes = map[string]int{}
	for i := 0; i < n; i++ {
		if err := w.advanceTo(ctx, start.Add(time.Duration(i)*interval)); err != nil {
			return what, err
		}
		err := w.call(ctx, func(ctx context.Context) error { return fn(ctx, i) })
		if ctx.Err() != nil {
			return what, fmt.Errorf("call %d of %d: %w", i+1, n, ctx.Err())
		}
		o := a.note(err)
		sr.Outcomes[o]++
		if o == OutcomeError && sr.FirstError == "" {
			sr.FirstError = err.Error()
		}
		if contains(st.StopOn, o) {
			return fmt.Sprintf("%s; stopped at call %d on %s", what, i+1, o), nil
		}
	}
	if interval > 0 {
		what += " over " + limits.FormatDuration(interval*time.Duration(n), limits.AllUnits)
		if err := w.advanceTo(ctx, start.Add(interval*time.Duration(n))); err != nil {
			return what, err
		}
	} else if n > 1 {
		what += " at once"
	}
	return what, nil
}

func (w *world) runProbe(ctx context.Context, a *acctRun, kind string) (string, error) {
	p := a.probe(kind)
	// A probe's error is its inconclusive result, already reported to the
	// account (and shown in the summary); it does not stop the scenario.
	_ = w.call(ctx, p.Run)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return a.lastProbe(kind), nil
}

// requestProbes asks the scheduler for runs, as an operator or a storm of
// state changes would; the floor decides what actually runs.
func (w *world) requestProbes(ctx context.Context, st *Step, a *acctRun) (string, error) {
	interval := st.Interval
	if st.Over > 0 {
		interval = st.Over / time.Duration(st.Count)
	}
	start := w.clk.Now()
	before := w.probeRuns(a, st.ProbeKind)
	for i := 0; i < st.Count; i++ {
		if err := w.advanceTo(ctx, start.Add(time.Duration(i)*interval)); err != nil {
			return "", err
		}
		if _, err := a.sched.Request(st.ProbeKind); err != nil {
			return "", err
		}
		if err := w.settle(ctx); err != nil {
			return "", err
		}
	}
	if err := w.advanceTo(ctx, start.Add(interval*time.Duration(st.Count))); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d requests for %s, %d runs", st.Count, st.ProbeKind, w.probeRuns(a, st.ProbeKind)-before), nil
}

func (w *world) probeRuns(a *acctRun, kind string) int {
	n := 0
	for _, e := range w.eventsOf(a.spec.Name) {
		if e.Type == monitor.EventProbe && e.Probe == kind {
			n++
		}
	}
	return n
}

func (w *world) fault(a *acctRun, f *FaultSpec) (string, error) {
	tf := testserver.Fault{Method: f.Method, Times: f.Times, Drop: f.Drop, Delay: f.Delay}
	what := "drop the connection"
	switch {
	case f.Error != "":
		tf.Error = tgerr.New(f.Code, f.Error)
		what = fmt.Sprintf("answer %d %s", f.Code, f.Error)
	case f.Delay > 0:
		what = "delay the answer by " + limits.FormatDuration(f.Delay, limits.AllUnits)
	}
	method := f.Method
	if method == "" {
		method = "any method"
	}
	return fmt.Sprintf("the next %d call(s) of %s %s", f.Times, method, what), w.srv.Inject(a.phone, tf)
}

// reconnect drops every connection (a network fault) and waits until each
// logged-in client has reconnected and run its self check, where a ban
// shows.
func (w *world) reconnect(ctx context.Context) (string, error) {
	var live []*acctRun
	for _, a := range w.order {
		if a.client != nil {
			a.drainSelf()
			live = append(live, a)
		}
	}
	n := w.srv.DropConnections()
	for _, a := range live {
		if err := a.awaitSelf(ctx); err != nil {
			return "", fmt.Errorf("account %s: %w", a.spec.Name, err)
		}
	}
	if err := w.settle(ctx); err != nil {
		return "", err
	}
	var states []string
	for _, a := range live {
		states = append(states, fmt.Sprintf("%s %s", a.spec.Name, a.mon.Snapshot().State))
	}
	return fmt.Sprintf("%d connection(s) dropped; after the reconnect: %s", n, strings.Join(states, ", ")), nil
}

func (w *world) runHook(ctx context.Context, st *Step, a *acctRun, sr *StepReport) (string, error) {
	h := w.r.opts.Hooks[st.Hook]
	env := &HookEnv{Account: a.spec.Name, Client: a.client, API: a.api, Monitor: a.mon, Clock: w.clk,
		Usernames: append([]string(nil), w.usernames...), a: a, outcomes: map[string]int{}}
	err := w.call(ctx, func(ctx context.Context) error { return h(ctx, env) })
	// A copy: goroutines the hook left behind may still Record into
	// env.outcomes (under w.mu) while the report is read without it.
	w.mu.Lock()
	sr.Outcomes = copyCounts(env.outcomes)
	w.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("hook %q: %w", st.Hook, err)
	}
	return fmt.Sprintf("hook %q finished", st.Hook), nil
}
