package scenarios

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/clock"
	"github.com/gotd/td/telegram"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/vclock"
	"github.com/tgsafety/tgsafety/testserver"
)

// Target is where a scenario runs.
type Target uint8

// The targets. There is deliberately no production target (ParseTarget
// explains why).
const (
	// TargetTestServer runs against the in-process simulated Telegram on
	// virtual time (the default).
	TargetTestServer Target = iota
	// TargetStaging runs against Telegram's test DCs with a test account,
	// on real time, and only scenarios labelled staging.
	TargetStaging
)

// String returns the target's command-line name.
func (t Target) String() string {
	if t == TargetStaging {
		return "staging"
	}
	return "testserver"
}

// ErrProductionRefused is returned by ParseTarget for anything that names
// Telegram's production service.
var ErrProductionRefused = errors.New("there is no production target: scenarios provoke Telegram's anti-abuse system on purpose " +
	"(bursts, cold DMs, invites); run against real accounts they would get those accounts limited or banned and " +
	"bother real people. Use --target testserver (the simulation), or --target staging (Telegram's test DCs) for the " +
	"few low-volume scenarios labelled staging")

// ParseTarget reads a --target value. Production names are refused with
// ErrProductionRefused; other unknown names with a plain error.
func ParseTarget(s string) (Target, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "testserver", "sim":
		return TargetTestServer, nil
	case "staging", "test-dc", "testdc":
		return TargetStaging, nil
	case "production", "prod", "live", "telegram", "main", "real":
		return 0, ErrProductionRefused
	}
	return 0, fmt.Errorf("unknown target %q (testserver or staging)", s)
}

// Options configures a Runner. The zero value runs against the test
// server with no hooks and no progress output.
type Options struct {
	// Target is TargetTestServer (default) or TargetStaging.
	Target Target
	// Staging holds the test DC credentials for TargetStaging
	// (StagingFromEnv reads them).
	Staging StagingConfig
	// Hooks are the Go functions `hook` steps run, by name: a team's own
	// client code (see Hook).
	Hooks map[string]Hook
	// ConfigureClient, when set, adjusts every scenario client's options
	// after the runner has set them (add your own middlewares after the
	// monitor's, a device config, ...). It must keep the runner's
	// middlewares and hooks. On staging the runner sets DC and DCList
	// back to Telegram's test DCs afterwards (and logs a warning if they
	// were changed): Go code cannot point a staging run at production.
	ConfigureClient func(account string, opts *telegram.Options)
	// Progress receives one line per scenario and per step as they run.
	// Nil means none.
	Progress io.Writer
	// Logger receives the runner's and the test server's logs. Defaults to
	// zap.NewNop.
	Logger *zap.Logger
	// Timeout bounds one scenario in real time, so that a defect cannot
	// hang a test run. Defaults to 2 minutes. On staging, where advance
	// steps wait in real time, a scenario gets at least its total advance
	// plus StagingMargin (and 30 s per SpamBot or probe step), so that a
	// scenario the parser accepts cannot time out by design.
	Timeout time.Duration
	// Key is the test server's RSA key. Defaults to one key generated per
	// Runner: generating a 2048-bit key costs more than most scenarios.
	Key *rsa.PrivateKey
}

// StagingMargin is the real time a staging scenario gets beyond its
// advance steps for logging in (key exchange, sign-in, the self check on
// connect). Exported so that callers sizing their own deadlines around
// Runner.Run can match it.
const StagingMargin = 2 * time.Minute

// stagingProbeWait is the SpamBot prober's default wait for a reply
// (spambot.ProberOptions.Timeout), allowed per ask_spambot or probe step.
const stagingProbeWait = 30 * time.Second

// timeoutFor is the real-time limit of one run of s: Options.Timeout, and
// on staging at least the scenario's total advance, StagingMargin and the
// probes' waits, since advance waits in real time there.
func (r *Runner) timeoutFor(s *Scenario) time.Duration {
	t := r.opts.Timeout
	if r.opts.Target != TargetStaging {
		return t
	}
	need := StagingMargin
	for _, st := range s.Steps {
		switch st.Kind {
		case StepAdvance:
			need += st.Duration
		case StepAskSpamBot, StepProbe:
			need += stagingProbeWait
		}
	}
	return max(t, need)
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
}

// Runner runs scenarios. It is safe for concurrent use; each Run builds
// its own simulated world.
type Runner struct {
	opts Options

	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyErr  error
}

// NewRunner validates the options.
func NewRunner(opts Options) (*Runner, error) {
	opts.setDefaults()
	if opts.Target > TargetStaging {
		return nil, fmt.Errorf("scenarios: Options.Target: invalid target %d", opts.Target)
	}
	if opts.Target == TargetStaging {
		if err := opts.Staging.Validate(); err != nil {
			return nil, err
		}
	}
	for name, h := range opts.Hooks {
		if h == nil {
			return nil, fmt.Errorf("scenarios: Options.Hooks[%q] is nil", name)
		}
	}
	return &Runner{opts: opts, key: opts.Key}, nil
}

func (r *Runner) serverKey() (*rsa.PrivateKey, error) {
	r.keyOnce.Do(func() {
		if r.key == nil {
			r.key, r.keyErr = rsa.GenerateKey(rand.Reader, 2048)
		}
	})
	return r.key, r.keyErr
}

func (r *Runner) progressf(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, format+"\n", args...)
	}
}

// Run runs one scenario and returns its report. The error is for a
// scenario that could not run at all (the test server did not start, a
// hook is missing); failed expectations are in the report
// (Report.Passed, Report.Failures), as is a step that failed mid-way.
func (r *Runner) Run(ctx context.Context, s *Scenario) (*Report, error) {
	rep := &Report{Name: s.Name, File: s.File, Description: s.Description, Labels: s.Labels, Target: r.opts.Target.String()}
	if r.opts.Target == TargetStaging && !s.HasLabel(LabelStaging) {
		rep.Skipped = "not labelled staging: it needs the simulated server or sends more than a test account should"
		r.progressf("- %s: skipped on staging (%s)", s.Name, rep.Skipped)
		return rep, nil
	}
	for _, st := range s.Steps {
		if st.Kind == StepHook && r.opts.Hooks[st.Hook] == nil {
			return nil, fmt.Errorf("%s:%d: steps: hook %q is not registered (Options.Hooks)", s.File, st.Line, st.Hook)
		}
	}
	wallStart := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.timeoutFor(s))
	defer cancel()
	w, err := r.newWorld(ctx, s)
	if err != nil {
		return nil, err
	}
	defer w.close()
	rep.Start = w.start
	r.progressf("▶ %s (%s)", s.Name, s.File)
	for i, st := range s.Steps {
		sr := w.runStep(ctx, i, st)
		rep.Steps = append(rep.Steps, sr)
		r.progressf("  [%d/%d] %s", i+1, len(s.Steps), sr.line(rep.Start))
		if sr.Error != "" {
			rep.Failures = append(rep.Failures, Failure{File: s.File, Line: st.Line,
				Field: fmt.Sprintf("steps[%d].%s", i, st.Kind), Account: st.Account,
				Expected: "the step to run", Got: sr.Error})
			break
		}
		rep.Failures = append(rep.Failures, sr.failures...)
	}
	for _, e := range s.Expect {
		rep.Failures = append(rep.Failures, w.evaluate(e)...)
	}
	rep.End = w.clk.Now()
	rep.Accounts = w.accountReports()
	rep.Passed = len(rep.Failures) == 0
	rep.Wall = time.Since(wallStart)
	if rep.Passed {
		r.progressf("✔ %s passed (virtual %s, wall %s)", s.Name, limits.FormatDuration(rep.End.Sub(rep.Start), limits.AllUnits), rep.Wall.Round(time.Millisecond))
	} else {
		r.progressf("✘ %s failed:", s.Name)
		for _, f := range rep.Failures {
			r.progressf("    %s", f.Error())
		}
	}
	return rep, nil
}

// world is one scenario's simulated (or staging) environment.
type world struct {
	r   *Runner
	s   *Scenario
	log *zap.Logger
	srv *testserver.Server // nil on staging
	// vclk is the virtual clock (nil on staging, where clk is the system's).
	vclk    *vclock.Clock
	clk     clock.Clock
	mon     *monitor.Monitor
	profile *limits.Profile
	// start is the scenario's first instant.
	start time.Time

	// base is how many timers are pending on the virtual clock when
	// nothing runs: one per probe scheduler. See settle.
	base int

	mu     sync.Mutex // guards events and each account's counters
	events map[string][]monitor.Event

	accounts map[string]*acctRun
	order    []*acctRun
	stops    []func()
	// usernames of the population, in order (strangers to new accounts).
	usernames []string
	channels  []string
}

func (r *Runner) newWorld(ctx context.Context, s *Scenario) (*world, error) {
	w := &world{r: r, s: s, log: r.opts.Logger.With(zap.String("scenario", s.Name)),
		events: map[string][]monitor.Event{}, accounts: map[string]*acctRun{}}
	w.profile = limits.Default()
	if p := s.ProfilePath(); p != "" {
		prof, err := limits.Load(p)
		if err != nil {
			return nil, err
		}
		w.profile = prof
	}
	if r.opts.Target == TargetTestServer {
		key, err := r.serverKey()
		if err != nil {
			return nil, fmt.Errorf("scenarios: server key: %w", err)
		}
		w.vclk = vclock.New(testserver.Epoch)
		w.clk = w.vclk
		srv, err := testserver.New(testserver.Options{Clock: w.vclk, Profile: w.profile, Users: s.Users,
			Seed: s.Seed, Key: key, Groups: groupsNeeded(s), Logger: w.log.Named("testserver")})
		if err != nil {
			return nil, err
		}
		srv.Start()
		w.srv = srv
		w.stops = append(w.stops, func() { _ = srv.Close() })
		w.usernames = srv.Usernames(s.Users)
		w.channels = srv.ChannelUsernames()
	} else {
		w.clk = clock.System
	}
	w.start = w.clk.Now()
	mon, err := monitor.New(monitor.Options{Clock: w.clk, Logger: w.log.Named("monitor"), EventBuffer: 16,
		Sink: monitor.SinkFunc(w.record)})
	if err != nil {
		w.close()
		return nil, err
	}
	w.mon = mon
	for i, a := range s.Accounts {
		ar, err := w.newAccount(i, a)
		if err != nil {
			w.close()
			return nil, err
		}
		w.accounts[a.Name] = ar
		w.order = append(w.order, ar)
	}
	return w, nil
}

// groupsNeeded is how many extra groups the join steps need beyond the
// six every simulated world has.
func groupsNeeded(s *Scenario) int {
	joins := map[string]int{}
	need := 0
	for _, st := range s.Steps {
		if st.Kind == StepJoin || st.Kind == StepInvite {
			joins[st.Account] += st.Count
			need = max(need, joins[st.Account])
		}
	}
	return max(0, need-6)
}

func (w *world) record(ev monitor.Event) {
	w.mu.Lock()
	w.events[ev.Account] = append(w.events[ev.Account], ev)
	w.mu.Unlock()
}

func (w *world) eventsOf(name string) []monitor.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]monitor.Event(nil), w.events[name]...)
}

func (w *world) close() {
	for _, a := range w.order {
		a.stop()
	}
	for i := len(w.stops) - 1; i >= 0; i-- {
		w.stops[i]()
	}
}

// Virtual time. The scenario's driver is the only goroutine that moves
// the clock, and it moves it only when every actor is idle or waiting for
// the clock: that is what makes an outcome independent of goroutine
// timing. Actors that wait on the clock are probe schedulers (one timer
// each, always armed), calls sleeping through a flood wait (floodwait
// client, guard MaxWait), the SpamBot prober's polling, and faults that
// delay an answer on virtual time.

// pendingWait reports when the virtual clock has at least n timers.
type pendingWait struct {
	clk *vclock.Clock
	n   int
	ch  chan struct{}
}

func (w *world) untilPending(n int) *pendingWait {
	p := &pendingWait{clk: w.vclk, n: n, ch: make(chan struct{})}
	go func() {
		p.clk.BlockUntil(n)
		close(p.ch)
	}()
	return p
}

// release ends the waiting goroutine when its condition is no longer of
// interest: far-future timers satisfy it, and are stopped once it is gone.
func (p *pendingWait) release() {
	select {
	case <-p.ch:
		return
	default:
	}
	dummies := make([]clock.Timer, p.n)
	for i := range dummies {
		dummies[i] = p.clk.Timer(100 * 365 * 24 * time.Hour)
	}
	<-p.ch
	for _, t := range dummies {
		t.Stop()
	}
}

// settle waits until every probe scheduler is idle with its timer armed.
func (w *world) settle(ctx context.Context) error {
	if w.vclk == nil || w.base == 0 {
		return nil
	}
	p := w.untilPending(w.base)
	select {
	case <-p.ch:
		return nil
	case <-ctx.Done():
		p.release()
		return fmt.Errorf("waiting for probe schedulers: %w", ctx.Err())
	}
}

// advanceTo moves virtual time to t, stopping at every pending deadline on
// the way so that each actor runs at its own time and finishes before the
// clock moves on. On staging it waits in real time.
func (w *world) advanceTo(ctx context.Context, t time.Time) error {
	if w.vclk == nil {
		d := time.Until(t)
		if d <= 0 {
			return nil
		}
		timer := w.clk.Timer(d)
		defer clock.StopTimer(timer)
		select {
		case <-timer.C():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		next, ok := w.vclk.Next()
		if !ok || next.After(t) {
			break
		}
		w.vclk.AdvanceTo(next)
		if err := w.settle(ctx); err != nil {
			return err
		}
	}
	w.vclk.AdvanceTo(t)
	return w.settle(ctx)
}

// call runs fn (one client action) and returns its error. While fn waits
// for virtual time (a timer beyond the schedulers'), the clock moves to the
// next deadline; fn never races the clock.
func (w *world) call(ctx context.Context, fn func(ctx context.Context) error) error {
	if w.vclk == nil {
		return recovered(ctx, fn)
	}
	done := make(chan error, 1)
	go func() { done <- recovered(ctx, fn) }()
	for {
		blocked := w.untilPending(w.base + 1)
		select {
		case err := <-done:
			blocked.release()
			if serr := w.settle(ctx); serr != nil && err == nil {
				err = serr
			}
			return err
		case <-blocked.ch:
			if next, ok := w.vclk.Next(); ok {
				w.vclk.AdvanceTo(next)
			}
		case <-ctx.Done():
			blocked.release()
			// fn sees the same context; done is buffered, so it can finish later.
			return fmt.Errorf("scenario timed out in real time (Options.Timeout): %w", ctx.Err())
		}
	}
}

// recovered runs fn and turns a panic in it (a hook is a team's own code)
// into an error of the step, on either target, rather than a crash.
func recovered(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in client code: %v", r)
		}
	}()
	return fn(ctx)
}

// The outcomes of the scenario client's calls, besides signal kinds.
const (
	OutcomeOK      = "ok"
	OutcomeBlocked = "blocked"
	OutcomeError   = "error"
)

// outcomeOf classifies a call's result for Report outcomes.
func outcomeOf(err error) (outcome, blockReason string) {
	if err == nil {
		return OutcomeOK, ""
	}
	var be *guard.BlockedError
	if errors.As(err, &be) {
		return OutcomeBlocked, be.Reason.String()
	}
	if s := signal.Classify(err); s.Kind != signal.None {
		return s.Kind.String(), ""
	}
	return OutcomeError, ""
}

// sortedKeys returns a map's keys in order, for stable reports.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// spamBotOf reads the account's last conclusive SpamBot answer.
func spamBotOf(s monitor.Snapshot) string {
	if s.SpamBot == nil {
		return "none"
	}
	if s.SpamBot.State == spambot.LimitedTemporary && !s.SpamBot.Until.IsZero() {
		return fmt.Sprintf("%s until %s", s.SpamBot.State, s.SpamBot.Until.UTC().Format(time.RFC3339))
	}
	return s.SpamBot.State.String()
}
