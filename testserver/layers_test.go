package testserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/tg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/testserver/internal/tlschema"
)

// layerClient speaks one API layer over a raw MTProto session, building
// requests and reading answers with that layer's schema, as Telethon
// (144), GramJS (198) or mtcute (227) would.
type layerClient struct {
	*rawClient
	s *tlschema.Schema
}

func newLayerClient(t testing.TB, s *Server, phone string, layer int) *layerClient {
	t.Helper()
	set, err := tlschema.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := set.Schema(layer)
	if err != nil {
		t.Fatal(err)
	}
	return &layerClient{rawClient: rawSession(t, s, phone), s: sc}
}

func (c *layerClient) obj(name string, fields map[string]any) *tlschema.Object {
	c.t.Helper()
	o, err := c.s.New(name, fields)
	if err != nil {
		c.t.Fatal(err)
	}
	return o
}

// call sends a request of the client's layer and decodes the answer with
// the same layer's schema; an rpc_error is returned as such.
func (c *layerClient) call(req *tlschema.Object) (any, *mt.RPCError) {
	c.t.Helper()
	var b bin.Buffer
	if err := c.s.EncodeCall(&b, req); err != nil {
		c.t.Fatal(err)
	}
	m := c.rawClient.call(rawBytes(b.Buf))
	if e := rpcError(m); e != nil {
		return nil, e
	}
	fn := req.C
	for fn.Result.Kind == tlschema.KindGeneric { // a wrapper: the inner query's result
		fn = req.Arg("query").(*tlschema.Object).C
		req = req.Arg("query").(*tlschema.Object)
	}
	v, err := c.s.DecodeResult(m.Body, fn)
	if err != nil {
		c.t.Fatalf("layer %d: answer to %s does not decode in the client's layer: %v", c.s.Layer, fn.Name, err)
	}
	return v, nil
}

func (c *layerClient) mustCall(req *tlschema.Object) *tlschema.Object {
	c.t.Helper()
	v, e := c.call(req)
	if e != nil {
		c.t.Fatalf("layer %d: %s: %v", c.s.Layer, req.C.Name, e)
	}
	o, ok := v.(*tlschema.Object)
	if !ok {
		c.t.Fatalf("layer %d: %s answered %T", c.s.Layer, req.C.Name, v)
	}
	return o
}

// init is a client's first call: invokeWithLayer(initConnection(help.getConfig)).
func (c *layerClient) init() *tlschema.Object {
	c.t.Helper()
	initConn := c.obj("initConnection", map[string]any{
		"api_id": int32(6), "device_model": []byte("test"), "system_version": []byte("1"), "app_version": []byte("1"),
		"system_lang_code": []byte("en"), "lang_pack": []byte(""), "lang_code": []byte("en"),
		"query": c.obj("help.getConfig", nil),
	})
	return c.mustCall(c.obj("invokeWithLayer", map[string]any{"layer": int32(c.s.Layer), "query": initConn}))
}

func str(v any) string {
	b, _ := v.([]byte)
	return string(b)
}

// TestOlderLayerClientsAreAnsweredInTheirLayer walks a client of each
// layer the known clients speak (and one in between) through what the
// conformance suite does: connect, resolve SpamBot, /start, the reply
// pushed as an update and read back through getHistory, getUsers, and a
// server-side ban arriving as USER_DEACTIVATED_BAN. Every answer must
// decode with the client's own schema.
func TestOlderLayerClientsAreAnsweredInTheirLayer(t *testing.T) {
	for _, layer := range []int{144, 170, 198, 227, NativeLayer} {
		t.Run(fmt.Sprint(layer), func(t *testing.T) {
			s := newServer(t, Options{})
			phone := fmt.Sprintf("99966204%02d", layer%100)
			if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: adult}); err != nil {
				t.Fatal(err)
			}
			c := newLayerClient(t, s, phone, layer)
			cfg := c.init()
			if cfg.C.Name != "config" || cfg.Arg("this_dc") != int32(2) {
				t.Fatalf("help.getConfig answered %s this_dc=%v", cfg.C.Name, cfg.Arg("this_dc"))
			}
			if want := c.s.ConstructorNamed("config").ID; cfg.C.ID != want {
				t.Fatalf("config#%x, want the layer's #%x", cfg.C.ID, want)
			}

			res := c.mustCall(c.obj("contacts.resolveUsername", map[string]any{"username": []byte("SpamBot")}))
			users := res.Arg("users").([]any)
			bot := users[0].(*tlschema.Object)
			if bot.C != c.s.ConstructorNamed("user") || bot.Arg("id") != int64(spambot.UserID) || bot.Arg("bot") != true {
				t.Fatalf("SpamBot resolved as %s %v", bot.C.Name, bot.Args)
			}
			peer := c.obj("inputPeerUser", map[string]any{"user_id": bot.Arg("id"), "access_hash": bot.Arg("access_hash")})

			sent := c.mustCall(c.obj("messages.sendMessage", map[string]any{
				"peer": peer, "message": []byte("/start"), "random_id": int64(1),
			}))
			if sent.C.Name != "updateShortSentMessage" {
				t.Fatalf("sendMessage answered %s", sent.C.Name)
			}
			updatesID := c.s.ConstructorNamed("updates").ID
			pushed := c.next("SpamBot's reply pushed", func(m rawMsg) bool { return m.ReqID == 0 && m.TypeID == updatesID })
			upd, err := c.s.DecodeBoxed(pushed.Body)
			if err != nil {
				t.Fatalf("pushed update does not decode in layer %d: %v", layer, err)
			}
			nm := upd.Arg("updates").([]any)[0].(*tlschema.Object)
			msg := nm.Arg("message").(*tlschema.Object)
			if nm.C.Name != "updateNewMessage" || msg.C != c.s.ConstructorNamed("message") ||
				!strings.HasPrefix(str(msg.Arg("message")), "Good news") || msg.Arg("reply_markup") == nil {
				t.Fatalf("pushed %s with %s %q", nm.C.Name, msg.C.Name, str(msg.Arg("message")))
			}

			hist := c.mustCall(c.obj("messages.getHistory", map[string]any{"peer": peer, "limit": int32(1)}))
			last := hist.Arg("messages").([]any)[0].(*tlschema.Object)
			if hist.C.Name != "messages.messages" || last.Arg("out") != nil || !strings.HasPrefix(str(last.Arg("message")), "Good news") {
				t.Fatalf("history %s: %v", hist.C.Name, last.Args)
			}

			v, e := c.call(c.obj("users.getUsers", map[string]any{"id": []any{c.obj("inputUserSelf", nil)}}))
			if e != nil {
				t.Fatal(e)
			}
			self := v.([]any)[0].(*tlschema.Object)
			if self.C != c.s.ConstructorNamed("user") || str(self.Arg("phone")) != phone {
				t.Fatalf("getUsers(self): %s %v", self.C.Name, self.Args)
			}

			if err := s.Ban(phone); err != nil {
				t.Fatal(err)
			}
			if _, e := c.call(c.obj("users.getUsers", map[string]any{"id": []any{c.obj("inputUserSelf", nil)}})); e == nil ||
				e.ErrorCode != 401 || e.ErrorMessage != "USER_DEACTIVATED_BAN" {
				t.Fatalf("after the ban: %v", e)
			}
		})
	}
}

// TestUnservableLayerGetsAnErrorAndOneLogLine: a layer without a schema
// gets 400 CONNECTION_LAYER_INVALID on every call (never answers it
// cannot decode, never silence) and one log line naming it.
func TestUnservableLayerGetsAnErrorAndOneLogLine(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	s := newServer(t, Options{Logger: zap.New(core)})
	const phone = "9996620500"
	if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: adult}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		c := rawSession(t, s, phone)
		var b bin.Buffer
		if err := (&tg.InvokeWithLayerRequest{Layer: 130, Query: &tg.HelpGetConfigRequest{}}).Encode(&b); err != nil {
			t.Fatal(err)
		}
		for _, req := range []bin.Encoder{rawBytes(b.Buf), &tg.HelpGetNearestDCRequest{}} {
			e := rpcError(c.call(req))
			if e == nil || e.ErrorCode != 400 || e.ErrorMessage != "CONNECTION_LAYER_INVALID" {
				t.Fatalf("layer 130: %v", e)
			}
		}
	}
	lines := logs.FilterField(zap.Int("layer", 130)).All()
	if len(lines) != 1 {
		t.Fatalf("%d log lines about layer 130, want 1: %v", len(lines), lines)
	}
	// The same key may come back in a layer that is served.
	c := rawSession(t, s, phone)
	var b bin.Buffer
	if err := (&tg.InvokeWithLayerRequest{Layer: NativeLayer, Query: &tg.HelpGetNearestDCRequest{}}).Encode(&b); err != nil {
		t.Fatal(err)
	}
	if m := c.call(rawBytes(b.Buf)); m.TypeID != tg.NearestDCTypeID {
		t.Fatalf("back on layer %d: %#x %v", NativeLayer, m.TypeID, rpcError(m))
	}
}

// TestOlderLayerRequestsWithoutCounterpart: a method the native layer
// lacks, or an id the client's layer does not define, is an RPC error
// naming it; the session keeps working.
func TestOlderLayerRequestsWithoutCounterpart(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620501"
	if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: adult}); err != nil {
		t.Fatal(err)
	}
	c := newLayerClient(t, s, phone, 144)
	c.init()
	native := c.s // for the lookup below only
	var gone *tlschema.Combinator
	set, _ := tlschema.Embedded()
	nat, _ := set.Schema(NativeLayer)
	for _, f := range native.Functions {
		if nat.FunctionNamed(f.Name) == nil {
			if o, err := c.s.New(f.Name, nil); err == nil {
				gone = o.C
				break
			}
		}
	}
	if gone == nil {
		t.Fatal("layer 144 has no function 228 dropped")
	}
	o, _ := c.s.New(gone.Name, nil)
	if _, e := c.call(o); e == nil || e.ErrorMessage != fmt.Sprintf("INPUT_METHOD_INVALID_%d", gone.ID) {
		t.Fatalf("%s (gone in %d): %v", gone.Name, NativeLayer, e)
	}
	if e := rpcError(c.rawClient.call(rawRequest{id: 0x0badf00d})); e == nil || e.ErrorMessage != "INPUT_METHOD_INVALID_195948557" {
		t.Fatalf("unknown id: %v", e)
	}
	if e := rpcError(c.rawClient.call(rawRequest{id: c.s.FunctionNamed("messages.sendMessage").ID})); e == nil || e.ErrorMessage != "INPUT_REQUEST_INVALID" {
		t.Fatalf("truncated body: %v", e)
	}
	if cfg := c.mustCall(c.obj("help.getConfig", nil)); cfg.C.Name != "config" {
		t.Fatalf("after the errors: %s", cfg.C.Name)
	}
}

// TestPeekLayerFindsTheInnermostLayer: the query is in the layer of the
// innermost invokeWithLayer, past the wrappers clients put around it
// (gotd: invokeWithoutUpdates and its own invokeWithLayer; mtcute:
// invokeAfterMsg).
func TestPeekLayerFindsTheInnermostLayer(t *testing.T) {
	enc := func(o bin.Encoder) []byte {
		var b bin.Buffer
		if err := o.Encode(&b); err != nil {
			t.Fatal(err)
		}
		return b.Buf
	}
	q := &tg.HelpGetConfigRequest{}
	for _, tc := range []struct {
		name  string
		body  []byte
		layer int
		ok    bool
	}{
		{"plain", enc(q), 0, false},
		{"one", enc(&tg.InvokeWithLayerRequest{Layer: 144, Query: q}), 144, true},
		{"gotd around another layer", enc(&tg.InvokeWithoutUpdatesRequest{Query: &tg.InvokeWithLayerRequest{Layer: 228,
			Query: &tg.InvokeWithoutUpdatesRequest{Query: &tg.InvokeWithLayerRequest{Layer: 198, Query: q}}}}), 198, true},
		{"after msg", enc(&tg.InvokeAfterMsgRequest{MsgID: 5, Query: &tg.InvokeWithLayerRequest{Layer: 227, Query: q}}), 227, true},
		{"after msgs", enc(&tg.InvokeAfterMsgsRequest{MsgIDs: []int64{1, 2}, Query: &tg.InvokeWithLayerRequest{Layer: 170, Query: q}}), 170, true},
		{"truncated", enc(&tg.InvokeWithLayerRequest{Layer: 144, Query: q})[:6], 0, false},
	} {
		if l, ok := peekLayer(tc.body); l != tc.layer || ok != tc.ok {
			t.Errorf("%s: layer %d %v, want %d %v", tc.name, l, ok, tc.layer, tc.ok)
		}
	}
}
