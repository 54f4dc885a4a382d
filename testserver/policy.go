package testserver

import (
	"math"
	"strconv"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/monitor/limits"
)

// policyState is what the simulated anti-abuse system knows about one
// account. Server.mu guards it.
type policyState struct {
	tracker    *limits.Tracker
	strikes    map[limits.Action][]time.Time // flood-wait violations
	floodUntil map[limits.Action]time.Time

	limitSince time.Time
	limitUntil time.Time
	permanent  bool
	steps      int // restrictions given so far
	violations int // penalised attempts during the current restriction
	reports    []time.Time

	banned      bool
	frozenSince time.Time
	frozenUntil time.Time
}

func (p *policyState) init() {
	p.tracker = limits.NewTracker()
	p.strikes = map[limits.Action][]time.Time{}
	p.floodUntil = map[limits.Action]time.Time{}
}

func (p *policyState) limited(now time.Time) bool {
	return p.permanent || now.Before(p.limitUntil)
}

func (p *policyState) frozen() bool { return !p.frozenSince.IsZero() }

// admit decides whether n actions of kind act at now pass. It returns the
// RPC error Telegram would answer, or nil after counting the actions.
func (s *Server) admit(a *account, now time.Time, act limits.Action, n int) *tgerr.Error {
	prof := s.profile
	ap, ok := prof.Actions[act]
	if !ok || n <= 0 {
		return nil
	}
	p := &a.policy
	if until := p.floodUntil[act]; now.Before(until) {
		return floodWait(until.Sub(now))
	}
	if ap.Penalty == limits.PenaltyPeerFlood && p.limited(now) {
		s.violate(a, now)
		return tgerr.New(400, "PEER_FLOOD")
	}
	ls := prof.LimitsFor(act, now.Sub(a.u.created))
	if v := p.tracker.Check(now, act, ls, n); !v.Allowed {
		if ap.Penalty == limits.PenaltyPeerFlood {
			s.restrict(a, now)
			return tgerr.New(400, "PEER_FLOOD")
		}
		wait := s.escalate(p, now, act, v)
		p.floodUntil[act] = now.Add(wait)
		return floodWait(wait)
	}
	p.tracker.Record(now, act, n, limits.KeepFor(prof.Actions[act].Limits, prof.Actions[act].Young))
	if act == limits.DMNonContact {
		s.maybeReported(a, now, n)
	}
	return nil
}

// escalate returns the wait for a flood-wait violation: the time until the
// exceeded limit frees up, multiplied for repeated violations, then the
// lockout. A daily budget's wait is its own length (hours).
func (s *Server) escalate(p *policyState, now time.Time, act limits.Action, v limits.Verdict) time.Duration {
	f := s.profile.Flood
	from := now.Add(-f.EscalationWindow.D())
	recent := p.strikes[act][:0]
	for _, t := range p.strikes[act] {
		if t.After(from) {
			recent = append(recent, t)
		}
	}
	p.strikes[act] = append(recent, now)
	base := v.Retry.Sub(now).Round(time.Second)
	if base < time.Second {
		base = time.Second
	}
	switch k := len(recent); {
	case v.Limit.Window.D() >= 24*time.Hour:
		return base
	case k < len(f.Factors):
		return time.Duration(math.Ceil(float64(base)*f.Factors[k]/float64(time.Second))) * time.Second
	default:
		return f.Lockout.D()
	}
}

// restrict starts the account's next restriction, or counts a violation
// while it is already restricted.
func (s *Server) restrict(a *account, now time.Time) {
	if a.policy.limited(now) {
		s.violate(a, now)
		return
	}
	s.nextStep(a, now)
}

// violate counts an attempt that a restriction refused; enough of them
// escalate the restriction.
func (s *Server) violate(a *account, now time.Time) {
	p := &a.policy
	p.violations++
	if p.violations >= s.profile.Restrictions.ViolationsToEscalate {
		s.nextStep(a, now)
	}
}

// nextStep moves the account one step up the ladder: the next temporary
// limit, then a permanent one, then a ban or freeze.
func (s *Server) nextStep(a *account, now time.Time) {
	p := &a.policy
	r := s.profile.Restrictions
	p.violations = 0
	if p.permanent {
		if r.AfterPermanent == "freeze" {
			s.freeze(a, now, now.Add(r.FreezeFor.D()))
		} else {
			p.banned = true
		}
		return
	}
	idx := p.steps
	p.steps++
	p.limitSince = now
	if idx < len(r.Durations) {
		p.limitUntil = now.Add(r.Durations[idx].D())
		return
	}
	p.permanent = true
}

func (s *Server) freeze(a *account, since, until time.Time) {
	a.policy.frozenSince, a.policy.frozenUntil = since, until
}

// maybeReported simulates recipients reporting cold DMs, from the
// account's seeded generator so runs are reproducible.
func (s *Server) maybeReported(a *account, now time.Time, n int) {
	rep := s.profile.Reports
	p := &a.policy
	for i := 0; i < n; i++ {
		if a.rng.Float64() < rep.Probability {
			p.reports = append(p.reports, now)
		}
	}
	from := now.Add(-rep.Window.D())
	count := 0
	for _, t := range p.reports {
		if t.After(from) {
			count++
		}
	}
	if count >= rep.Threshold && !p.limited(now) {
		p.reports = nil
		s.nextStep(a, now)
	}
}

func floodWait(d time.Duration) *tgerr.Error {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return tgerr.New(420, "FLOOD_WAIT_"+strconv.Itoa(secs))
}
