package scenarios

import (
	"context"
	"testing"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tgerr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/testserver"
)

// A first login through the monitor's middleware, the usual way: gotd's
// Auth().IfNecessary asks users.getUsers(self), which a fresh key gets
// AUTH_KEY_UNREGISTERED for, then signs up. That is a key not signed in
// yet, not a dead session: the account goes unknown -> ok with no
// session_dead risk or signal. Once it has been signed in, the same error
// (after a log-out) is a dead session.
func TestFirstSignInIsNotADeadSession(t *testing.T) {
	w := newSim(t)
	acct, err := w.mon.Account("newcomer")
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	w.mon.Subscribe(func(e monitor.Event) {
		if e.Type == monitor.EventState {
			changes = append(changes, e.From.String()+">"+e.State.String())
		}
	})
	opts := w.srv.ClientOptions() // no session: a fresh key
	opts.NoUpdates = true
	opts.Middlewares = []telegram.Middleware{acct.Middleware()}
	flow := auth.NewFlow(testserver.Authenticator{PhoneNumber: "+999 663 1010", LoginCode: w.srv.LoginCode(),
		FirstName: "New", LastName: "Account"}, auth.SendCodeOptions{})
	err = RunClient(context.Background(), opts, func(ctx context.Context, c *telegram.Client) error {
		if err := c.Auth().IfNecessary(ctx, flow); err != nil {
			return err
		}
		if _, err := c.Self(ctx); err != nil {
			return err
		}
		if s := acct.Snapshot(); s.State != monitor.OK {
			t.Errorf("after sign-up: %s (%s), want ok", s.State, s.Reason)
		}
		// Signed out, the key is unregistered again: now a dead session.
		if _, err := c.API().AuthLogOut(ctx); err != nil {
			return err
		}
		if _, err := c.Self(ctx); !tgerr.Is(err, "AUTH_KEY_UNREGISTERED") {
			t.Errorf("self after log-out: %v, want AUTH_KEY_UNREGISTERED", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	preSignIn := false
	for _, e := range acct.Events() {
		preSignIn = preSignIn || e.Type == monitor.EventSignal && e.Signal.Type == "AUTH_KEY_UNREGISTERED" && e.State == monitor.Unknown
	}
	if !preSignIn {
		t.Errorf("the fresh key's AUTH_KEY_UNREGISTERED was not observed: %+v", acct.Events())
	}
	if want := []string{"unknown>ok", "ok>dead"}; len(changes) != 2 || changes[0] != want[0] || changes[1] != want[1] {
		t.Fatalf("state changes %v, want %v", changes, want)
	}
	if n := testutil.ToFloat64(gauge(t, w, "tgsafety_signals_total", "newcomer", signal.SessionDead.String())); n != 1 {
		t.Fatalf("%v session_dead signals counted, want 1 (the one after log-out)", n)
	}
}
