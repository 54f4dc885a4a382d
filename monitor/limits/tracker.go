package limits

import (
	"time"
)

// Tracker counts one account's actions in sliding windows. It is not safe
// for concurrent use: the test server's policy and the guard keep one per
// account under their own lock.
type Tracker struct {
	// events holds action times per action, oldest first, pruned to the
	// longest window that applies.
	events map[Action][]time.Time
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{events: map[Action][]time.Time{}} }

// Verdict is the result of checking an action against its limits.
type Verdict struct {
	// Allowed is false when one more action would exceed a limit.
	Allowed bool
	// Limit is the first limit that would be exceeded.
	Limit Limit
	// Retry is when that limit frees up (the oldest counted action leaves
	// its window).
	Retry time.Time
}

// Check reports whether n more actions at now stay within limits.
func (t *Tracker) Check(now time.Time, a Action, limits []Limit, n int) Verdict {
	evs := t.events[a]
	for _, l := range limits {
		from := now.Add(-l.Window.D())
		inWindow := countAfter(evs, from)
		if inWindow+n > l.Max {
			// The action fits once enough of the counted ones have left
			// the window: the (inWindow+n-Max)-th oldest in the window.
			need := inWindow + n - l.Max
			idx := len(evs) - inWindow + need - 1
			retry := now
			if idx >= 0 && idx < len(evs) {
				retry = evs[idx].Add(l.Window.D())
			} else if n > l.Max {
				retry = now.Add(l.Window.D())
			}
			return Verdict{Limit: l, Retry: retry}
		}
	}
	return Verdict{Allowed: true}
}

// Used returns, for each limit, the fraction of it used at now (0-1+).
func (t *Tracker) Used(now time.Time, a Action, limits []Limit) []float64 {
	out := make([]float64, len(limits))
	for i, l := range limits {
		out[i] = float64(countAfter(t.events[a], now.Add(-l.Window.D()))) / float64(l.Max)
	}
	return out
}

// Record counts n actions at now and forgets those older than keep.
func (t *Tracker) Record(now time.Time, a Action, n int, keep time.Duration) {
	evs := t.events[a]
	for i := 0; i < n; i++ {
		evs = append(evs, now)
	}
	from := now.Add(-keep)
	drop := len(evs) - countAfter(evs, from)
	if drop > 0 {
		evs = append(evs[:0], evs[drop:]...)
	}
	t.events[a] = evs
}

// Count returns how many actions happened after from.
func (t *Tracker) Count(a Action, from time.Time) int { return countAfter(t.events[a], from) }

// Longest returns the longest window among limits, for Record's keep.
func Longest(limits ...[]Limit) time.Duration {
	var d time.Duration
	for _, ls := range limits {
		for _, l := range ls {
			d = max(d, l.Window.D())
		}
	}
	return d
}

// countAfter counts times strictly after from in an ascending slice.
func countAfter(ts []time.Time, from time.Time) int {
	lo, hi := 0, len(ts)
	for lo < hi {
		m := (lo + hi) / 2
		if ts[m].After(from) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return len(ts) - lo
}
