package monitor

import (
	"sort"
	"time"

	"github.com/tgsafety/tgsafety/monitor/signal"
)

// RiskInput is one decaying risk accumulator, carried in snapshots so
// that a restarted daemon restores the risk score exactly (the score alone
// cannot be inverted: state floors hide the raw value).
type RiskInput struct {
	Kind  signal.Kind `json:"kind"`
	Value float64     `json:"value"`
	At    time.Time   `json:"at"`
}

// Restore sets a freshly created account's facts from a snapshot saved
// before a restart, and recent events into its ring (without delivering
// them again). Expiries between the snapshot and now are then replayed, so
// a limit that ended while the daemon was down becomes a state change at
// the instant it ended. What a snapshot does not carry is lost: a watch
// reason hidden under a more severe state, and the per-method history
// behind "repeated flood waits".
func (a *Account) Restore(s Snapshot, recent []Event) {
	a.mu.Lock()
	a.seen = s.State != Unknown || s.SpamBot != nil || s.LastSignal != nil
	for _, w := range s.FloodWaits {
		if f := a.waits[MethodLabel(w.Method)]; f != nil && !w.Until.After(f.until) {
			continue // snapshots from before MethodLabel may hold several "other"s
		}
		a.waits[MethodLabel(w.Method)] = &methodFacts{since: w.Since, until: w.Until, wait: w.Wait, typ: w.Type,
			reason: w.Type + " of " + w.Wait.String() + " on " + w.Method}
	}
	a.waitCount.Store(int32(len(a.waits)))
	if l := s.Limit; l.Active {
		a.limit = &limitFacts{since: l.Since, until: l.Until, permanent: l.Permanent, untilKnown: l.UntilKnown, reason: l.Reason}
	}
	if f := s.Freeze; f.Active {
		a.frozen = &freezeFacts{since: f.Since, until: f.Until, appealURL: f.AppealURL, reason: "frozen (restored)"}
		if s.State == Frozen {
			a.frozen.reason = s.Reason
		}
	}
	switch s.State {
	case Banned:
		a.banned = &terminal{at: s.Since, gen: a.gen.Add(1), reason: s.Reason}
	case Dead:
		a.dead = &terminal{at: s.Since, gen: a.gen.Add(1), reason: s.Reason}
	case Watch:
		a.watchUntil, a.watchReason = s.Until, s.Reason
	}
	if s.SpamBot != nil {
		sb := *s.SpamBot
		a.probes.spamBot = &sb
	}
	a.probes.spamBotFailed = s.State == Unknown && s.Reason == "last SpamBot probe failed"
	for _, r := range s.RiskInputs {
		a.risk[r.Kind] = &riskAcc{v: r.Value, at: r.At}
	}
	if s.LastSignal != nil {
		ev := *s.LastSignal
		a.lastSignal = &ev
	}
	for _, e := range recent {
		a.events.add(e)
	}
	// The state as saved, then every expiry since.
	a.cur, a.curSince, a.curUntil, a.curReason = s.State, s.Since, s.Until, s.Reason
	a.evaluatedAt = s.At
	a.updateNeedsSuccessLocked()
	a.advanceLocked(a.mon.clock.Now())
	a.mu.Unlock()
	a.flush()
}

// riskInputsLocked lists the accumulators for a snapshot, by kind.
func (a *Account) riskInputsLocked() []RiskInput {
	out := make([]RiskInput, 0, len(a.risk))
	for k, acc := range a.risk {
		out = append(out, RiskInput{Kind: k, Value: acc.v, At: acc.at})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}
