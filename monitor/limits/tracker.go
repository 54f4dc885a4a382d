package limits

import (
	"time"
)

// Tracker counts one account's actions in sliding windows. It is not safe
// for concurrent use: the test server's policy and the guard keep one per
// account under their own lock.
type Tracker struct {
	series map[Action]*Series
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{series: map[Action]*Series{}} }

// Series returns the history of one action, creating it. A caller that
// checks the same action on every call keeps the pointer instead of
// looking the action up by name each time.
func (t *Tracker) Series(a Action) *Series {
	s := t.series[a]
	if s == nil {
		s = &Series{}
		t.series[a] = s
	}
	return s
}

func (t *Tracker) history(a Action) []int64 {
	if s := t.series[a]; s != nil {
		return s.evs
	}
	return nil
}

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
	return check(t.history(a), now, limits, n)
}

// Record counts n actions at now, keeping only what keep says matters.
func (t *Tracker) Record(now time.Time, a Action, n int, keep Keep) {
	t.Series(a).Record(now, n, keep)
}

// Series is the history of one action: times in Unix nanoseconds (cheaper
// to compare than time.Time), oldest first. Pruning compacts in place and
// append copies only the live part when it outgrows the array, so
// recording is amortised O(1) and does not allocate once warm.
type Series struct {
	evs []int64
}

// Check reports whether n more actions at now stay within limits.
func (s *Series) Check(now time.Time, limits []Limit, n int) Verdict {
	return check(s.evs, now, limits, n)
}

// Used returns, for each limit, the fraction of it used at now (0-1+).
func (s *Series) Used(now time.Time, limits []Limit) []float64 { return used(s.evs, now, limits) }

// Record counts n actions at now, keeping only what keep says matters.
func (s *Series) Record(now time.Time, n int, keep Keep) {
	evs, ns := s.evs, now.UnixNano()
	for i := 0; i < n; i++ {
		if len(evs) == cap(evs) && len(evs) > 0 {
			evs = compact(evs, ns, keep)
		}
		evs = append(evs, ns)
	}
	s.evs = evs
}

// Times returns a copy of the counted times that keep's window still
// sees at now, oldest first: what a restarted guard continues from.
func (s *Series) Times(now time.Time, keep Keep) []int64 {
	live := countAfter(s.evs, now.UnixNano()-int64(keep.Window))
	if live == 0 {
		return nil
	}
	return append([]int64(nil), s.evs[len(s.evs)-live:]...)
}

// Restore counts times (Unix nanoseconds, as Times returned them) again,
// before anything newer is recorded: those outside keep's window at now,
// in the future of now, or out of order (a damaged snapshot) are left out.
func (s *Series) Restore(times []int64, now time.Time, keep Keep) {
	ns, from := now.UnixNano(), now.UnixNano()-int64(keep.Window)
	var last int64
	if len(s.evs) > 0 {
		last = s.evs[len(s.evs)-1]
	}
	for _, t := range times {
		if t <= from || t > ns || t < last {
			continue
		}
		s.evs = append(s.evs, t)
		last = t
	}
}

func check(evs []int64, now time.Time, limits []Limit, n int) Verdict {
	ns := now.UnixNano()
	for _, l := range limits {
		inWindow := countAfter(evs, ns-int64(l.Window))
		if inWindow+n > l.Max {
			// The action fits once enough of the counted ones have left
			// the window: the (inWindow+n-Max)-th oldest in the window.
			need := inWindow + n - l.Max
			idx := len(evs) - inWindow + need - 1
			retry := now
			if idx >= 0 && idx < len(evs) {
				retry = time.Unix(0, evs[idx]+int64(l.Window)).In(now.Location())
			} else if n > l.Max {
				retry = now.Add(l.Window.D())
			}
			return Verdict{Limit: l, Retry: retry}
		}
	}
	return Verdict{Allowed: true}
}

func used(evs []int64, now time.Time, limits []Limit) []float64 {
	out := make([]float64, len(limits))
	ns := now.UnixNano()
	for i, l := range limits {
		out[i] = float64(countAfter(evs, ns-int64(l.Window))) / float64(l.Max)
	}
	return out
}

// compact drops events outside the window, in place, unless that frees
// less than half (then append may as well grow). History is bounded by
// what happened within the window, not by the limits: in observe mode the
// guard records actions beyond them, and their overshoot must stay visible.
func compact(evs []int64, now int64, keep Keep) []int64 {
	start := len(evs) - countAfter(evs, now-int64(keep.Window))
	if start < len(evs)/2 {
		return evs
	}
	return evs[:copy(evs, evs[start:])]
}

// Keep is how much history a tracker needs for a set of limits: their
// longest window.
type Keep struct {
	Window time.Duration
}

// KeepFor returns the history the given limits need.
func KeepFor(limits ...[]Limit) Keep {
	var k Keep
	for _, ls := range limits {
		for _, l := range ls {
			k.Window = max(k.Window, l.Window.D())
		}
	}
	return k
}

// countAfter counts times strictly after from in an ascending slice.
func countAfter(ts []int64, from int64) int {
	lo, hi := 0, len(ts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ts[m] > from {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return len(ts) - lo
}
