package monitor

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// Probe kinds, used as metric label values and event probe names.
const (
	ProbeSpamBot  = "spambot"
	ProbeFreeze   = "freeze"
	ProbeSelf     = "self"
	ProbeSessions = "sessions"
)

// SpamBotStatus is the account's last SpamBot answer.
type SpamBotStatus struct {
	State spambot.State `json:"state"`
	// Until is the release time SpamBot gave, for limited_temporary.
	Until time.Time `json:"until,omitzero"`
	// At is when the probe asked.
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// FreezeStatus is what help.getAppConfig says about a freeze.
type FreezeStatus struct {
	// Known is false when the probe could not tell (call failed,
	// appConfigNotModified, malformed config): never read that as "not frozen".
	Known  bool
	Frozen bool
	Since  time.Time
	// DeletionDate is freeze_until_date: when the account is deleted
	// unless an appeal succeeds.
	DeletionDate time.Time
	AppealURL    string
	// Reason explains an unknown result.
	Reason string
}

// SelfStatus is the flags of the account's own user object.
type SelfStatus struct {
	Restricted bool
	// Reasons are the restriction reasons as "platform: reason: text".
	Reasons []string
	Scam    bool
	Fake    bool
	Deleted bool
}

// SessionsStatus summarises account.getAuthorizations.
type SessionsStatus struct {
	Count int
	// Unconfirmed sessions are new logins the user has not confirmed yet.
	Unconfirmed int
	// PasswordPending sessions logged in with the code but not the 2FA password.
	PasswordPending int
	// Hashes of every listed session, to spot new ones between probes.
	Hashes []int64
	// Devices describes each session ("model, app version, country"), by hash.
	Devices map[int64]string
	// CurrentListed is false when the probing session is not in the list:
	// it was terminated.
	CurrentListed bool
}

// ProbeRun is what the account knows of one probe kind's runs, so that a
// restart keeps probe floors, the last-success time and a failed
// SpamBot probe.
type ProbeRun struct {
	// LastRun is when the last run was sent, whatever its outcome.
	LastRun time.Time `json:"last_run,omitzero"`
	// LastOK is when the last conclusive run was sent.
	LastOK time.Time `json:"last_ok,omitzero"`
	// Failed is true when the last run told nothing: an error, or an
	// unknown answer.
	Failed bool `json:"failed,omitempty"`
}

// probeFacts is what probes have told the account.
type probeFacts struct {
	spamBot  *SpamBotStatus
	runs     map[string]ProbeRun // by kind
	self     *SelfStatus
	sessions map[int64]bool // hashes seen at the last sessions probe
}

// ranLocked records a run of probe sent at sent; ok says it was
// conclusive. An answer to an older request than the last recorded run
// does not override that run's outcome.
func (a *Account) ranLocked(probe string, sent time.Time, ok bool) {
	if a.probes.runs == nil {
		a.probes.runs = map[string]ProbeRun{}
	}
	r := a.probes.runs[probe]
	if ok && sent.After(r.LastOK) {
		r.LastOK = sent
	}
	if !sent.Before(r.LastRun) {
		r.LastRun, r.Failed = sent, !ok
	}
	a.probes.runs[probe] = r
}

// spamBotFailedLocked reports that the last SpamBot probe told nothing.
func (a *Account) spamBotFailedLocked() bool {
	return a.probes.runs[ProbeSpamBot].Failed
}

// ObserveSpamBot records a SpamBot answer received for a probe sent at
// sent. "Free" is necessary, not sufficient: it lifts a limit unless a
// PEER_FLOOD-like signal came within Policy.LimitHold before the probe,
// since some accounts are limited while SpamBot says free. A dated answer
// is authoritative for the limit's end: a PEER_FLOOD during a limit is its
// symptom, not the start of a new one.
func (a *Account) ObserveSpamBot(sent time.Time, r spambot.Result) {
	a.mu.Lock()
	at := a.advanceLocked(sent)
	a.seen = true
	st := &SpamBotStatus{State: r.State, Until: r.Until, At: sent, Reason: r.Reason}
	reason := "SpamBot: " + r.State.String()
	a.ranLocked(ProbeSpamBot, sent, r.State != spambot.Unknown)
	switch r.State {
	case spambot.Unknown:
		reason = "SpamBot probe: " + r.Reason
	case spambot.Free:
		if l := a.limit; l != nil && !a.recentLimitSignalLocked(l, sent) {
			a.limit = nil
		}
	case spambot.LimitedTemporary:
		// The stated minute is the limit's last: SpamBot truncates the
		// release time, and ending a minute early lets a cold message
		// through to a PEER_FLOOD and a longer limit.
		l := a.ensureLimitLocked(sent)
		l.permanent, l.until, l.untilKnown = false, r.Until.Add(spambot.DatePrecision), true
		l.reason = reason + " until " + r.Until.UTC().Format(time.RFC3339)
	case spambot.LimitedPermanent:
		l := a.ensureLimitLocked(sent)
		l.permanent, l.reason = true, reason
	case spambot.Frozen:
		if a.frozen == nil {
			a.frozen = &freezeFacts{since: sent}
		}
		a.frozen.reason = reason + " (confirm with help.getAppConfig)"
		a.frozen.evidence(sent)
	}
	if r.State != spambot.Unknown {
		a.authorizedLocked() // SpamBot answers only a signed-in account
		a.updateNeedsSuccessLocked()
		a.probes.spamBot = st
	} else if a.probes.spamBot == nil {
		a.probes.spamBot = st
	}
	a.probeEventLocked(sent, at, ProbeSpamBot, reason)
	a.mu.Unlock()
	a.flush()
}

// recentLimitSignalLocked reports a PEER_FLOOD-like signal within
// LimitHold before t.
func (a *Account) recentLimitSignalLocked(l *limitFacts, t time.Time) bool {
	return !l.lastSignal.IsZero() && t.Sub(l.lastSignal) < a.mon.policy.LimitHold
}

func (a *Account) ensureLimitLocked(t time.Time) *limitFacts {
	if a.limit == nil || (!a.limit.permanent && !a.limit.until.After(t)) {
		a.limit = &limitFacts{since: t}
	}
	return a.limit
}

// ObserveFreeze records the answer to a help.getAppConfig request sent at
// sent. Only a known "not frozen" clears a freeze (inferred from FROZEN_*
// errors or SpamBot), and only when the request was sent after the latest
// evidence of the freeze: an older request's answer is stale.
func (a *Account) ObserveFreeze(sent time.Time, f FreezeStatus) {
	a.mu.Lock()
	at := a.advanceLocked(sent)
	a.ranLocked(ProbeFreeze, sent, f.Known)
	var reason string
	switch {
	case !f.Known:
		reason = "freeze probe: unknown: " + f.Reason
	case f.Frozen:
		prev := a.frozen
		a.frozen = &freezeFacts{since: f.Since, deletion: f.DeletionDate, appealURL: f.AppealURL,
			reason: "frozen since " + f.Since.UTC().Format(time.RFC3339) + " (help.getAppConfig)"}
		if prev != nil {
			a.frozen.lastEvidence = prev.lastEvidence
		}
		a.frozen.evidence(sent)
		reason = a.frozen.reason
	case a.frozen != nil && !sent.After(a.frozen.lastEvidence):
		reason = "not frozen (help.getAppConfig), but the request was sent before the latest freeze evidence at " +
			a.frozen.lastEvidence.UTC().Format(time.RFC3339Nano) + ": stale, freeze kept"
	default:
		a.frozen = nil
		reason = "not frozen (help.getAppConfig)"
	}
	a.seen = a.seen || f.Known
	a.probeEventLocked(sent, at, ProbeFreeze, reason)
	a.mu.Unlock()
	a.flush()
}

// ObserveSelf records the self user's flags (on every connect). A newly
// set restricted, scam or fake flag puts the account on watch; deleted
// means the account is gone.
func (a *Account) ObserveSelf(t time.Time, s SelfStatus) {
	a.mu.Lock()
	at := a.advanceLocked(t)
	a.seen = true
	a.authorizedLocked()
	a.ranLocked(ProbeSelf, t, true)
	prev := a.probes.self
	var changes []string
	flag := func(name string, now, before bool) {
		if now && !before {
			changes = append(changes, name)
		}
	}
	was := SelfStatus{}
	if prev != nil {
		was = *prev
	}
	flag("restricted", s.Restricted, was.Restricted)
	flag("scam", s.Scam, was.Scam)
	flag("fake", s.Fake, was.Fake)
	cp := s
	cp.Reasons = append([]string(nil), s.Reasons...)
	a.probes.self = &cp
	reason := "self user ok"
	if len(changes) > 0 {
		reason = "self user newly flagged " + strings.Join(changes, ", ")
		if len(s.Reasons) > 0 {
			reason += " (" + strings.Join(s.Reasons, "; ") + ")"
		}
		a.watchLocked(t, reason)
	}
	if s.Deleted {
		reason = "self user deleted"
		a.dead = &terminal{at: t, gen: a.gen.Add(1), reason: reason}
	}
	a.updateNeedsSuccessLocked()
	a.probeEventLocked(t, at, ProbeSelf, reason)
	a.mu.Unlock()
	a.flush()
}

// ObserveSessions records an authorizations probe. Sessions that appeared
// since the previous probe, unconfirmed or password-pending logins put the
// account on watch (takeover risk, or a coming SESSION_REVOKED); the
// probing session missing from the list means it was terminated.
func (a *Account) ObserveSessions(t time.Time, s SessionsStatus) {
	a.mu.Lock()
	at := a.advanceLocked(t)
	a.seen = true
	a.authorizedLocked()
	a.updateNeedsSuccessLocked()
	a.ranLocked(ProbeSessions, t, true)
	var notes []string
	if prev := a.probes.sessions; prev != nil {
		var fresh []string
		for _, h := range s.Hashes {
			if !prev[h] {
				fresh = append(fresh, s.Devices[h])
			}
		}
		sort.Strings(fresh)
		if len(fresh) > 0 {
			notes = append(notes, fmt.Sprintf("%d new session(s): %s", len(fresh), strings.Join(fresh, "; ")))
		}
	}
	if s.Unconfirmed > 0 {
		notes = append(notes, fmt.Sprintf("%d unconfirmed login(s)", s.Unconfirmed))
	}
	if s.PasswordPending > 0 {
		notes = append(notes, fmt.Sprintf("%d login(s) waiting for the 2FA password", s.PasswordPending))
	}
	if !s.CurrentListed {
		notes = append(notes, "this session is no longer listed")
	}
	seen := make(map[int64]bool, len(s.Hashes))
	for _, h := range s.Hashes {
		seen[h] = true
	}
	a.probes.sessions = seen
	reason := fmt.Sprintf("%d session(s)", s.Count)
	if len(notes) > 0 {
		reason += ": " + strings.Join(notes, "; ")
		a.watchLocked(t, reason)
	}
	a.probeEventLocked(t, at, ProbeSessions, reason)
	a.mu.Unlock()
	a.flush()
}

// ObserveProbeError records a probe that failed before it could tell
// anything (network, RPC error). A failed SpamBot probe makes an otherwise
// quiet account unknown rather than ok.
func (a *Account) ObserveProbeError(t time.Time, probe string, err error) {
	a.mu.Lock()
	at := a.advanceLocked(t)
	a.ranLocked(probe, t, false)
	a.probeEventLocked(t, at, probe, probe+" probe failed: "+err.Error())
	a.mu.Unlock()
	a.flush()
}

// probeEventLocked records a probe event and any state change it caused.
func (a *Account) probeEventLocked(t, at time.Time, probe, reason string) {
	st, until, _ := a.evalLocked(at)
	a.emitLocked(Event{Time: t, Account: a.name, Type: EventProbe, Probe: probe,
		From: a.cur, State: st, Until: until, Reason: reason})
	a.cause = probe
	a.transitionLocked(at)
	a.cause = ""
}
