package probe

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

var epoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// fakeProbe records when it ran and signals each run.
type fakeProbe struct {
	kind string
	clk  *vclock.Clock
	mu   sync.Mutex
	runs []time.Time
	err  error
	ran  chan struct{}
}

func (f *fakeProbe) Kind() string { return f.kind }
func (f *fakeProbe) Run(context.Context) error {
	f.mu.Lock()
	f.runs = append(f.runs, f.clk.Now())
	f.mu.Unlock()
	f.ran <- struct{}{}
	return f.err
}

func (f *fakeProbe) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.runs...)
}

func newSched(t *testing.T, rec *Recorder) (*vclock.Clock, *monitor.Monitor, *monitor.Account, *Scheduler, func()) {
	t.Helper()
	clk := vclock.New(epoch)
	mon, err := monitor.New(monitor.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := mon.Account("alice")
	s := NewScheduler(acct, Options{Metrics: rec, Seed: 7})
	return clk, mon, acct, s, func() {}
}

// start runs the scheduler; with scheduled probes it returns once the
// loop has armed its timer.
func start(t *testing.T, clk *vclock.Clock, s *Scheduler, scheduled bool) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	if scheduled {
		clk.BlockUntil(1)
	}
	t.Cleanup(func() { cancel(); <-done })
}

// step advances the clock and, when the probe is due by then, waits until
// it ran and the loop re-armed (interval probes are always re-armed): no
// sleeps, the scheduler and the clock's pending timers tell. A run that
// never comes fails the test after a minute of wall time instead of
// hanging until the package's timeout.
func step(t *testing.T, clk *vclock.Clock, s *Scheduler, p *fakeProbe, d time.Duration) {
	t.Helper()
	next := s.Next()[p.kind]
	clk.Advance(d)
	if !next.IsZero() && !next.After(clk.Now()) {
		select {
		case <-p.ran:
		case <-time.After(time.Minute):
			t.Fatalf("%s probe due at %v did not run by %v", p.kind, next, clk.Now())
		}
		clk.BlockUntil(1)
	}
}

func TestSchedulerFloorHoldsUnderRequestStorm(t *testing.T) {
	clk, _, _, s, _ := newSched(t, nil)
	p := &fakeProbe{kind: "spambot", clk: clk, ran: make(chan struct{}, 100)}
	if err := s.Add(p, Schedule{Interval: 6 * time.Hour, Jitter: time.Hour, Floor: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	start(t, clk, s, true)
	// Two days of a request every minute (an operator hammering the API,
	// PEER_FLOODs every minute).
	for i := 0; i < 48*60; i++ {
		at, err := s.Request("spambot")
		if err != nil {
			t.Fatal(err)
		}
		if at.Before(clk.Now()) {
			t.Fatalf("request answered a time in the past: %v", at)
		}
		step(t, clk, s, p, time.Minute)
	}
	runs := p.times()
	if len(runs) < 90 || len(runs) > 97 {
		t.Fatalf("%d runs in 48 h of requests, want about 96 (one per 30 min floor)", len(runs))
	}
	for i := 1; i < len(runs); i++ {
		if gap := runs[i].Sub(runs[i-1]); gap < 30*time.Minute {
			t.Fatalf("runs %d and %d only %s apart (floor 30m)", i-1, i, gap)
		}
	}
}

func TestSchedulerIntervalWithJitter(t *testing.T) {
	clk, _, _, s, _ := newSched(t, nil)
	p := &fakeProbe{kind: "spambot", clk: clk, ran: make(chan struct{}, 100)}
	_ = s.Add(p, Schedule{Interval: 6 * time.Hour, Jitter: time.Hour, Floor: 30 * time.Minute})
	start(t, clk, s, true)
	for i := 0; i < 7*24*60/5; i++ {
		step(t, clk, s, p, 5*time.Minute)
	}
	runs := p.times()
	if runs[0].Sub(epoch) >= time.Hour {
		t.Fatalf("first run at +%s, want within the 1 h jitter", runs[0].Sub(epoch))
	}
	for i := 1; i < len(runs); i++ {
		gap := runs[i].Sub(runs[i-1])
		if gap < 5*time.Hour+30*time.Minute-5*time.Minute || gap > 6*time.Hour+30*time.Minute+5*time.Minute {
			t.Fatalf("gap %s outside 6 h ± 30 min (plus the 5 min step)", gap)
		}
	}
	if len(runs) < 26 || len(runs) > 30 {
		t.Fatalf("%d runs in a week, want about 28", len(runs))
	}
}

func TestSchedulerWatchRequestsProbesOnStateChanges(t *testing.T) {
	clk, mon, acct, s, _ := newSched(t, nil)
	freeze := &fakeProbe{kind: "freeze", clk: clk, ran: make(chan struct{}, 10)}
	sb := &fakeProbe{kind: "spambot", clk: clk, ran: make(chan struct{}, 10)}
	_ = s.Add(freeze, Schedule{Floor: 15 * time.Minute})
	_ = s.Add(sb, Schedule{Floor: 30 * time.Minute})
	defer s.Watch(mon)()
	start(t, clk, s, false)
	acct.ObserveSignal(clk.Now(), "messages.sendMessage", parse(420, "FROZEN_METHOD_INVALID"))
	<-freeze.ran // requested by the transition to frozen
	if next := s.Next()["spambot"]; !next.IsZero() {
		t.Fatalf("spambot scheduled at %v without a PEER_FLOOD", next)
	}
	if len(sb.times()) != 0 {
		t.Fatal("spambot probe ran")
	}
}

func TestSchedulerMetricsAndErrors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	rec, err := NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	clk, _, _, s, _ := newSched(t, rec)
	p := &fakeProbe{kind: "sessions", clk: clk, ran: make(chan struct{}, 10), err: errors.New("boom")}
	_ = s.Add(p, Schedule{Interval: time.Hour, Floor: time.Minute})
	start(t, clk, s, true)
	step(t, clk, s, p, time.Minute)
	if got := testutil.ToFloat64(rec.errors.WithLabelValues("alice", "sessions")); got != 1 {
		t.Fatalf("errors = %v", got)
	}
	p.err = nil
	step(t, clk, s, p, 61*time.Minute)
	if got := testutil.ToFloat64(rec.lastSuccess.WithLabelValues("alice", "sessions")); got != float64(clk.Now().Unix()) {
		t.Fatalf("last success = %v, want %v", got, clk.Now().Unix())
	}
}

func TestSchedulerValidation(t *testing.T) {
	_, _, _, s, _ := newSched(t, nil)
	if err := s.Add(&fakeProbe{kind: "x"}, Schedule{Interval: time.Minute, Floor: time.Hour}); err == nil {
		t.Fatal("interval below floor accepted")
	}
	if _, err := s.Request("nope"); !errors.Is(err, ErrUnknownProbe) {
		t.Fatalf("Request(unknown) = %v", err)
	}
}

// After a restart the daemon restores each probe's last success; without
// it the gauge is missing until the probe runs again.
func TestRecorderRestore(t *testing.T) {
	rec, err := NewRecorder(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rec.Restore("alice", monitor.ProbeSpamBot, time.Time{})
	if n := testutil.CollectAndCount(rec.lastSuccess); n != 0 {
		t.Fatalf("a zero time created %d series", n)
	}
	at := time.Date(2026, 1, 5, 9, 0, 0, 500e6, time.UTC)
	rec.Restore("alice", monitor.ProbeSpamBot, at)
	if got, want := testutil.ToFloat64(rec.lastSuccess.WithLabelValues("alice", monitor.ProbeSpamBot)), float64(at.UnixMilli())/1000; got != want {
		t.Fatalf("restored gauge %v, want %v", got, want)
	}
}

// TestSchedulerWatchConfirmsSpamBotFrozenWithFreezeProbe: SpamBot saying
// "frozen" makes the account frozen with the reason "confirm with
// help.getAppConfig"; Watch must then request the freeze probe that reads
// the dates. A probe's answer requests no probe of its own kind: SpamBot
// saying "limited" does not ask SpamBot again, the freeze probe saying
// "frozen" does not ask for another freeze probe.
func TestSchedulerWatchConfirmsSpamBotFrozenWithFreezeProbe(t *testing.T) {
	clk, mon, acct, s, _ := newSched(t, nil)
	freeze := &fakeProbe{kind: monitor.ProbeFreeze, clk: clk, ran: make(chan struct{}, 10)}
	sb := &fakeProbe{kind: monitor.ProbeSpamBot, clk: clk, ran: make(chan struct{}, 10)}
	_ = s.Add(freeze, Schedule{Floor: 15 * time.Minute})
	_ = s.Add(sb, Schedule{Floor: 30 * time.Minute})
	defer s.Watch(mon)()

	acct.ObserveSpamBot(clk.Now(), spambot.Result{State: spambot.LimitedPermanent, Raw: "limited"})
	if next := s.Next()[monitor.ProbeSpamBot]; !next.IsZero() {
		t.Fatalf("SpamBot's own \"limited\" scheduled another SpamBot probe at %v", next)
	}
	acct.ObserveSpamBot(clk.Now(), spambot.Result{State: spambot.Frozen, Raw: "blocked"})
	if next := s.Next()[monitor.ProbeFreeze]; !next.Equal(clk.Now()) {
		t.Fatalf("SpamBot's \"frozen\" scheduled the freeze probe at %v, want now (%v)", next, clk.Now())
	}
	start(t, clk, s, false)
	<-freeze.ran // due now: no clock advance needed
	// The freeze probe confirms; its own answer requests nothing more.
	acct.ObserveFreeze(clk.Now(), monitor.FreezeStatus{Known: true, Frozen: true, Since: clk.Now(), DeletionDate: clk.Now().Add(14 * 24 * time.Hour)})
	if next := s.Next()[monitor.ProbeFreeze]; !next.IsZero() {
		t.Fatalf("the freeze probe's own answer scheduled another freeze probe at %v", next)
	}
	if len(sb.times()) != 0 {
		t.Fatal("spambot probe ran")
	}
}

// TestSchedulerSpreadsOverdueProbesAfterDowntime: after a long downtime
// every account's SpamBot probe is overdue. SetLast must not schedule them
// all at the restart instant: each runs within its jitter of the restart,
// at its own time, as the first runs after Add do.
func TestSchedulerSpreadsOverdueProbesAfterDowntime(t *testing.T) {
	clk := vclock.New(epoch)
	mon, err := monitor.New(monitor.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	sched := DefaultSchedules()[monitor.ProbeSpamBot]
	lastRun := epoch.Add(-48 * time.Hour) // two days down
	seen := map[time.Time]string{}
	var first, last time.Time
	for i := range 20 {
		acct, err := mon.Account("crm-bot-" + string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		s := NewScheduler(acct, Options{}) // seeded from the name, as in the daemon
		if err := s.Add(&fakeProbe{kind: monitor.ProbeSpamBot, clk: clk}, sched); err != nil {
			t.Fatal(err)
		}
		if err := s.SetLast(monitor.ProbeSpamBot, lastRun); err != nil {
			t.Fatal(err)
		}
		next := s.Next()[monitor.ProbeSpamBot]
		if next.Before(epoch) || !next.Before(epoch.Add(sched.Jitter)) {
			t.Fatalf("%s: overdue probe scheduled at %+v from the restart, want within [0, %s)", acct.Name(), next.Sub(epoch), sched.Jitter)
		}
		if other, ok := seen[next]; ok {
			t.Fatalf("%s and %s probe at the same instant %v", other, acct.Name(), next)
		}
		seen[next] = acct.Name()
		if first.IsZero() || next.Before(first) {
			first = next
		}
		if next.After(last) {
			last = next
		}
	}
	spread := last.Sub(first)
	t.Logf("20 overdue probes from +%s to +%s after the restart", first.Sub(epoch).Round(time.Second), last.Sub(epoch).Round(time.Second))
	if spread < sched.Jitter/2 {
		t.Fatalf("20 overdue probes spread over %s, want most of the %s jitter", spread, sched.Jitter)
	}
	// A probe that is not overdue keeps its regular time.
	acct, _ := mon.Account("crm-bot-recent")
	s := NewScheduler(acct, Options{})
	_ = s.Add(&fakeProbe{kind: monitor.ProbeSpamBot, clk: clk}, sched)
	_ = s.SetLast(monitor.ProbeSpamBot, epoch.Add(-time.Hour))
	if next := s.Next()[monitor.ProbeSpamBot]; next.Sub(epoch) < 4*time.Hour {
		t.Fatalf("a probe run 1 h ago is next due in %s, want about 5 h", next.Sub(epoch))
	}
}
