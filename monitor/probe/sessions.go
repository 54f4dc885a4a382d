package probe

import (
	"context"
	"fmt"
	"strings"

	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
)

// Sessions reads account.getAuthorizations: how many sessions, new ones
// since the last probe, unconfirmed or password-pending logins, and whether
// this session is still listed (hijack risk, or a coming SESSION_REVOKED).
type Sessions struct {
	Account *monitor.Account
	API     *tg.Client
}

// Kind implements Probe.
func (s *Sessions) Kind() string { return monitor.ProbeSessions }

// Run implements Probe.
func (s *Sessions) Run(ctx context.Context) error {
	now := s.Account.Clock().Now()
	auths, err := s.API.AccountGetAuthorizations(ctx)
	if err != nil {
		s.Account.ObserveProbeError(now, monitor.ProbeSessions, fmt.Errorf("account.getAuthorizations: %s", signal.Describe(err)))
		return err
	}
	s.Account.ObserveSessions(now, SessionsStatusOf(auths))
	return nil
}

// SessionsStatusOf summarises an authorizations list. Device descriptions
// carry no IP address: they end up in events and logs.
func SessionsStatusOf(a *tg.AccountAuthorizations) monitor.SessionsStatus {
	st := monitor.SessionsStatus{Count: len(a.Authorizations), Devices: map[int64]string{}}
	for _, au := range a.Authorizations {
		st.Hashes = append(st.Hashes, au.Hash)
		st.Devices[au.Hash] = strings.TrimSpace(fmt.Sprintf("%s, %s %s, %s", au.DeviceModel, au.AppName, au.AppVersion, au.Country))
		if au.Current {
			st.CurrentListed = true
		}
		if au.Unconfirmed {
			st.Unconfirmed++
		}
		if au.PasswordPending {
			st.PasswordPending++
		}
	}
	return st
}
