package vclock

import (
	"sort"
	"sync"
	"time"

	"github.com/gotd/td/clock"
)

// Clock is a virtual clock that moves only when told to. The zero value is
// not usable; call New.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64 // orders waiters with equal deadlines by creation
	timers map[*waiter]struct{}
	added  *sync.Cond // broadcast whenever a waiter is scheduled
}

var _ clock.Clock = (*Clock)(nil)

// New returns a clock that reads start until it is advanced.
func New(start time.Time) *Clock {
	c := &Clock{now: start, timers: map[*waiter]struct{}{}}
	c.added = sync.NewCond(&c.mu)
	return c
}

// Now returns the current virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Timer returns a timer that fires once the clock has been advanced by d.
// A non-positive d fires immediately, like time.NewTimer.
func (c *Clock) Timer(d time.Duration) clock.Timer {
	w := &waiter{clock: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.scheduleLocked(w, d)
	c.mu.Unlock()
	return w
}

// Ticker returns a ticker firing every d of virtual time. It panics for a
// non-positive d, as time.NewTicker does.
func (c *Clock) Ticker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("vclock: non-positive interval for Ticker")
	}
	w := &waiter{clock: c, ch: make(chan time.Time, 1), period: d}
	c.mu.Lock()
	c.scheduleLocked(w, d)
	c.mu.Unlock()
	return &ticker{w}
}

// Advance moves the clock forward by d, firing every timer and ticker that
// falls due on the way, in deadline order, with Now equal to each deadline
// as it fires. It returns the new time. A negative d is ignored: virtual time
// never goes backwards.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d < 0 {
		d = 0
	}
	target := c.now.Add(d)
	for {
		w := c.nextLocked()
		if w == nil || w.deadline.After(target) {
			break
		}
		c.now = w.deadline
		c.fireLocked(w)
	}
	c.now = target
	return target
}

// AdvanceTo moves the clock to t, or does nothing when t is not later than
// Now.
func (c *Clock) AdvanceTo(t time.Time) time.Time {
	return c.Advance(t.Sub(c.Now()))
}

// Next returns the deadline of the earliest pending timer or tick, so that a
// driver can jump straight to the next event.
func (c *Clock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.nextLocked()
	if w == nil {
		return time.Time{}, false
	}
	return w.deadline, true
}

// Pending returns how many timers and tickers are waiting to fire.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *Clock) scheduleLocked(w *waiter, d time.Duration) {
	if d <= 0 && w.period == 0 {
		w.send(c.now)
		delete(c.timers, w)
		return
	}
	c.seq++
	w.seq = c.seq
	w.deadline = c.now.Add(d)
	c.timers[w] = struct{}{}
	c.added.Broadcast()
}

// BlockUntil waits until at least n timers or tickers are pending. A test
// calls it before Advance so that a goroutine's timer is known to exist,
// which is what makes virtual-time tests independent of scheduling.
func (c *Clock) BlockUntil(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.timers) < n {
		c.added.Wait()
	}
}

func (c *Clock) nextLocked() *waiter {
	var best *waiter
	for w := range c.timers {
		if best == nil || w.deadline.Before(best.deadline) ||
			(w.deadline.Equal(best.deadline) && w.seq < best.seq) {
			best = w
		}
	}
	return best
}

func (c *Clock) fireLocked(w *waiter) {
	w.send(c.now)
	if w.period > 0 {
		c.seq++
		w.seq = c.seq
		w.deadline = w.deadline.Add(w.period)
		return
	}
	delete(c.timers, w)
}

// Deadlines lists pending deadlines in order; tests use it to see what is
// scheduled without firing anything.
func (c *Clock) Deadlines() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.timers))
	for w := range c.timers {
		out = append(out, w.deadline)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

type waiter struct {
	clock    *Clock
	ch       chan time.Time
	deadline time.Time
	period   time.Duration
	seq      uint64
}

// send never blocks: a value still unread is kept and the new one dropped.
func (w *waiter) send(t time.Time) {
	select {
	case w.ch <- t:
	default:
	}
}

func (w *waiter) C() <-chan time.Time { return w.ch }

// Stop prevents the timer from firing; it reports whether it was pending.
func (w *waiter) Stop() bool {
	w.clock.mu.Lock()
	defer w.clock.mu.Unlock()
	_, ok := w.clock.timers[w]
	delete(w.clock.timers, w)
	return ok
}

// Reset reschedules the timer to fire d after the current virtual time.
func (w *waiter) Reset(d time.Duration) {
	w.clock.mu.Lock()
	defer w.clock.mu.Unlock()
	delete(w.clock.timers, w)
	w.clock.scheduleLocked(w, d)
}

type ticker struct{ w *waiter }

func (t *ticker) C() <-chan time.Time { return t.w.ch }
func (t *ticker) Stop()               { t.w.Stop() }
func (t *ticker) Reset(d time.Duration) {
	if d <= 0 {
		panic("vclock: non-positive interval for Ticker.Reset")
	}
	t.w.clock.mu.Lock()
	defer t.w.clock.mu.Unlock()
	t.w.period = d
	delete(t.w.clock.timers, t.w)
	t.w.clock.scheduleLocked(t.w, d)
}
