package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/gotd/td/clock"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/monitor"
)

// ErrUnknownProbe is returned by Request for a kind never added.
var ErrUnknownProbe = errors.New("probe: unknown probe kind")

// Options configures a Scheduler.
type Options struct {
	// Metrics receives probe metrics; nil keeps none. Share one Recorder
	// between the schedulers of all accounts.
	Metrics *Recorder
	// Logger defaults to zap.NewNop.
	Logger *zap.Logger
	// Seed makes jitter reproducible (tests, simulations); zero seeds
	// from the account name, which still spreads a fleet.
	Seed uint64
}

// Scheduler runs one account's probes on the account's clock.
type Scheduler struct {
	acct  *monitor.Account
	clock clock.Clock
	opts  Options
	log   *zap.Logger

	mu      sync.Mutex
	rng     *rand.Rand
	entries map[string]*entry
	timer   clock.Timer
}

type entry struct {
	probe    Probe
	sched    Schedule
	last     time.Time // last run started
	next     time.Time // zero: not scheduled
	requests int       // coalesced requests since the last run
}

// NewScheduler returns a scheduler for the account's probes.
func NewScheduler(acct *monitor.Account, opts Options) *Scheduler {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	seed := opts.Seed
	if seed == 0 {
		for _, c := range acct.Name() {
			seed = seed*31 + uint64(c)
		}
	}
	return &Scheduler{
		acct: acct, clock: acct.Clock(), opts: opts, log: opts.Logger,
		rng: rand.New(rand.NewPCG(seed, 0x70726f6265)), entries: map[string]*entry{},
	}
}

// Add registers a probe. A probe with an Interval first runs within its
// Jitter of now.
func (s *Scheduler) Add(p Probe, sched Schedule) error {
	if sched.Interval < 0 || sched.Jitter < 0 || sched.Floor < 0 {
		return fmt.Errorf("probe %s: interval, jitter and floor must not be negative", p.Kind())
	}
	if sched.Interval > 0 && sched.Interval < sched.Floor {
		return fmt.Errorf("probe %s: interval %s is below its floor %s", p.Kind(), sched.Interval, sched.Floor)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &entry{probe: p, sched: sched}
	if sched.Interval > 0 {
		e.next = s.clock.Now().Add(s.jitter(sched.Jitter))
	}
	s.entries[p.Kind()] = e
	s.rearmLocked()
	return nil
}

// SetLast tells the scheduler when a probe last ran (e.g. restored from
// the daemon's store), so that the floor holds across restarts. A regular
// run that is already overdue (the process was down for longer than the
// interval) comes within Jitter of now rather than at now: a fleet
// restarted together would otherwise probe SpamBot at the same instant.
func (s *Scheduler) SetLast(kind string, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[kind]
	if !ok {
		return ErrUnknownProbe
	}
	e.last = t
	if e.sched.Interval > 0 {
		e.next = s.after(e, t)
		// after() keeps Floor from t, so an overdue run is past its floor.
		if now := s.clock.Now(); e.next.Before(now) {
			e.next = now.Add(s.jitter(e.sched.Jitter))
		}
	}
	s.rearmLocked()
	return nil
}

// Request asks for a probe as soon as its floor allows and returns when it
// will run. Requests are coalesced: a storm of them runs the probe once.
func (s *Scheduler) Request(kind string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[kind]
	if !ok {
		return time.Time{}, ErrUnknownProbe
	}
	at := s.clock.Now()
	if !e.last.IsZero() {
		if floor := e.last.Add(e.sched.Floor); floor.After(at) {
			at = floor
		}
	}
	if e.next.IsZero() || at.Before(e.next) {
		e.next = at
	}
	e.requests++
	s.rearmLocked()
	if now := s.clock.Now(); e.next.Before(now) {
		return now, nil // due, and about to run
	}
	return e.next, nil
}

// Watch requests probes when the account's state calls for them: a freeze
// probe when it becomes frozen (FROZEN_* errors, SpamBot saying
// "frozen"), a SpamBot probe when it becomes limited (PEER_FLOOD). A
// change that a probe's answer caused requests no probe of that same
// kind: SpamBot saying "limited" must not ask SpamBot again, but SpamBot
// saying "frozen" asks the freeze probe, which reads the dates SpamBot
// does not give. The floor still applies.
func (s *Scheduler) Watch(mon *monitor.Monitor) (cancel func()) {
	name := s.acct.Name()
	return mon.SubscribeAccount(name, func(e monitor.Event) {
		if e.Type != monitor.EventState {
			return
		}
		var kind string
		switch e.State {
		case monitor.Frozen:
			kind = monitor.ProbeFreeze
		case monitor.Limited:
			kind = monitor.ProbeSpamBot
		}
		if kind != "" && kind != e.Probe {
			_, _ = s.Request(kind)
		}
	})
}

// Run executes probes when they are due until ctx ends. Probes of one
// account run one at a time.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	s.timer = s.clock.Timer(time.Hour)
	s.rearmLocked()
	t := s.timer
	s.mu.Unlock()
	defer clock.StopTimer(t)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
		}
		for _, e := range s.due() {
			s.runOne(ctx, e)
		}
		s.mu.Lock()
		s.rearmLocked()
		s.mu.Unlock()
	}
}

// due marks the probes that are due as started and returns them.
func (s *Scheduler) due() []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var out []*entry
	for _, e := range s.entries {
		if !e.next.IsZero() && !e.next.After(now) {
			e.last, e.requests = now, 0
			e.next = time.Time{}
			if e.sched.Interval > 0 {
				e.next = s.after(e, now)
			}
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].probe.Kind() < out[j].probe.Kind() })
	return out
}

func (s *Scheduler) runOne(ctx context.Context, e *entry) {
	kind := e.probe.Kind()
	err := e.probe.Run(ctx)
	now := s.clock.Now()
	if m := s.opts.Metrics; m != nil {
		m.Observe(s.acct.Name(), kind, now, err)
	}
	if err != nil {
		s.log.Info("Probe failed", zap.String("account", s.acct.Name()), zap.String("probe", kind), zap.Error(err))
	}
}

// after returns the next regular run after t: Interval ± Jitter/2, never
// closer than Floor.
func (s *Scheduler) after(e *entry, t time.Time) time.Time {
	d := e.sched.Interval
	if j := e.sched.Jitter; j > 0 {
		d += s.jitter(j) - j/2
	}
	return t.Add(max(d, e.sched.Floor))
}

func (s *Scheduler) jitter(j time.Duration) time.Duration {
	if j <= 0 {
		return 0
	}
	return time.Duration(s.rng.Int64N(int64(j)))
}

// rearmLocked points the timer at the earliest due probe.
func (s *Scheduler) rearmLocked() {
	if s.timer == nil {
		return
	}
	var next time.Time
	for _, e := range s.entries {
		if !e.next.IsZero() && (next.IsZero() || e.next.Before(next)) {
			next = e.next
		}
	}
	if next.IsZero() {
		clock.StopTimer(s.timer)
		return
	}
	s.timer.Reset(next.Sub(s.clock.Now()))
}

// Next returns when each scheduled probe will run next (zero: only on
// request), for the API and tests.
func (s *Scheduler) Next() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]time.Time, len(s.entries))
	for k, e := range s.entries {
		out[k] = e.next
	}
	return out
}
