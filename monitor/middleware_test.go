package monitor

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// startServer runs a tgtest MTProto server on loopback with a few handlers:
// a working method, a flood-waited one and a PEER_FLOOD one.
func startServer(t *testing.T) (telegram.Options, func()) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	dcOpts := []tg.DCOption{{ID: 2, IPAddress: "127.0.0.1", Port: addr.Port}}

	d := tgtest.NewDispatcher()
	d.HandleFunc(tg.HelpGetConfigRequestTypeID, func(s *tgtest.Server, req *tgtest.Request) error {
		return s.SendResult(req, &tg.Config{ThisDC: 2, DCOptions: dcOpts})
	})
	d.HandleFunc(tg.UsersGetUsersRequestTypeID, func(s *tgtest.Server, req *tgtest.Request) error {
		return s.SendVector(req, &tg.User{ID: 1, Self: true, FirstName: "Alice"})
	})
	d.HandleFunc(tg.ContactsResolveUsernameRequestTypeID, func(*tgtest.Server, *tgtest.Request) error {
		return tgerr.New(420, "FLOOD_WAIT_30")
	})
	d.HandleFunc(tg.MessagesSendMessageRequestTypeID, func(*tgtest.Server, *tgtest.Request) error {
		return tgerr.New(400, "PEER_FLOOD")
	})
	d.Fallback(tgtest.HandlerFunc(func(*tgtest.Server, *tgtest.Request) error {
		return tgerr.New(400, "METHOD_NOT_SUPPORTED")
	}))
	srv := tgtest.NewServer(tgtest.NewPrivateKey(key), tgtest.UnpackInvoke(d), tgtest.ServerOptions{DC: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, transport.Listen(l)) }()

	opts := telegram.Options{
		PublicKeys: []telegram.PublicKey{{RSA: &key.PublicKey}},
		DC:         2,
		DCList:     dcs.List{Options: dcOpts},
		Resolver:   dcs.Plain(dcs.PlainOptions{}),
		NoUpdates:  true,
	}
	return opts, func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("server: %v", err)
		}
	}
}

func TestMiddlewareWithRealClient(t *testing.T) {
	opts, stop := startServer(t)
	defer stop()

	reg := prometheus.NewPedanticRegistry()
	mon, err := New(Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := mon.Account("alice")
	opts.Middlewares = []telegram.Middleware{acct.Middleware()}
	client := telegram.NewClient(1, "not-a-real-hash", opts)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = client.Run(ctx, func(ctx context.Context) error {
		api := client.API()
		users, err := api.UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
		if err != nil {
			return err
		}
		if len(users) != 1 {
			t.Errorf("getUsers returned %d users", len(users))
		}
		_, err = api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: "someone"})
		if d, ok := tgerr.AsFloodWait(err); !ok || d != 30*time.Second {
			t.Errorf("resolveUsername error changed by middleware: %v", err)
		}
		_, err = api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{Peer: &tg.InputPeerSelf{}, Message: "hi", RandomID: 1})
		if !tgerr.Is(err, "PEER_FLOOD") {
			t.Errorf("sendMessage error changed by middleware: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	s := acct.Snapshot()
	if s.State != Limited {
		t.Fatalf("state = %s, want limited", s.State)
	}
	if len(s.FloodWaits) != 1 || s.FloodWaits[0].Method != "contacts.resolveUsername" {
		t.Fatalf("flood waits = %+v", s.FloodWaits)
	}
	for _, c := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{mon.metrics.requests.WithLabelValues("alice", "users.getUsers"), 1},
		{mon.metrics.requests.WithLabelValues("alice", "contacts.resolveUsername"), 1},
		{mon.metrics.errors.WithLabelValues("alice", "contacts.resolveUsername", "flood_wait"), 1},
		{mon.metrics.errors.WithLabelValues("alice", "messages.sendMessage", "peer_flood"), 1},
		{mon.metrics.signals.WithLabelValues("alice", "peer_flood"), 1},
		{mon.metrics.signals.WithLabelValues("alice", "flood_wait"), 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%v = %v, want %v", c.c, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(mon.metrics.floodWait); n != 1 {
		t.Errorf("flood wait histogram has %d series, want 1", n)
	}
}

// invokerFunc answers every call with the given error (nil: success).
type invokerFunc func(ctx context.Context, input bin.Encoder, output bin.Decoder) error

func (f invokerFunc) Invoke(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
	return f(ctx, input, output)
}

func TestMiddlewarePassesResultsThrough(t *testing.T) {
	mon, _ := New(Options{})
	acct, _ := mon.Account("alice")
	want := tgerr.New(420, "FLOOD_WAIT_5")
	inv := acct.Middleware().Handle(invokerFunc(func(_ context.Context, in bin.Encoder, out bin.Decoder) error {
		if _, ok := in.(*tg.ContactsResolveUsernameRequest); ok {
			return want
		}
		out.(*tg.Config).ThisDC = 4
		return nil
	}))
	var cfg tg.Config
	if err := inv.Invoke(context.Background(), &tg.HelpGetConfigRequest{}, &cfg); err != nil || cfg.ThisDC != 4 {
		t.Fatalf("success path changed: err=%v dc=%d", err, cfg.ThisDC)
	}
	if err := inv.Invoke(context.Background(), &tg.ContactsResolveUsernameRequest{}, &tg.ContactsResolvedPeer{}); err != want {
		t.Fatalf("error not passed through unchanged: %v", err)
	}
	if s := acct.Snapshot(); s.State != Throttled {
		t.Fatalf("state = %s", s.State)
	}
}

func TestMiddlewareSuccessDoesNotAllocate(t *testing.T) {
	mon, _ := New(Options{Registerer: prometheus.NewRegistry()})
	acct, _ := mon.Account("alice")
	inv := acct.Middleware().Handle(invokerFunc(func(context.Context, bin.Encoder, bin.Decoder) error { return nil }))
	req := &tg.MessagesGetHistoryRequest{}
	ctx := context.Background()
	_ = inv.Invoke(ctx, req, nil) // first call creates the method's series and marks the account seen
	if n := testing.AllocsPerRun(1000, func() { _ = inv.Invoke(ctx, req, nil) }); n != 0 {
		t.Fatalf("%v allocs per successful call, want 0", n)
	}
}

type rawEncoder struct{}

func (rawEncoder) Encode(*bin.Buffer) error { return nil }

func TestMethodName(t *testing.T) {
	for want, in := range map[string]bin.Encoder{
		"messages.sendMessage":     &tg.MessagesSendMessageRequest{},
		"contacts.resolveUsername": &tg.InvokeWithoutUpdatesRequest{Query: &tg.ContactsResolveUsernameRequest{}},
		"help.getConfig":           &tg.InvokeWithLayerRequest{Query: &tg.HelpGetConfigRequest{}},
		"unknown":                  rawEncoder{},
	} {
		if got := MethodName(in); got != want {
			t.Errorf("MethodName(%T) = %q, want %q", in, got, want)
		}
	}
}

func TestMiddlewareConcurrentAccounts(t *testing.T) {
	mon, _ := New(Options{Registerer: prometheus.NewRegistry()})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		acct, _ := mon.Account("acct" + strconv.Itoa(i))
		inv := acct.Middleware().Handle(invokerFunc(func(_ context.Context, in bin.Encoder, _ bin.Decoder) error {
			if _, ok := in.(*tg.MessagesSendMessageRequest); ok {
				return tgerr.New(420, "FLOOD_WAIT_3")
			}
			return nil
		}))
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 200; n++ {
					_ = inv.Invoke(context.Background(), &tg.MessagesGetHistoryRequest{}, nil)
					_ = inv.Invoke(context.Background(), &tg.MessagesSendMessageRequest{}, nil)
					_ = acct.Snapshot()
				}
			}()
		}
	}
	wg.Wait()
	for _, a := range mon.Accounts() {
		if got := testutil.ToFloat64(mon.metrics.signals.WithLabelValues(a.Name(), "flood_wait")); got != 800 {
			t.Errorf("%s: %v flood waits counted, want 800", a.Name(), got)
		}
		if s := a.Snapshot(); s.State != Throttled {
			t.Errorf("%s: state %s", a.Name(), s.State)
		}
	}
}

// Clients may nest invoke wrappers (invokeWithoutUpdates around
// invokeWithTakeout around the query): every wrapper is looked through,
// for the name, the metrics, the flood-wait key and the ban-clearing rule.
func TestMethodNameLooksThroughNestedWrappers(t *testing.T) {
	nested := func(q bin.Object) bin.Encoder {
		return &tg.InvokeWithoutUpdatesRequest{Query: &tg.InvokeWithTakeoutRequest{Query: &tg.InvokeAfterMsgRequest{Query: q}}}
	}
	if got := MethodName(nested(&tg.MessagesGetHistoryRequest{})); got != "messages.getHistory" {
		t.Fatalf("MethodName(nested getHistory) = %q", got)
	}
	if got := UnwrapQuery(nested(&tg.MessagesGetHistoryRequest{})); got == nil || MethodName(got) != "messages.getHistory" {
		t.Fatalf("UnwrapQuery(nested getHistory) = %T", got)
	}
	if got := MethodName(&tg.InvokeWithTakeoutRequest{}); got != "invokeWithTakeout" {
		t.Fatalf("MethodName(wrapper without a query) = %q", got)
	}

	reg := prometheus.NewPedanticRegistry()
	mon, _ := New(Options{Registerer: reg})
	acct, _ := mon.Account("alice")
	fail := map[uint32]error{
		tg.MessagesGetHistoryRequestTypeID: tgerr.New(420, "FLOOD_WAIT_30"),
		tg.UsersGetUsersRequestTypeID:      tgerr.New(401, "USER_DEACTIVATED_BAN"),
	}
	inv := acct.Middleware().Handle(invokerFunc(func(_ context.Context, in bin.Encoder, _ bin.Decoder) error {
		return fail[UnwrapQuery(in).(interface{ TypeID() uint32 }).TypeID()]
	}))
	ctx := context.Background()
	_ = inv.Invoke(ctx, nested(&tg.MessagesGetHistoryRequest{}), nil)
	if !acct.FloodWaitUntil("messages.getHistory", mon.clock.Now()).After(mon.clock.Now()) {
		t.Errorf("flood wait not filed under messages.getHistory: %+v", acct.Snapshot().FloodWaits)
	}
	if got := testutil.ToFloat64(mon.metrics.requests.WithLabelValues("alice", "messages.getHistory")); got != 1 {
		t.Errorf("requests{method=messages.getHistory} = %v, want 1", got)
	}
	_ = inv.Invoke(ctx, nested(&tg.UsersGetUsersRequest{}), nil)
	// help.* succeeds without authorisation: it must not clear the ban,
	// however deeply it is wrapped.
	_ = inv.Invoke(ctx, nested(&tg.HelpGetConfigRequest{}), nil)
	if s := acct.Snapshot(); s.State != Banned {
		t.Fatalf("state after a wrapped help.getConfig succeeded = %s, want banned", s.State)
	}
}
