package scenarios

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/testserver"
)

const adult = 2 * 365 * 24 * time.Hour

// simWorld is a test server plus a monitor on the same virtual clock.
type simWorld struct {
	srv *testserver.Server
	mon *monitor.Monitor
	reg *prometheus.Registry
}

func newSim(t *testing.T) *simWorld {
	t.Helper()
	srv, err := testserver.New(testserver.Options{Users: 400})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { _ = srv.Close() })
	reg := prometheus.NewPedanticRegistry()
	mon, err := monitor.New(monitor.Options{Clock: srv.Clock(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return &simWorld{srv: srv, mon: mon, reg: reg}
}

// account creates a simulated adult account and returns client options
// with a provisioned session and the monitor's middleware.
func (w *simWorld) account(t *testing.T, name, phone string) (*monitor.Account, telegram.Options) {
	t.Helper()
	if _, err := w.srv.CreateAccount(testserver.AccountSpec{Phone: phone, Age: adult}); err != nil {
		t.Fatal(err)
	}
	st, err := w.srv.SessionStorage(phone)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := w.mon.Account(name)
	if err != nil {
		t.Fatal(err)
	}
	opts := w.srv.ClientOptions()
	opts.SessionStorage = st
	opts.NoUpdates = true
	opts.Middlewares = []telegram.Middleware{acct.Middleware()}
	return acct, opts
}

// run connects a real gotd client (scenarios.RunClient) and runs fn on
// it; a t.Fatal inside fn fails the test instead of hanging the client.
func run(t *testing.T, opts telegram.Options, fn func(ctx context.Context, api *tg.Client)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a failure guard only
	defer cancel()
	err := RunClient(ctx, opts, func(ctx context.Context, c *telegram.Client) error {
		fn(ctx, c.API())
		return nil
	})
	if errors.Is(err, ErrClientFuncAborted) {
		t.FailNow()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func resolve(ctx context.Context, api *tg.Client, username string) (*tg.User, error) {
	r, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: username})
	if err != nil {
		return nil, err
	}
	return r.Users[0].(*tg.User), nil
}

func dm(ctx context.Context, api *tg.Client, u *tg.User, i int) error {
	_, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
		Peer: &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash}, Message: "hello", RandomID: int64(i) + 1,
	})
	return err
}
