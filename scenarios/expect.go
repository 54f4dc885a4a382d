package scenarios

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/signal"
)

// evaluate checks an expectation against the account now and returns
// what does not hold, each failure saying what was expected and what
// happened.
func (w *world) evaluate(e *Expectation) []Failure {
	a := w.accounts[e.Account]
	a.mon.Refresh()
	snap := a.mon.Snapshot()
	evs := w.eventsOf(e.Account)
	start := w.start
	var out []Failure
	fail := func(field, expected, got string) {
		out = append(out, Failure{File: w.s.File, Line: e.Line, Field: e.Path + "." + field, Account: e.Account,
			Expected: expected, Got: got})
	}
	at := func(t time.Time) string { return "+" + limits.FormatDuration(t.Sub(start), limits.AllUnits) }

	if e.State != nil && snap.State != *e.State {
		got := snap.State.String()
		if snap.Reason != "" {
			got += " (" + snap.Reason + ")"
		}
		fail("state", "state "+e.State.String(), got+"; "+timeline(evs, start))
	}
	if e.Reaches != nil {
		var when time.Time
		for _, ev := range evs {
			if ev.Type == monitor.EventState && ev.State == *e.Reaches {
				when = ev.Time
				break
			}
		}
		want := "to reach " + e.Reaches.String()
		if e.Within > 0 {
			want += " within " + limits.FormatDuration(e.Within, limits.AllUnits)
		}
		switch {
		case when.IsZero():
			fail("reaches", want, "never reached; "+timeline(evs, start))
		case e.Within > 0 && when.After(start.Add(e.Within)):
			fail("reaches", want, "reached at "+at(when))
		}
	}
	for _, st := range e.Never {
		for _, ev := range evs {
			if ev.Type == monitor.EventState && ev.State == st {
				fail("never", "never "+st.String(), fmt.Sprintf("%s at %s (%s)", st, at(ev.Time), ev.Reason))
				break
			}
		}
	}
	if e.Signals != nil {
		counts := map[signal.Kind]int{}
		for _, ev := range evs {
			if ev.Type == monitor.EventSignal {
				counts[ev.Signal.Kind]++
			}
		}
		kinds := make([]signal.Kind, 0, len(e.Signals))
		for k := range e.Signals {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
		for _, k := range kinds {
			if r := e.Signals[k]; !r.Contains(float64(counts[k])) {
				fail("signals."+k.String(), fmt.Sprintf("%s signals %s", k, r), fmt.Sprintf("%d (all signals: %s)", counts[k], signalCounts(counts)))
			}
		}
	}
	if e.FloodWaits != nil || e.LongestFloodWait != nil {
		byMethod := map[string]int{}
		var longest time.Duration
		for _, ev := range evs {
			if ev.Type == monitor.EventSignal && ev.Signal.Kind == signal.FloodWait {
				byMethod[ev.Method]++
				longest = max(longest, ev.Signal.Wait)
			}
		}
		for _, m := range sortedKeys(e.FloodWaits) {
			if r := e.FloodWaits[m]; !r.Contains(float64(byMethod[m])) {
				got := fmt.Sprint(byMethod[m])
				if len(byMethod) > 0 {
					got += " (by method: " + formatCounts(byMethod) + ")"
				}
				fail("flood_waits."+m, fmt.Sprintf("FLOOD_WAIT on %s %s", m, r), got)
			}
		}
		if r := e.LongestFloodWait; r != nil && !r.Contains(longest.Seconds()) {
			fail("longest_flood_wait", "longest FLOOD_WAIT "+r.String(), r.format(longest.Seconds()))
		}
	}
	if e.SpamBot != nil {
		switch {
		case snap.SpamBot == nil:
			fail("spambot", "SpamBot answer "+e.SpamBot.String(), "no SpamBot answer (add an ask_spambot step?)")
		case snap.SpamBot.State != *e.SpamBot:
			fail("spambot", "SpamBot answer "+e.SpamBot.String(), fmt.Sprintf("%s (asked at %s)", spamBotOf(snap), at(snap.SpamBot.At)))
		}
	}
	if r := e.Risk; r != nil && !r.Contains(snap.Risk) {
		fail("risk", "risk "+r.String(), fmt.Sprintf("%.1f (state %s)", snap.Risk, snap.State))
	}
	w.mu.Lock()
	outcomes, blocks := copyCounts(a.outcomes), copyCounts(a.blocks)
	w.mu.Unlock()
	for _, k := range sortedKeys(e.GuardBlocks) {
		r := e.GuardBlocks[k]
		n, label := blocks[k], "guard refusals ("+k+")"
		if k == "" {
			n, label = outcomes[OutcomeBlocked], "guard refusals"
		}
		if !r.Contains(float64(n)) {
			fail("guard_blocks", label+" "+r.String(), fmt.Sprintf("%d (calls: %s)", n, orNone(formatCounts(outcomes))))
		}
	}
	for _, k := range sortedKeys(e.Outcomes) {
		if r := e.Outcomes[k]; !r.Contains(float64(outcomes[k])) {
			fail("outcomes."+k, fmt.Sprintf("%s calls %s", k, r), fmt.Sprintf("%d (calls: %s)", outcomes[k], orNone(formatCounts(outcomes))))
		}
	}
	if e.Probes != nil || e.ProbeGap != nil {
		runs := map[string][]time.Time{}
		for _, ev := range evs {
			if ev.Type == monitor.EventProbe {
				runs[ev.Probe] = append(runs[ev.Probe], ev.Time)
			}
		}
		for _, k := range sortedKeys(e.Probes) {
			if r := e.Probes[k]; !r.Contains(float64(len(runs[k]))) {
				fail("probes."+k, fmt.Sprintf("%s probes %s", k, r), fmt.Sprint(len(runs[k])))
			}
		}
		for _, k := range sortedKeys(e.ProbeGap) {
			ts := runs[k]
			if len(ts) < 2 {
				continue // one run has no gap to check
			}
			gap := time.Duration(1<<63 - 1)
			for i := 1; i < len(ts); i++ {
				gap = min(gap, ts[i].Sub(ts[i-1]))
			}
			if r := e.ProbeGap[k]; !r.Contains(gap.Seconds()) {
				fail("probe_gap."+k, fmt.Sprintf("shortest gap between %s probes %s", k, r), r.format(gap.Seconds()))
			}
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func signalCounts(m map[signal.Kind]int) string {
	s := map[string]int{}
	for k, v := range m {
		s[k.String()] = v
	}
	return orNone(formatCounts(s))
}

// timeline renders the state changes compactly for a failure message.
func timeline(evs []monitor.Event, start time.Time) string {
	parts := []string{}
	for _, ev := range evs {
		if ev.Type == monitor.EventState {
			if len(parts) == 0 {
				parts = append(parts, ev.From.String())
			}
			parts = append(parts, fmt.Sprintf("%s at +%s", ev.State, limits.FormatDuration(ev.Time.Sub(start), limits.AllUnits)))
		}
	}
	if len(parts) == 0 {
		return "no state changes"
	}
	return "states: " + strings.Join(parts, " → ")
}
