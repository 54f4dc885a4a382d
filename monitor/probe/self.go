package probe

import (
	"context"
	"errors"
	"time"

	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
)

// Self reads the self user's restricted, scam, fake and deleted flags. gotd
// fetches the self user on every connect when updates are on; Hooks plugs
// into telegram.Options so that costs nothing extra. Run asks explicitly.
type Self struct {
	Account *monitor.Account
	API     *tg.Client
}

// Kind implements Probe.
func (s *Self) Kind() string { return monitor.ProbeSelf }

// Run implements Probe.
func (s *Self) Run(ctx context.Context) error {
	now := s.Account.Clock().Now()
	users, err := s.API.UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
	if err != nil {
		s.onError(now, err)
		return err
	}
	if len(users) != 1 {
		err := errors.New("users.getUsers(self) returned no user")
		s.Account.ObserveProbeError(now, monitor.ProbeSelf, err)
		return err
	}
	u, ok := users[0].(*tg.User)
	if !ok {
		err := errors.New("users.getUsers(self) returned an empty user")
		s.Account.ObserveProbeError(now, monitor.ProbeSelf, err)
		return err
	}
	s.Account.ObserveSelf(now, SelfStatusOf(u))
	return nil
}

// onError reports a failed self call. An RPC error (a 401 at connect is
// how bans and dead sessions usually show up) went through the account's
// middleware, which already recorded it: recording it again would count
// the signal and its risk twice. Only other failures are reported here.
func (s *Self) onError(now time.Time, err error) {
	if _, ok := signal.AsRPC(err); ok {
		return
	}
	s.Account.ObserveProbeError(now, monitor.ProbeSelf, err)
}

// SelfStatusOf extracts the flags from a self user.
func SelfStatusOf(u *tg.User) monitor.SelfStatus {
	st := monitor.SelfStatus{Restricted: u.Restricted, Scam: u.Scam, Fake: u.Fake, Deleted: u.Deleted}
	for _, r := range u.RestrictionReason {
		st.Reasons = append(st.Reasons, r.Platform+": "+r.Reason+": "+r.Text)
	}
	return st
}
