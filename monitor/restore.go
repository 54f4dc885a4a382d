package monitor

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
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
//
// A zero Snapshot (an account stored without one: the daemon stopped
// before its first snapshot) restores only the ring and the event
// numbering, so that events emitted from now on follow the stored ones.
func (a *Account) Restore(s Snapshot, recent []Event) {
	a.budgets.mu.Lock()
	a.budgets.restored = s.Budgets
	a.budgets.mu.Unlock()
	a.mu.Lock()
	a.seq = max(a.seq, s.Seq)
	for _, e := range recent {
		a.seq = max(a.seq, e.Seq)
	}
	if s.At.IsZero() {
		for _, e := range recent {
			a.events.add(e)
		}
		a.mu.Unlock()
		return
	}
	a.seen = s.State != Unknown || s.SpamBot != nil || s.LastSignal != nil || s.Authorized
	a.authorized = s.Authorized
	for _, w := range s.FloodWaits {
		if f := a.waits[MethodLabel(w.Method)]; f != nil && !w.Until.After(f.until) {
			continue // snapshots from before MethodLabel may hold several "other"s
		}
		a.waits[MethodLabel(w.Method)] = &methodFacts{since: w.Since, until: w.Until, wait: w.Wait, typ: w.Type,
			reason: w.Type + " of " + w.Wait.String() + " on " + w.Method}
	}
	a.waitCount.Store(int32(len(a.waits)))
	if l := s.Limit; l.Active {
		a.limit = &limitFacts{since: l.Since, until: l.Until, permanent: l.Permanent, untilKnown: l.UntilKnown,
			lastSignal: l.LastSignal, reason: l.Reason}
		if l.LastSignal.IsZero() {
			a.limit.lastSignal = a.legacyLimitSignal(s)
		}
	}
	if f := s.Freeze; f.Active {
		// No request sent before the restart can be answered after it, so
		// the freeze's own start is evidence enough for ObserveFreeze.
		a.frozen = &freezeFacts{since: f.Since, deletion: f.DeletionDate, appealURL: f.AppealURL, reason: "frozen (restored)",
			lastEvidence: f.Since}
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
	if len(s.Probes) > 0 {
		a.probes.runs = make(map[string]ProbeRun, len(s.Probes))
		for k, r := range s.Probes {
			a.probes.runs[k] = r
		}
	}
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

// legacyLimitSignal estimates the latest limiting signal of a snapshot
// stored before Limit.LastSignal existed: the last signal event if it is
// a limiting one, and for an assumed limit its end minus LimitHold (an
// assumed limit ends LimitHold after its latest signal), whichever is
// later. Zero when neither says.
func (a *Account) legacyLimitSignal(s Snapshot) time.Time {
	var t time.Time
	if ev := s.LastSignal; ev != nil {
		switch ev.Signal.Kind {
		case signal.PeerFlood, signal.Restricted, signal.BannedInChannel:
			t = ev.Time
		}
	}
	if l := s.Limit; !l.Permanent && !l.UntilKnown && !l.Until.IsZero() {
		if est := l.Until.Add(-a.mon.policy.LimitHold); est.After(t) {
			t = est
		}
	}
	return t
}

// UnmarshalJSON decodes a snapshot, filling in what snapshots stored by
// earlier versions lack. Those have no "authorized" key (it is always
// written now): Authorized is then derived (an account in any known state,
// or with a SpamBot answer or a signal, was signed in), and so are Probes
// (the SpamBot answer's time; a failed SpamBot probe was only recorded as
// the unknown state's reason).
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	type plain Snapshot // without this method
	var v struct {
		plain
		Authorized *bool `json:"authorized"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Snapshot(v.plain)
	if v.Authorized != nil {
		s.Authorized = *v.Authorized
		return nil
	}
	s.Authorized = s.State != Unknown || s.SpamBot != nil || s.LastSignal != nil
	if s.Probes == nil {
		s.Probes = legacyProbes(*s)
	}
	return nil
}

// spamBotFailedReason is the reason of a quiet account whose last SpamBot
// probe failed. Earlier versions stored nothing else of the failure, so
// it is read when decoding their snapshots, and only then.
const spamBotFailedReason = "last SpamBot probe failed"

func legacyProbes(s Snapshot) map[string]ProbeRun {
	var r ProbeRun
	if sb := s.SpamBot; sb != nil {
		r.LastRun = sb.At
		if sb.State != spambot.Unknown {
			r.LastOK = sb.At
		}
		r.Failed = sb.State == spambot.Unknown
	}
	if s.State == Unknown && s.Reason == spamBotFailedReason {
		r.Failed = true
	}
	if r == (ProbeRun{}) {
		return nil
	}
	return map[string]ProbeRun{ProbeSpamBot: r}
}

// UnmarshalJSON decodes a freeze; earlier versions stored its deletion
// date as "until".
func (f *Freeze) UnmarshalJSON(b []byte) error {
	type plain Freeze // without this method
	var v struct {
		plain
		Until time.Time `json:"until"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Freeze(v.plain)
	if f.DeletionDate.IsZero() {
		f.DeletionDate = v.Until
	}
	return nil
}
