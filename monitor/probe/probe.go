package probe

import (
	"context"
	"time"
)

// Probe is one kind of active status check for one account.
type Probe interface {
	// Kind names the probe: monitor.ProbeSpamBot, ProbeFreeze, ... It is a
	// metric label value.
	Kind() string
	// Run performs the probe and reports the result, including an
	// inconclusive one, to the account. The error says the probe failed
	// (for metrics); the account has already been told.
	Run(ctx context.Context) error
}

// Schedule is when a probe runs.
type Schedule struct {
	// Interval between runs; zero means the probe runs only on request
	// (the self probe runs on every connect through Hooks).
	Interval time.Duration
	// Jitter spreads runs: each interval is varied by up to ±Jitter/2, and
	// the first run comes within Jitter of the start, so a fleet does not
	// probe in lockstep.
	Jitter time.Duration
	// Floor is the least time between two runs, whoever asks.
	Floor time.Duration
}

// DefaultSchedules are tgsafety's defaults: SpamBot about every 6 h and
// never more often than every 30 min; freeze hourly (official clients
// refresh the app config at most hourly, and on FROZEN_* errors);
// sessions every 6 h.
func DefaultSchedules() map[string]Schedule {
	return map[string]Schedule{
		"spambot":  {Interval: 6 * time.Hour, Jitter: time.Hour, Floor: 30 * time.Minute},
		"freeze":   {Interval: time.Hour, Jitter: 10 * time.Minute, Floor: 15 * time.Minute},
		"sessions": {Interval: 6 * time.Hour, Jitter: 30 * time.Minute, Floor: 30 * time.Minute},
		"self":     {Floor: time.Minute},
	}
}
