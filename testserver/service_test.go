package testserver

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/transport"
)

// TestAcksAreNeverAnswered: clients acknowledge the server's answers
// (GramJS and mtcute every content message, Telethon likewise); Telegram
// never answers an ack, and neither may the server. It answered each with
// rpc_error INPUT_METHOD_INVALID_1658238041, which the client acked again.
// (gotd acks only messages with an odd seqno, and tgtest sends every
// message with seqno 0, so a gotd client never acks this server.)
func TestAcksAreNeverAnswered(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620300"
	if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: adult}); err != nil {
		t.Fatal(err)
	}
	c := rawSession(t, s, phone)
	for range 3 {
		r := c.call(&tg.HelpGetConfigRequest{})
		ack := c.send(&mt.MsgsAck{MsgIDs: []int64{r.ID}})
		// The next answer on the connection is the next call's: nothing
		// answers the ack.
		next := c.send(&tg.HelpGetNearestDCRequest{})
		m := c.next("an answer", func(m rawMsg) bool { return m.ReqID != 0 })
		if m.ReqID != next {
			t.Fatalf("the ack (msg %d) was answered: %#x %v", ack, m.TypeID, rpcError(m))
		}
	}
	got, errs := s.wire.counts(mt.MsgsAckTypeID)
	if got != 3 || errs != 0 {
		t.Fatalf("server received %d msgs_ack and answered %d of them with rpc_error, want 3 and 0", got, errs)
	}
}

// TestMsgsStateReqGetsStateInfo: msgs_state_req is answered with
// msgs_state_info (one byte per id asked), never with an rpc_error:
// mtcute asks about requests it has had no answer for.
func TestMsgsStateReqGetsStateInfo(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620301"
	if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: adult}); err != nil {
		t.Fatal(err)
	}
	c := rawSession(t, s, phone)
	first := c.send(&tg.HelpGetConfigRequest{})
	c.result(first)
	second := c.send(&tg.HelpGetNearestDCRequest{})
	c.result(second)
	unknownLow := first - 4       // before anything this session sent
	unknownHigh := second + 1<<32 // a second in the future
	req := c.send(&mt.MsgsStateReq{MsgIDs: []int64{first, second, unknownHigh, unknownLow}})
	m := c.next("msgs_state_info", func(m rawMsg) bool { return m.TypeID == mt.MsgsStateInfoTypeID || m.ReqID == req })
	if m.TypeID != mt.MsgsStateInfoTypeID {
		t.Fatalf("msgs_state_req answered with %#x (%v)", m.TypeID, rpcError(m))
	}
	var info mt.MsgsStateInfo
	if err := info.Decode(&bin.Buffer{Buf: m.Body}); err != nil {
		t.Fatal(err)
	}
	// 4: received; 3: not received, id too high; 1: nothing known.
	if info.ReqMsgID != req || string(info.Info) != "\x04\x04\x03\x01" {
		t.Fatalf("msgs_state_info %d %v, want %d [4 4 3 1]", info.ReqMsgID, info.Info, req)
	}
}

// TestServiceMessagesAreAnsweredAsTelegramDoes covers the rest of the
// service messages a client may send: msg_resend_req (nothing is kept to
// resend: msgs_state_info saying so), destroy_session (ok for another
// session of the same key, none otherwise) and ping_delay_disconnect
// (pong). None of them gets an rpc_error, and the session still works.
func TestServiceMessagesAreAnsweredAsTelegramDoes(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620302"
	if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: adult}); err != nil {
		t.Fatal(err)
	}
	old := rawSession(t, s, phone)
	old.call(&tg.HelpGetConfigRequest{})
	c := newRawClient(t, dialRaw(t, s, transport.Intermediate), old.key)
	c.call(&tg.HelpGetConfigRequest{})

	req := c.send(&mt.MsgResendReq{MsgIDs: []int64{42 << 32}})
	m := c.next("answer to msg_resend_req", func(m rawMsg) bool { return m.TypeID == mt.MsgsStateInfoTypeID || m.ReqID == req })
	var info mt.MsgsStateInfo
	if m.TypeID != mt.MsgsStateInfoTypeID || info.Decode(&bin.Buffer{Buf: m.Body}) != nil || string(info.Info) != "\x01" {
		t.Fatalf("msg_resend_req answered with %#x %v", m.TypeID, rpcError(m))
	}

	for _, tc := range []struct {
		session int64
		want    uint32
	}{
		{old.session, mt.DestroySessionOkTypeID},
		{old.session, mt.DestroySessionNoneTypeID}, // already gone
		{c.session, mt.DestroySessionNoneTypeID},   // the current one is not destroyed
		{12345, mt.DestroySessionNoneTypeID},
	} {
		req := c.send(&mt.DestroySessionRequest{SessionID: tc.session})
		m := c.next("answer to destroy_session", func(m rawMsg) bool {
			return m.TypeID == mt.DestroySessionOkTypeID || m.TypeID == mt.DestroySessionNoneTypeID || m.ReqID == req
		})
		if m.TypeID != tc.want {
			t.Fatalf("destroy_session(%d) answered with %#x (%v), want %#x", tc.session, m.TypeID, rpcError(m), tc.want)
		}
	}

	c.send(&mt.PingDelayDisconnectRequest{PingID: 77, DisconnectDelay: 75})
	pong := c.next("pong", func(m rawMsg) bool { return m.TypeID == mt.PongTypeID })
	var p mt.Pong
	if err := p.Decode(&bin.Buffer{Buf: pong.Body}); err != nil || p.PingID != 77 {
		t.Fatalf("pong %+v %v", p, err)
	}

	if r := c.call(&tg.HelpGetNearestDCRequest{}); r.TypeID != tg.NearestDCTypeID {
		t.Fatalf("after the service messages help.getNearestDc answered %#x (%v)", r.TypeID, rpcError(r))
	}
	for _, id := range []uint32{mt.MsgResendReqTypeID, mt.DestroySessionRequestTypeID, mt.MsgsStateReqTypeID} {
		if _, errs := s.wire.counts(id); errs != 0 {
			t.Fatalf("%#x answered with %d rpc_errors", id, errs)
		}
	}
}

// TestIdleClientsStayConnected: clients ping every 60 s (gotd, Telethon,
// GramJS) or send ping_delay_disconnect with 75 s (mtcute); a client idle
// for two minutes must still be connected. MTProto runs on the real clock,
// so this checks the configuration instead of waiting: the read timeout
// covers two minutes of silence, and no connection of ours has a deadline.
func TestIdleClientsStayConnected(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	if s.opts.ReadTimeout < 5*time.Minute {
		t.Fatalf("default read timeout %v drops clients idle for two minutes", s.opts.ReadTimeout)
	}
	if got := s.srvReadTimeout(); got != s.opts.ReadTimeout {
		t.Fatalf("tgtest runs with read timeout %v, want %v", got, s.opts.ReadTimeout)
	}
	s2 := newServer(t, Options{Users: 1, ReadTimeout: time.Hour})
	if got := s2.srvReadTimeout(); got != time.Hour {
		t.Fatalf("ReadTimeout option not passed to tgtest: %v", got)
	}
}

// srvReadTimeout reads the read timeout tgtest actually uses.
func (s *Server) srvReadTimeout() time.Duration {
	v, err := field(reflect.ValueOf(s.srv).Elem(), "readTimeout")
	if err != nil {
		panic(err)
	}
	return v.Interface().(time.Duration)
}

// TestUpdatesStateAndDifferenceAgree: updates.getState reports the pts of
// the newest update the account was sent, and updates.getDifference from
// any earlier pts returns exactly the messages after it with that state;
// clients that keep an updates state (gotd's manager, Telethon, mtcute)
// rely on both agreeing with the pts of the results and pushes.
func TestUpdatesStateAndDifferenceAgree(t *testing.T) {
	s := newServer(t, Options{})
	opts := provisioned(t, s, AccountSpec{Phone: "9996620303", Age: adult})
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		st0, err := api.UpdatesGetState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bot := resolveNoBudget(ctx, t, api)
		sent, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
			Peer: &tg.InputPeerUser{UserID: bot.ID, AccessHash: bot.AccessHash}, Message: "/start", RandomID: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		short, ok := sent.(*tg.UpdateShortSentMessage)
		if !ok || short.Pts != st0.Pts+1 || short.PtsCount != 1 {
			t.Fatalf("sendMessage answered %#v after pts %d", sent, st0.Pts)
		}
		st, err := api.UpdatesGetState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pts != st0.Pts+2 { // ours and SpamBot's reply
			t.Fatalf("getState pts %d, want %d", st.Pts, st0.Pts+2)
		}
		d, err := api.UpdatesGetDifference(ctx, &tg.UpdatesGetDifferenceRequest{Pts: short.Pts, Date: st.Date})
		if err != nil {
			t.Fatal(err)
		}
		diff, ok := d.(*tg.UpdatesDifference)
		if !ok || diff.State.Pts != st.Pts || len(diff.NewMessages) != 1 || len(diff.Users) != 1 {
			t.Fatalf("difference from %d: %#v", short.Pts, d)
		}
		if m := diff.NewMessages[0].(*tg.Message); m.Out || !strings.HasPrefix(m.Message, "Good news") {
			t.Fatalf("difference carries %q (out %v), want SpamBot's reply", m.Message, m.Out)
		}
		d, err = api.UpdatesGetDifference(ctx, &tg.UpdatesGetDifferenceRequest{Pts: st.Pts, Date: st.Date})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := d.(*tg.UpdatesDifferenceEmpty); !ok {
			t.Fatalf("difference from the current pts: %#v, want empty", d)
		}
		return nil
	})
}

// TestReconnectWithTheSameSessionIsAnswered: mtcute reconnects with the
// same MTProto session id. tgtest maps a session to the connection it
// first came on and kept sending to the closed one, so every answer
// failed and the new connection was closed too, until mtcute gave the
// session up (7 reconnects and about 10 s in the conformance suite).
// After DropConnections the next connection is answered at once; after
// a disconnect the server did not see, within one reconnect.
func TestReconnectWithTheSameSessionIsAnswered(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620304"
	if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: adult}); err != nil {
		t.Fatal(err)
	}
	first := rawSession(t, s, phone)
	first.call(&tg.HelpGetConfigRequest{})
	again := func() *rawClient {
		c := newRawClient(t, dialRaw(t, s, transport.Intermediate), first.key)
		c.session = first.session
		return c
	}

	s.DropConnections()
	last := again()
	if m := last.call(&tg.HelpGetNearestDCRequest{}); m.TypeID != tg.NearestDCTypeID {
		t.Fatalf("after DropConnections: %#x %v", m.TypeID, rpcError(m))
	}

	// The client goes away by itself; the server learns it only when an
	// answer cannot be sent.
	_ = last.conn.Close()
	c := again()
	c.send(&tg.HelpGetNearestDCRequest{})
	if _, ok := <-c.in; ok {
		t.Log("answered on the first reconnect")
	}
	if m := again().call(&tg.HelpGetNearestDCRequest{}); m.TypeID != tg.NearestDCTypeID {
		t.Fatalf("after a client-side disconnect: %#x %v", m.TypeID, rpcError(m))
	}
}
