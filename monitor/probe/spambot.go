package probe

import (
	"context"
	"errors"

	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// SpamBot asks @SpamBot through the account's client (spambot.Prober) and
// reports the answer, with the time the question was sent, to the account.
type SpamBot struct {
	Account *monitor.Account
	Prober  *spambot.Prober
}

// NewSpamBot builds the SpamBot probe for an account's client; the prober
// waits for the reply on the account's clock.
func NewSpamBot(acct *monitor.Account, api *tg.Client, opts spambot.ProberOptions) *SpamBot {
	if opts.Clock == nil {
		opts.Clock = acct.Clock()
	}
	return &SpamBot{Account: acct, Prober: spambot.NewProber(api, opts)}
}

// Kind implements Probe.
func (s *SpamBot) Kind() string { return monitor.ProbeSpamBot }

// Run implements Probe.
func (s *SpamBot) Run(ctx context.Context) error {
	sent, r := s.Prober.Probe(ctx)
	s.Account.ObserveSpamBot(sent, r)
	if r.State == spambot.Unknown {
		return errors.New(r.Reason)
	}
	return nil
}
