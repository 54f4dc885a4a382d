package testserver

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// observed collects what an Observer is told.
type observed struct {
	mu     sync.Mutex
	before []CallRecord
	after  []CallRecord
	conns  []ConnEvent
	closed chan uint64
	// onBefore runs in BeforeCall, outside the lock.
	onBefore func(CallRecord)
}

func newObserved() *observed { return &observed{closed: make(chan uint64, 64)} }

func (o *observed) BeforeCall(r CallRecord) {
	r.Body = slices.Clone(r.Body)
	o.mu.Lock()
	o.before = append(o.before, r)
	f := o.onBefore
	o.mu.Unlock()
	if f != nil {
		f(r)
	}
}

func (o *observed) AfterCall(r CallRecord) {
	r.Body = nil
	o.mu.Lock()
	o.after = append(o.after, r)
	o.mu.Unlock()
}

func (o *observed) ConnEvent(e ConnEvent) {
	o.mu.Lock()
	o.conns = append(o.conns, e)
	o.mu.Unlock()
	if e.Kind == ConnClosed {
		o.closed <- e.Conn
	}
}

func (o *observed) calls() []CallRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.after)
}

func (o *observed) events() []ConnEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.conns)
}

// waitClosed waits until n connections were reported closed; the deadline
// is a failure guard only.
func (o *observed) waitClosed(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-o.closed:
		case <-timeout:
			t.Fatalf("only %d of %d connections reported closed", i, n)
		}
	}
}

func tcpServer(t *testing.T, obs Observer) *Server {
	t.Helper()
	s := newServer(t, Options{Observer: obs})
	if _, err := s.ListenTCP("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return s
}

func tcpClient(t *testing.T, s *Server, phone string) telegram.Options {
	t.Helper()
	if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: 365 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	st, err := s.SessionStorage(phone)
	if err != nil {
		t.Fatal(err)
	}
	o := s.TCPClientOptions()
	o.SessionStorage, o.NoUpdates = st, true
	return o
}

func TestObserverSeesEveryCallWithItsAnswerAccountAndConnection(t *testing.T) {
	obs := newObserved()
	s := tcpServer(t, obs)
	opts := tcpClient(t, s, "9996620101")
	uid := s.mustUserID(t, "9996620101")
	if err := s.Inject("9996620101", Fault{Method: "contacts.resolveUsername", Times: 1, Error: tgerr.New(420, "FLOOD_WAIT_7")}); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		if _, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: "sim_user_0001"}); !tgerr.Is(err, "FLOOD_WAIT") {
			t.Errorf("first resolve: got %v, want the injected FLOOD_WAIT_7", err)
		}
		if _, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: "sim_user_0001"}); err != nil {
			t.Errorf("second resolve: %v", err)
		}
		// QR login is not served, and the observer must still name it.
		_, err := api.AuthExportLoginToken(ctx, &tg.AuthExportLoginTokenRequest{APIID: 1, APIHash: "x"})
		if !tgerr.Is(err, "INPUT_METHOD_INVALID") {
			t.Errorf("exportLoginToken: got %v", err)
		}
		return nil
	})
	obs.waitClosed(t, 1)

	calls := obs.calls()
	var resolves []CallRecord
	var qr bool
	for _, c := range calls {
		if c.UserID() != uid {
			t.Errorf("call %d %s: user id %d, want %d", c.Seq, c.Method, c.UserID(), uid)
		}
		if c.Conn != 1 {
			t.Errorf("call %d %s: connection %d, want 1", c.Seq, c.Method, c.Conn)
		}
		if c.Answered.Before(c.Arrived) {
			t.Errorf("call %d answered before it arrived", c.Seq)
		}
		if d := c.MsgID>>32 - sent.Unix(); d < -1 || d > 60 {
			t.Errorf("call %d: sent at Unix %d by its message id, %d s after the test started", c.Seq, c.MsgID>>32, d)
		}
		switch c.Method {
		case "contacts.resolveUsername":
			resolves = append(resolves, c)
		case "auth.exportLoginToken":
			qr = true
		}
	}
	if len(resolves) != 2 || resolves[0].Err == nil || resolves[0].Err.Message != "FLOOD_WAIT_7" || resolves[1].Err != nil {
		t.Errorf("resolves: %+v, want FLOOD_WAIT_7 then success", resolves)
	}
	if !qr {
		t.Errorf("auth.exportLoginToken not observed among %d calls", len(calls))
	}
	obs.mu.Lock()
	nb := len(obs.before)
	obs.mu.Unlock()
	if nb != len(calls) {
		t.Errorf("%d BeforeCall, %d AfterCall", nb, len(calls))
	}

	ev := obs.events()
	kinds := make([]ConnEventKind, len(ev))
	for i, e := range ev {
		kinds[i] = e.Kind
	}
	if want := []ConnEventKind{ConnOpened, ConnKey, ConnClosed}; !slices.Equal(kinds, want) {
		t.Errorf("connection events %v, want %v", kinds, want)
	}
	if ev[1].Key != calls[0].AuthKeyID {
		t.Errorf("ConnKey key %x, calls under %x", ev[1].Key, calls[0].AuthKeyID)
	}
}

func TestObserverBeforeCallMayInjectIntoThatVeryCall(t *testing.T) {
	obs := newObserved()
	s := newServer(t, Options{Observer: obs})
	opts := provisioned(t, s, AccountSpec{Phone: "9996620102"})
	n := 0
	obs.onBefore = func(r CallRecord) {
		if r.Method != "contacts.resolveUsername" {
			return
		}
		if n++; n == 2 {
			if err := s.Inject("9996620102", Fault{Method: r.Method, Times: 1, Error: tgerr.New(420, "FLOOD_WAIT_3")}); err != nil {
				t.Error(err)
			}
		}
	}
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		for i := 1; i <= 3; i++ {
			_, err := c.API().ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: "sim_user_0002"})
			if got := err != nil; got != (i == 2) {
				t.Errorf("resolve %d: error %v; only the second should fail", i, err)
			}
		}
		return nil
	})
}

func TestObserverSeesKeyExchangesAndTheSameKeyOnTwoConnections(t *testing.T) {
	obs := newObserved()
	s := tcpServer(t, obs)
	opts := tcpClient(t, s, "9996620103")
	data, err := opts.SessionStorage.LoadSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A second client with a copy of the same session, both connected at
	// once: what a second instance of a program with the same session
	// file does (AUTH_KEY_DUPLICATED on Telegram).
	twin := s.TCPClientOptions()
	twin.NoUpdates = true
	twin.SessionStorage = &session.StorageMemory{}
	if err := twin.SessionStorage.StoreSession(context.Background(), data); err != nil {
		t.Fatal(err)
	}
	// A fresh client: no session, so a key exchange.
	fresh := s.TCPClientOptions()
	fresh.NoUpdates = true

	call := func(ctx context.Context, c *telegram.Client) error {
		_, err := c.API().HelpGetNearestDC(ctx)
		return err
	}
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		if err := call(ctx, c); err != nil {
			return err
		}
		run(t, twin, call)
		// The first client's session was superseded by the twin's: as
		// Telegram, the server refuses it.
		if err := call(ctx, c); !tgerr.Is(err, "AUTH_KEY_DUPLICATED") {
			t.Errorf("the first client after its twin: %v, want AUTH_KEY_DUPLICATED", err)
		}
		return nil
	})
	if n := s.DuplicatedKeys(); n != 1 {
		t.Errorf("DuplicatedKeys = %d, want 1", n)
	}
	run(t, fresh, call)
	obs.waitClosed(t, 3)

	byConn := map[uint64][][8]byte{}
	for _, e := range obs.events() {
		if e.Kind == ConnKey {
			byConn[e.Conn] = append(byConn[e.Conn], e.Key)
		}
	}
	d, err := (&session.Loader{Storage: twin.SessionStorage}).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	key := [8]byte(d.AuthKeyID)
	zero := [8]byte{}
	// Connection 1 carried the key, connection 2 took it over, and 1
	// carried it again: two events for 1.
	if got := byConn[1]; !slices.Equal(got, [][8]byte{key, key}) {
		t.Errorf("connection 1 key events %x, want the session's key twice", got)
	}
	if got := byConn[2]; !slices.Equal(got, [][8]byte{key}) {
		t.Errorf("connection 2 key events %x, want the session's key once", got)
	}
	if got := byConn[3]; len(got) != 2 || got[0] != zero || got[1] == zero || got[1] == key {
		t.Errorf("connection 3 key events %x, want a key exchange (zero) then a new key", got)
	}
}

func TestDMActionTellsColdDMsFromMessagesToContacts(t *testing.T) {
	s := newServer(t, Options{})
	me, err := s.CreateAccount(AccountSpec{Phone: "9996620104"})
	if err != nil {
		t.Fatal(err)
	}
	names := s.Usernames(2)
	if err := s.MakeMutual("9996620104", names[0]); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	contact, stranger := s.w.byUsername[names[0]].id, s.w.byUsername[names[1]].id
	s.mu.Unlock()
	for _, c := range []struct {
		to   int64
		want limits.Action
	}{{contact, limits.DMContact}, {stranger, limits.DMNonContact}, {me, limits.DMContact}, {spambot.UserID, ""}, {42, ""}} {
		if got := s.DMAction(me, c.to); got != c.want {
			t.Errorf("DMAction(me, %d) = %q, want %q", c.to, got, c.want)
		}
	}
	if got := s.DMAction(contact, me); got != "" {
		t.Errorf("from a population user: %q, want \"\"", got)
	}
}

func TestServerWithoutObserverServesAsBefore(t *testing.T) {
	s := newServer(t, Options{})
	if s.opts.Observer != nil {
		t.Fatal("observer set")
	}
	opts := provisioned(t, s, AccountSpec{Phone: "9996620105"})
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		_, err := c.API().HelpGetNearestDC(ctx)
		return err
	})
	if n := s.obs.seq.Load(); n != 0 {
		t.Errorf("%d calls numbered without an observer", n)
	}
	if !slices.Contains(s.Methods(), "messages.sendMessage") || slices.Contains(s.Methods(), "auth.exportLoginToken") {
		t.Errorf("Methods() = %v", s.Methods())
	}
}

func (s *Server) mustUserID(t *testing.T, phone string) int64 {
	t.Helper()
	st, err := s.Status(phone)
	if err != nil {
		t.Fatal(err)
	}
	return st.UserID
}

func encode(t testing.TB, e bin.Encoder) []byte {
	var b bin.Buffer
	if err := e.Encode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Buf
}

func TestStripWrappersFindsTheRequestInsideEveryInvokeWrapper(t *testing.T) {
	inner := &tg.ContactsResolveUsernameRequest{Username: "sim_user_0001"}
	want := encode(t, inner)
	for _, c := range []struct {
		name string
		req  bin.Encoder
	}{
		{"bare", inner},
		{"layer(init(...))", &tg.InvokeWithLayerRequest{Layer: tg.Layer, Query: &tg.InitConnectionRequest{APIID: 1, DeviceModel: "d", SystemVersion: "s",
			AppVersion: "a", SystemLangCode: "en", LangCode: "en", Query: inner}}},
		{"without updates", &tg.InvokeWithoutUpdatesRequest{Query: inner}},
		{"after msg(without updates)", &tg.InvokeAfterMsgRequest{MsgID: 42, Query: &tg.InvokeWithoutUpdatesRequest{Query: inner}}},
	} {
		got, ok := stripWrappers(encode(t, c.req))
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("%s: got %x (%v), want %x", c.name, got, ok, want)
		}
	}
	for _, b := range [][]byte{nil, {1, 2}, encode(t, &tg.InvokeWithLayerRequest{Layer: 1, Query: inner})[:6]} {
		if _, ok := stripWrappers(b); ok {
			t.Errorf("%x: accepted", b)
		}
	}
}

func FuzzStripWrappers(f *testing.F) {
	inner := &tg.HelpGetConfigRequest{}
	f.Add(encode(f, &tg.InvokeWithLayerRequest{Layer: tg.Layer, Query: &tg.InitConnectionRequest{Query: inner}}))
	f.Add(encode(f, &tg.InvokeAfterMsgRequest{MsgID: 1, Query: &tg.InvokeWithoutUpdatesRequest{Query: inner}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := stripWrappers(b)
		if ok && !bytes.HasSuffix(b, got) {
			t.Fatalf("returned bytes that are not the input's tail")
		}
	})
}
