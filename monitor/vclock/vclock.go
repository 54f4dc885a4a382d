package vclock

import (
	"container/heap"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/clock"
)

// Clock is a virtual clock that moves only when told to. The zero value is
// not usable; call New.
//
// Pending timers are a min-heap by (deadline, creation order), so that
// scheduling, stopping and firing one costs O(log n) however many are
// pending: a 3,000-account demo keeps tens of thousands of timers (every
// client's pings, probes, guards, applications). Now reads an atomic copy
// of the time and takes no lock, because every clock reader of every
// account calls it far more often than timers fire; while an Advance runs,
// Now waits for it (a sequence count tells), so that a goroutine woken by
// one of its timers never reads a time the Advance is about to leave.
type Clock struct {
	mu     sync.Mutex
	now    time.Time // written under mu; published to readers through nowNS
	nowNS  atomic.Int64
	moving atomic.Uint64  // odd while Advance runs
	loc    *time.Location // start's, which Now keeps
	seq    uint64         // orders waiters with equal deadlines by creation
	timers timerHeap
	added  *sync.Cond // broadcast whenever a waiter is scheduled
}

var _ clock.Clock = (*Clock)(nil)

// New returns a clock that reads start until it is advanced.
func New(start time.Time) *Clock {
	c := &Clock{loc: start.Location()}
	c.setNowLocked(start)
	c.added = sync.NewCond(&c.mu)
	return c
}

// Now returns the current virtual time. During an Advance it waits for
// the Advance to end and returns where it ended: a goroutine that a fired
// timer woke arms its next timer relative to what Now says, and the clock
// schedules that timer relative to where it stands once the Advance lets
// go; an intermediate time would put the timer later than intended.
func (c *Clock) Now() time.Time {
	if m := c.moving.Load(); m%2 == 0 {
		ns := c.nowNS.Load()
		if c.moving.Load() == m {
			return time.Unix(0, ns).In(c.loc)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Unix(0, c.nowNS.Load()).In(c.loc)
}

// setNowLocked moves the time; c.mu is held (or c is not shared yet). The
// time is published as Unix nanoseconds, not a pointer, so that advancing
// the clock allocates nothing (the guard's allocation-free path advances
// it in its tests).
func (c *Clock) setNowLocked(t time.Time) {
	c.now = t
	c.nowNS.Store(t.UnixNano())
}

// Timer returns a timer that fires once the clock has been advanced by d.
// A non-positive d fires immediately, like time.NewTimer.
func (c *Clock) Timer(d time.Duration) clock.Timer {
	w := &waiter{clock: c, ch: make(chan time.Time, 1), index: -1}
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
	w := &waiter{clock: c, ch: make(chan time.Time, 1), period: d, index: -1}
	c.mu.Lock()
	c.scheduleLocked(w, d)
	c.mu.Unlock()
	return &ticker{w}
}

// Advance moves the clock forward by d, firing every timer and ticker that
// falls due on the way, in deadline order, each sent its own deadline. It
// returns the new time. Readers of Now wait until it is done (see Now). A
// negative d is ignored: virtual time never goes backwards.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moving.Add(1)
	defer c.moving.Add(1)
	if d < 0 {
		d = 0
	}
	target := c.now.Add(d)
	for {
		w := c.nextLocked()
		if w == nil || w.deadline.After(target) {
			break
		}
		c.setNowLocked(w.deadline)
		c.fireLocked(w)
	}
	c.setNowLocked(target)
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
		c.removeLocked(w)
		return
	}
	c.seq++
	w.seq = c.seq
	w.deadline = c.now.Add(d)
	if w.index >= 0 {
		heap.Fix(&c.timers, w.index)
	} else {
		heap.Push(&c.timers, w)
	}
	c.added.Broadcast()
}

// removeLocked takes w out of the pending timers, if it is there, and
// reports whether it was.
func (c *Clock) removeLocked(w *waiter) bool {
	if w.index < 0 {
		return false
	}
	heap.Remove(&c.timers, w.index)
	return true
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
	if len(c.timers) == 0 {
		return nil
	}
	return c.timers[0]
}

// fireLocked fires w, the earliest pending waiter.
func (c *Clock) fireLocked(w *waiter) {
	w.send(c.now)
	if w.period > 0 {
		c.seq++
		w.seq = c.seq
		w.deadline = w.deadline.Add(w.period)
		heap.Fix(&c.timers, w.index)
		return
	}
	c.removeLocked(w)
}

// Deadlines lists pending deadlines in order; tests use it to see what is
// scheduled without firing anything.
func (c *Clock) Deadlines() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.timers))
	for _, w := range c.timers {
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
	index    int // in clock.timers; -1 when not pending
}

// timerHeap is the pending waiters, earliest (deadline, seq) first; it
// keeps each waiter's index so that Stop and Reset find it at once.
type timerHeap []*waiter

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if !a.deadline.Equal(b.deadline) {
		return a.deadline.Before(b.deadline)
	}
	return a.seq < b.seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *timerHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
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
	return w.clock.removeLocked(w)
}

// Reset reschedules the timer to fire d after the current virtual time.
func (w *waiter) Reset(d time.Duration) {
	w.clock.mu.Lock()
	defer w.clock.mu.Unlock()
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
	t.w.clock.scheduleLocked(t.w, d)
}
