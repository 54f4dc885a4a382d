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
	parked  map[*parking]struct{}
}

// parking is one application waiting on the clock.
type parking struct {
	deadline time.Time // zero: until the application is stopped
}

func newPacer(expect int) *pacer {
	return &pacer{
		changed: make(chan struct{}),
		started: map[string]bool{},
		expect:  expect,
		parked:  map[*parking]struct{}{},
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
	p.parked[k] = struct{}{}
	p.active--
	p.notifyLocked()
	return k
}

// unpark marks the caller as running again. After wake it already is;
// after a cancellation it becomes so here.
func (p *pacer) unpark(k *parking) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.parked[k]; ok {
		delete(p.parked, k)
		p.active++
		p.notifyLocked()
	}
}

// next returns the earliest deadline of a parked application.
func (p *pacer) next() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best time.Time
	for k := range p.parked {
		if !k.deadline.IsZero() && (best.IsZero() || k.deadline.Before(best)) {
			best = k.deadline
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
	for k := range p.parked {
		if !k.deadline.IsZero() && !k.deadline.After(t) {
			delete(p.parked, k)
			p.active++
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
