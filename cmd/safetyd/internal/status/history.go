package status

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/limits"
)

// historyData is an account's events for its page.
type historyData struct {
	// Events are oldest first: at most one event before the window (from
	// the ring: the state and risk the window starts from), the window's
	// events from the store, and the ring's events the store does not
	// have yet (the writer batches).
	Events []monitor.Event
	// InWindow counts the events at or after the window's start.
	InWindow int
	// Source says where the events come from, for the page.
	Source string
	// MissingFrom..MissingTo is a span whose events were not loaded: the
	// store query hit its limit and the ring starts later.
	MissingFrom, MissingTo time.Time
	// Note explains a degraded history (store error).
	Note string
}

// history reads an account's events from the window's start: one store
// query of at most historyLimit events, completed from the in-memory ring.
func (p *page) history(ctx context.Context, acct *monitor.Account, from time.Time) historyData {
	ring := acct.Events()
	// idx is the ring's first event in the window; the one before it, if
	// any, says where the window starts from. The ring is in the order
	// events were recorded, which is time order except for a signal
	// reported late; such a one can only move these cuts by itself.
	idx := sort.Search(len(ring), func(i int) bool { return !ring[i].Time.Before(from) })
	start := max(idx-1, 0)
	var h historyData
	var stored []monitor.Event
	if p.d.Store != nil {
		var err error
		stored, err = p.d.Store.Events(ctx, acct.Name(), from, p.historyLimit)
		if err != nil {
			// Degrade to memory rather than fail: the header facts and
			// the recent history are still worth showing.
			h.Note = "The store could not be read (" + err.Error() + "); the history below comes from memory only."
		}
	}
	if p.d.Store == nil || h.Note != "" {
		h.Source = fmt.Sprintf("memory (the account's last %d events)", len(ring))
		h.Events = slices.Clone(ring[start:])
		h.InWindow = len(ring) - idx
		return h
	}
	h.Source = "store"
	h.Events = make([]monitor.Event, 0, 1+len(stored)+len(ring))
	if idx > 0 {
		h.Events = append(h.Events, ring[idx-1])
	}
	h.Events = append(h.Events, stored...)
	// The ring's events newer than the last stored one: not written yet,
	// or beyond the store query's limit.
	k := idx
	if n := len(stored); n > 0 {
		last := stored[n-1].Time
		k = sort.Search(len(ring), func(i int) bool { return ring[i].Time.After(last) })
		if n >= p.historyLimit && k == 0 && len(ring) > 0 {
			// The store returned its oldest events only and the ring
			// starts after them: what lies between was not loaded.
			h.MissingFrom, h.MissingTo = last, ring[0].Time
			h.Source = fmt.Sprintf("store (the window's first %d events) and memory (the last %d)", n, len(ring))
		}
	}
	h.Events = append(h.Events, ring[k:]...)
	h.InWindow = len(stored) + len(ring) - k
	return h
}

// latestEvents are the account page's rows: newest first, of type ty (""
// for all), consecutive look-alikes grouped, at most n rows.
func latestEvents(evs []monitor.Event, ty string, n int) []event {
	var out []event
	for i := len(evs) - 1; i >= 0; i-- {
		if ty != "" && evs[i].Type.String() != ty {
			continue
		}
		se := eventOf(evs[i])
		if k := len(out) - 1; k >= 0 && sameEventRow(out[k], se) {
			out[k].Count++
			out[k].First = se.Time
			continue
		}
		if len(out) == n {
			break
		}
		out = append(out, se)
	}
	return out
}

// sameEventRow reports rows that differ only in time and risk.
func sameEventRow(a, b event) bool {
	return a.Type == b.Type && a.What == b.What && a.From == b.From && a.To == b.To && a.Reason == b.Reason
}

// riskDrivers names what the risk score is made of, largest share first:
// the inputs are internal accumulators on their own scales, so the page
// shows shares ("frozen 99%, flood_wait 1%"), never the raw values beside
// the 0-100 score.
func riskDrivers(in []monitor.RiskInput) string {
	var sum float64
	for _, ri := range in {
		if ri.Value > 0 {
			sum += ri.Value
		}
	}
	if sum <= 0 {
		return ""
	}
	in = slices.Clone(in)
	sort.SliceStable(in, func(i, j int) bool { return in[i].Value > in[j].Value })
	var parts []string
	for _, ri := range in {
		if share := math.Round(100 * ri.Value / sum); share >= 1 {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", ri.Kind, share))
		}
	}
	return strings.Join(parts, ", ")
}

func eventOf(e monitor.Event) event {
	se := event{Time: absTime(e.Time), Type: e.Type.String(), From: e.From, To: e.State, Risk: e.Risk, Reason: reasonText(e.Reason), Count: 1}
	switch e.Type {
	case monitor.EventSignal:
		se.What = signalText(e)
		se.Reason = ""
	case monitor.EventProbe:
		se.What = e.Probe
	case monitor.EventState:
		if e.Probe != "" {
			se.What = "after " + e.Probe + " probe"
		}
	}
	return se
}

// signalText describes a signal event: its type, wait and method.
func signalText(e monitor.Event) string {
	s := e.Signal.Type
	if s == "" {
		s = e.Signal.Kind.String()
	}
	if e.Signal.Wait > 0 {
		s += " (" + limits.FormatDuration(e.Signal.Wait, 2) + ")"
	}
	if e.Method != "" {
		s += " on " + e.Method
	}
	return s
}
