package demo

import (
	"context"
	"sync"
	"time"
)

// pacer keeps the demo's outcomes independent of the machine's speed:
// virtual time moves only while every simulated application is waiting
// for it. An application is active from the moment its behaviour starts
// until it parks on the clock (sleep, idle), and again from the moment
// the clock reaches its deadline; the clock's driver waits for "none
// active" before each move. On a slow or loaded machine the demo then
// runs slower than --speed instead of skipping the applications' calls.
//
// Probes and reconnects are not paced: they are the daemon's own work,
// on its own schedule, and what the demo must reach is driven by the
// applications.
type pacer struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change of active
	active  int
	started map[string]bool
	expect  int // applications that must start before time moves
	// parked are the waiting applications by deadline (Unix ns; 0: until
	// stopped). Deadlines cluster (the applications of a behaviour sleep
	// the same period from the same moments), so next and wake look at a
	// few dozen groups instead of every application: scanning 3,000 at
	// every move was 4% of a 3,000-account demo's CPU.
	parked map[int64]*parkedAt
}

// parkedAt are the applications waiting for one deadline.
type parkedAt struct {
	deadline time.Time
	apps     map[*parking]struct{}
}

// parking is one application waiting on the clock.
type parking struct {
	deadline time.Time // zero: until the application is stopped
}

func (k *parking) key() int64 {
	if k.deadline.IsZero() {
		return 0
	}
	return k.deadline.UnixNano()
}

func newPacer(expect int) *pacer {
	return &pacer{
		changed: make(chan struct{}),
		started: map[string]bool{},
		expect:  expect,
		parked:  map[int64]*parkedAt{},
	}
}

func (p *pacer) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// enter marks the application of account name as running.
func (p *pacer) enter(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active++
	p.started[name] = true
	p.notifyLocked()
}

// leave marks an application as returned.
func (p *pacer) leave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active--
	p.notifyLocked()
}

// park marks the caller as waiting for virtual time until deadline (zero:
// until its context ends). The caller must call unpark when it runs again.
func (p *pacer) park(deadline time.Time) *parking {
	k := &parking{deadline: deadline}
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.parked[k.key()]
	if g == nil {
		g = &parkedAt{deadline: deadline, apps: map[*parking]struct{}{}}
		p.parked[k.key()] = g
	}
	g.apps[k] = struct{}{}
	p.active--
	p.notifyLocked()
	return k
}

// unpark marks the caller as running again. After wake it already is;
// after a cancellation it becomes so here.
func (p *pacer) unpark(k *parking) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.parked[k.key()]
	if g == nil {
		return // woken: active already
	}
	if _, ok := g.apps[k]; ok {
		delete(g.apps, k)
		if len(g.apps) == 0 {
			delete(p.parked, k.key())
		}
		p.active++
		p.notifyLocked()
	}
}

// next returns the earliest deadline of a parked application.
func (p *pacer) next() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best time.Time
	for key, g := range p.parked {
		if key != 0 && (best.IsZero() || g.deadline.Before(best)) {
			best = g.deadline
		}
	}
	return best, !best.IsZero()
}

// wake counts the applications whose deadline is at or before t as
// active, before the clock moves to t: their timers fire then, and the
// driver must wait for them to park again before it moves further.
func (p *pacer) wake(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, g := range p.parked {
		if key != 0 && !g.deadline.After(t) {
			delete(p.parked, key)
			p.active += len(g.apps)
		}
	}
	p.notifyLocked()
}

// quiet waits until every expected application has started and none is
// active.
func (p *pacer) quiet(ctx context.Context) error {
	for {
		p.mu.Lock()
		done := p.active == 0 && len(p.started) >= p.expect
		ch := p.changed
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
