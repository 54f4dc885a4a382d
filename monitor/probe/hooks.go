package probe

import (
	"context"

	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor"
)

// Hooks returns the telegram.Options OnSelfSuccess and OnSelfError
// callbacks for an account: gotd calls users.getUsers(self) on every
// (re)connect when updates are on, which is where a ban (401
// USER_DEACTIVATED_BAN) usually appears, and where the self flags come for
// free. The client must also carry the account's Middleware, which records
// the self call's RPC errors. Metrics may be nil.
func Hooks(acct *monitor.Account, m *Recorder) (onSuccess func(*tg.User), onError func(context.Context, error) error) {
	self := &Self{Account: acct}
	onSuccess = func(u *tg.User) {
		now := acct.Clock().Now()
		acct.ObserveSelf(now, SelfStatusOf(u))
		if m != nil {
			m.Observe(acct.Name(), monitor.ProbeSelf, now, nil)
		}
	}
	onError = func(_ context.Context, err error) error {
		now := acct.Clock().Now()
		self.onError(now, err)
		if m != nil {
			m.Observe(acct.Name(), monitor.ProbeSelf, now, err)
		}
		// Returning nil keeps the client running; the account's state
		// (banned, dead) is what the operator acts on.
		return nil
	}
	return onSuccess, onError
}
