package audit

import (
	"context"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/monitor/vclock"
	"github.com/tgsafety/tgsafety/scenarios"
	"github.com/tgsafety/tgsafety/testserver"
)

// BenchmarkRecording is the cost of an audit's recording per call: the
// same mix of calls a client makes in an audit (a message to a contact,
// a history read, a self check, the app config, a resolve) against the
// same server, unrecorded and recorded, in one run. Each op is one call;
// virtual time moves 90 s per call so that no budget is hit (the daily
// resolve budget is 200), and every call succeeds.
//
//	go test -run '^$' -bench Recording -benchtime 5000x -count 10 ./scenarios/audit/ > rec.out
//	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da -col /mode rec.out
func BenchmarkRecording(b *testing.B) {
	for _, mode := range []string{"unrecorded", "recorded"} {
		b.Run("mode="+mode, func(b *testing.B) {
			clk := vclock.New(time.Now())
			opts := testserver.Options{Clock: clk, Users: 200}
			var rec *recorder
			if mode == "recorded" {
				rec = newRecorder(max(b.N+1000, DefaultMaxRecords), func(string, ...any) {})
				rec.clk = clk
				opts.Observer = rec
			}
			srv, err := testserver.New(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = srv.Close() }()
			srv.Start()
			const phone = "9996620001"
			uid, err := srv.CreateAccount(testserver.AccountSpec{Phone: phone, Age: DefaultAge})
			if err != nil {
				b.Fatal(err)
			}
			contact := srv.Usernames(1)[0]
			if err := srv.MakeMutual(phone, contact); err != nil {
				b.Fatal(err)
			}
			data, err := srv.Session(phone)
			if err != nil {
				b.Fatal(err)
			}
			if rec != nil {
				rec.srv = srv
				rec.start = time.Now()
				rec.addAccount(&acctInfo{spec: AccountSpec{Name: "bench", Age: DefaultAge}, userID: uid, phone: phone}, [8]byte(data.AuthKeyID))
			}
			st := new(session.StorageMemory)
			if err := (&session.Loader{Storage: st}).Save(context.Background(), data); err != nil {
				b.Fatal(err)
			}
			co := srv.ClientOptions()
			co.SessionStorage, co.NoUpdates = st, true
			err = scenarios.RunClient(context.Background(), co, func(ctx context.Context, c *telegram.Client) error {
				api := c.API()
				r, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: contact})
				if err != nil {
					return err
				}
				u := r.Users[0].(*tg.User)
				peer := &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash}
				calls := []func() error{
					func() error {
						_, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{Peer: peer, Message: "hi", RandomID: time.Now().UnixNano()})
						return err
					},
					func() error {
						_, err := api.MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{Peer: peer, Limit: 5})
						return err
					},
					func() error {
						_, err := api.UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
						return err
					},
					func() error { _, err := api.HelpGetAppConfig(ctx, 0); return err },
					func() error {
						_, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: contact})
						return err
					},
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					clk.Advance(90 * time.Second)
					if err := calls[i%len(calls)](); err != nil && !tgerr.Is(err, "FLOOD_WAIT") {
						return err
					}
				}
				b.StopTimer()
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			if rec != nil {
				for _, m := range rec.methodStats(0) {
					if m.OK != m.Calls {
						b.Fatalf("%s: %s; the workload must succeed", m.Method, m)
					}
				}
			}
		})
	}
}

// BenchmarkObserverCall is the recorder's own work per call, without
// MTProto: BeforeCall (decoding a message's peer, asking the server whom
// it goes to) and AfterCall (counting), for a messages.sendMessage.
func BenchmarkObserverCall(b *testing.B) {
	srv, err := testserver.New(testserver.Options{Users: 200})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Close() }()
	uid, err := srv.CreateAccount(testserver.AccountSpec{Phone: "9996620001"})
	if err != nil {
		b.Fatal(err)
	}
	rec := newRecorder(DefaultMaxRecords, func(string, ...any) {})
	rec.srv = srv
	rec.addAccount(&acctInfo{spec: AccountSpec{Name: "bench"}, userID: uid, phone: "9996620001"}, [8]byte{1})
	var body []byte
	{
		req := &tg.MessagesSendMessageRequest{Peer: &tg.InputPeerUser{UserID: uid + 1, AccessHash: 1}, Message: "hello", RandomID: 1}
		var buf bin.Buffer
		if err := req.Encode(&buf); err != nil {
			b.Fatal(err)
		}
		body = buf.Buf
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := testserver.CallRecord{Seq: uint64(i%DefaultMaxRecords + 1), Method: "messages.sendMessage", TypeID: tg.MessagesSendMessageRequestTypeID,
			Body: body, AuthKeyID: [8]byte{1}, MsgID: now.Unix() << 32, Arrived: now, Conn: 1}
		rec.BeforeCall(r)
		r.Answered = now
		rec.AfterCall(r)
	}
}
