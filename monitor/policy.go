package monitor

import (
	"fmt"
	"math"
	"time"

	"github.com/tgsafety/tgsafety/monitor/signal"
)

// Policy holds every number the state machine and the risk score use, in
// one place so that docs/signals.md can explain them and operators can tune
// them. DefaultPolicy documents where each default comes from.
type Policy struct {
	// LongWait is the flood wait from which a single wait puts the account
	// on watch (signals.md: ">= 300 s on the same method").
	LongWait time.Duration
	// RepeatedWaits flood waits on one method within RepeatWindow put the
	// account on watch.
	RepeatedWaits int
	RepeatWindow  time.Duration
	// PeerRefusals per-peer refusals within RepeatWindow put the account on
	// watch: being blocked by many recipients often precedes spam reports.
	PeerRefusals int
	// WatchFor is how long a watch reason holds after its last occurrence.
	WatchFor time.Duration
	// LimitHold is how long the account is assumed limited after a
	// PEER_FLOOD, USER_RESTRICTED or USER_BANNED_IN_CHANNEL when nothing
	// says for how long (limits.md: a first limit lasts about 1-3 days).
	LimitHold time.Duration

	// Weights gives each signal kind its risk points and half-life.
	Weights map[signal.Kind]Weight
	// RiskScale is the raw risk at which the score reaches 63 (1 - 1/e).
	RiskScale float64
	// StateFloor is the minimum score while the account is in a state.
	StateFloor map[State]float64
}

// Weight is the contribution of one signal to the raw risk: Points, plus
// WaitPoints scaled by the signal's wait up to one hour, halving every
// HalfLife.
type Weight struct {
	Points     float64
	WaitPoints float64
	HalfLife   time.Duration
}

// DefaultPolicy returns the policy tgsafety ships with. The reasoning for
// each weight is in docs/signals.md.
func DefaultPolicy() Policy {
	const day = 24 * time.Hour
	return Policy{
		LongWait:      5 * time.Minute,
		RepeatedWaits: 3,
		RepeatWindow:  time.Hour,
		PeerRefusals:  5,
		WatchFor:      day,
		LimitHold:     day,
		Weights: map[signal.Kind]Weight{
			signal.FloodWait:       {Points: 2, WaitPoints: 10, HalfLife: 6 * time.Hour},
			signal.PremiumWait:     {Points: 1, HalfLife: time.Hour},
			signal.SlowmodeWait:    {Points: 1, HalfLife: time.Hour},
			signal.PeerFlood:       {Points: 40, HalfLife: 3 * day},
			signal.Restricted:      {Points: 40, HalfLife: 3 * day},
			signal.BannedInChannel: {Points: 25, HalfLife: 3 * day},
			signal.Frozen:          {Points: 80, HalfLife: 14 * day},
			signal.Banned:          {Points: 100, HalfLife: 30 * day},
			signal.SessionDead:     {Points: 10, HalfLife: day},
			signal.LoginFlood:      {Points: 15, HalfLife: day},
			signal.APIIDFlood:      {Points: 30, HalfLife: 7 * day},
			signal.TwoFAReset:      {Points: 30, HalfLife: 7 * day},
			signal.PeerRefused:     {Points: 3, HalfLife: 12 * time.Hour},
			signal.Quota:           {Points: 5, HalfLife: day},
		},
		RiskScale: 50,
		StateFloor: map[State]float64{
			Banned:  100,
			Frozen:  90,
			Limited: 60,
		},
	}
}

// Validate reports the first unusable value, naming the field.
func (p Policy) Validate() error {
	pos := []struct {
		name string
		v    time.Duration
	}{
		{"LongWait", p.LongWait}, {"RepeatWindow", p.RepeatWindow},
		{"WatchFor", p.WatchFor}, {"LimitHold", p.LimitHold},
	}
	for _, f := range pos {
		if f.v <= 0 {
			return fmt.Errorf("policy: %s must be positive, got %s", f.name, f.v)
		}
	}
	if p.RepeatedWaits < 1 {
		return fmt.Errorf("policy: RepeatedWaits must be at least 1, got %d", p.RepeatedWaits)
	}
	if p.PeerRefusals < 1 {
		return fmt.Errorf("policy: PeerRefusals must be at least 1, got %d", p.PeerRefusals)
	}
	if !(p.RiskScale > 0) || math.IsInf(p.RiskScale, 0) {
		return fmt.Errorf("policy: RiskScale must be a positive number, got %v", p.RiskScale)
	}
	for k, w := range p.Weights {
		if w.Points < 0 || w.WaitPoints < 0 || math.IsNaN(w.Points) || math.IsNaN(w.WaitPoints) {
			return fmt.Errorf("policy: weight for %s: points must not be negative", k)
		}
		if w.HalfLife <= 0 {
			return fmt.Errorf("policy: weight for %s: HalfLife must be positive, got %s", k, w.HalfLife)
		}
	}
	for s, f := range p.StateFloor {
		if f < 0 || f > 100 || math.IsNaN(f) {
			return fmt.Errorf("policy: StateFloor for %s must be within 0-100, got %v", s, f)
		}
	}
	return nil
}

// points returns the raw risk one signal adds.
func (w Weight) points(s signal.Signal) float64 {
	frac := math.Min(1, float64(s.Wait)/float64(time.Hour))
	return w.Points + w.WaitPoints*frac
}

// riskAcc is a decaying sum: its value halves every half-life.
type riskAcc struct {
	v  float64
	at time.Time
}

// valueAt returns the sum decayed to t; at or before the accumulator's
// time, its value then (the past is not recomputed).
func (a riskAcc) valueAt(t time.Time, halfLife time.Duration) float64 {
	if a.v == 0 {
		return 0
	}
	dt := t.Sub(a.at)
	if dt <= 0 {
		return a.v
	}
	return a.v * math.Exp2(-float64(dt)/float64(halfLife))
}

// add adds pts at t. A signal older than the accumulator's time (reported
// late) is decayed by its own age first, so the sum does not depend on the
// order signals arrive in.
func (a *riskAcc) add(t time.Time, halfLife time.Duration, pts float64) {
	if t.Before(a.at) {
		a.v += pts * math.Exp2(-float64(a.at.Sub(t))/float64(halfLife))
		return
	}
	a.v = a.valueAt(t, halfLife) + pts
	a.at = t
}

// score maps a raw risk and the current state to 0-100, rounded to 0.1.
func (p *Policy) score(raw float64, st State) float64 {
	s := 100 * (1 - math.Exp(-raw/p.RiskScale))
	if f := p.StateFloor[st]; f > s {
		s = f
	}
	return math.Round(s*10) / 10
}
