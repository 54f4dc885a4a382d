package testserver

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/transport"

	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// benchProfile is the default profile with contact DMs allowed at any
// pace, so a benchmark can send for as long as it likes while every call
// still goes through the whole policy (tracker check, record, counters).
func benchProfile() *limits.Profile {
	p := limits.Default()
	ap := p.Actions[limits.DMContact]
	ap.Limits = []limits.Limit{
		{Window: limits.Duration(time.Minute), Max: 1 << 20, Source: "benchmark"},
		{Window: limits.Duration(24 * time.Hour), Max: 1 << 30, Source: "benchmark"},
	}
	p.Actions[limits.DMContact] = ap
	return p
}

// BenchmarkSendMessage compares messages.sendMessage through the full
// simulation (auth, policy, message store) with bare tgtest answering the
// same call from a trivial handler, on the same in-memory transport, with
// one real gotd client each (docs/performance.md).
func BenchmarkSendMessage(b *testing.B) {
	b.Run("testserver", func(b *testing.B) {
		s := newServer(b, Options{Profile: benchProfile(), Users: 10})
		const phone = "9996621000"
		opts := provisioned(b, s, AccountSpec{Phone: phone, Age: adult, MutualContacts: 1})
		friend := s.Usernames(10)
		run(b, opts, func(ctx context.Context, c *telegram.Client) error {
			api := c.API()
			var peer *tg.User
			for _, n := range friend {
				u := resolve(ctx, b, api, n)
				if u.MutualContact {
					peer = u
				}
			}
			if peer == nil {
				b.Fatal("no mutual contact")
			}
			req := &tg.MessagesSendMessageRequest{Peer: &tg.InputPeerUser{UserID: peer.ID, AccessHash: peer.AccessHash}, Message: "hi"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				req.RandomID = int64(i)
				if _, err := api.MessagesSendMessage(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			return nil
		})
	})
	b.Run("bare_tgtest", func(b *testing.B) {
		s := newServer(b, Options{Users: 1}) // only for its key and listener type
		mem := newMemListener()
		d := tgtest.NewDispatcher()
		d.HandleFunc(tg.HelpGetConfigRequestTypeID, func(srv *tgtest.Server, req *tgtest.Request) error {
			return srv.SendResult(req, &tg.Config{ThisDC: 2, DCOptions: s.dcOptions()})
		})
		pts := 0
		var mu sync.Mutex
		d.HandleFunc(tg.MessagesSendMessageRequestTypeID, func(srv *tgtest.Server, req *tgtest.Request) error {
			var r tg.MessagesSendMessageRequest
			if err := r.Decode(req.Buf); err != nil {
				return tgerr.New(400, "INPUT_REQUEST_INVALID")
			}
			mu.Lock()
			pts++
			p := pts
			mu.Unlock()
			return srv.SendResult(req, &tg.UpdateShortSentMessage{Out: true, ID: p, Pts: p, PtsCount: 1, Date: int(time.Now().Unix())})
		})
		d.Fallback(tgtest.HandlerFunc(func(*tgtest.Server, *tgtest.Request) error { return tgerr.New(400, "INPUT_METHOD_INVALID") }))
		srv := tgtest.NewServer(tgtest.NewPrivateKey(s.opts.Key), tgtest.UnpackInvoke(d), tgtest.ServerOptions{DC: 2, ReadTimeout: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ctx, transport.Listen(mem)) }()
		defer func() { cancel(); _ = mem.Close(); <-done }()
		opts := telegram.Options{
			PublicKeys: []telegram.PublicKey{{RSA: s.PublicKey()}}, DC: 2, DCList: dcs.List{Options: s.dcOptions()},
			Resolver:  dcs.Plain(dcs.PlainOptions{Dial: func(ctx context.Context, _, _ string) (net.Conn, error) { return mem.Dial(ctx) }}),
			NoUpdates: true,
		}
		run(b, opts, func(ctx context.Context, c *telegram.Client) error {
			api := c.API()
			req := &tg.MessagesSendMessageRequest{Peer: &tg.InputPeerSelf{}, Message: "hi"}
			_, _ = api.MessagesSendMessage(ctx, req) // the key exchange happens before timing
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				req.RandomID = int64(i)
				if _, err := api.MessagesSendMessage(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			return nil
		})
	})
}

// BenchmarkVirtualDay runs one active account through 24 h of virtual
// time: every 5 minutes it resolves a username, writes to a contact and a
// stranger (until limited), and asks SpamBot every 6 h. One op is one day.
func BenchmarkVirtualDay(b *testing.B) {
	s := newServer(b, Options{Users: 400})
	opts := provisioned(b, s, AccountSpec{Phone: "9996621001", Age: adult, MutualContacts: 5})
	names := s.Usernames(400)
	run(b, opts, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		calls := 0
		b.ResetTimer()
		for day := 0; b.Loop(); day++ {
			for step := 0; step < 288; step++ {
				name := names[(day*288+step)%len(names)]
				r, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: name})
				calls++
				if err == nil {
					u := r.Users[0].(*tg.User)
					_ = dm(ctx, api, u, "hello")
					calls++
				}
				if step%72 == 0 {
					_, _ = spamBotStart(ctx, api)
					calls++
				}
				s.Advance(5 * time.Minute)
			}
		}
		b.ReportMetric(float64(calls)/float64(b.N), "rpcs/day")
		return nil
	})
}

func spamBotStart(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
	return api.MessagesStartBot(ctx, &tg.MessagesStartBotRequest{
		Bot: &tg.InputUser{UserID: spambot.UserID, AccessHash: 0x5350414d424f54}, Peer: &tg.InputPeerUser{UserID: spambot.UserID, AccessHash: 0x5350414d424f54},
		RandomID: randomInt64(), StartParam: "start",
	})
}

// BenchmarkConnectedAccounts measures memory per connected, signed-in
// account: N simulated accounts with provisioned sessions, each with its
// own real gotd client over the in-memory transport, client and server in
// this process. Run with -benchtime=1x; accounts=1000 is the target case.
func BenchmarkConnectedAccounts(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			for b.Loop() {
				connectMany(b, n)
			}
		})
	}
}

func connectMany(b *testing.B, n int) {
	s := newServer(b, Options{Users: 100})
	stores := make([]telegram.SessionStorage, n)
	for i := range stores {
		phone := fmt.Sprintf("99966%05d", i)
		if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: adult}); err != nil {
			b.Fatal(err)
		}
		st, err := s.SessionStorage(phone)
		if err != nil {
			b.Fatal(err)
		}
		stores[i] = st
	}
	before := memInUse()
	ctx, cancel := context.WithCancel(context.Background())
	var ready, stopped sync.WaitGroup
	ready.Add(n)
	stopped.Add(n)
	for i := 0; i < n; i++ {
		opts := s.ClientOptions()
		opts.SessionStorage = stores[i]
		opts.NoUpdates = true
		c := telegram.NewClient(17349, "not-a-real-hash", opts)
		go func() {
			defer stopped.Done()
			_ = c.Run(ctx, func(ctx context.Context) error {
				if _, err := c.Self(ctx); err != nil {
					b.Error(err)
				}
				ready.Done()
				<-ctx.Done()
				return nil
			})
		}()
	}
	ready.Wait()
	after := memInUse()
	b.ReportMetric(float64(after-before)/float64(n)/1024, "KiB/account")
	b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/account")
	cancel()
	stopped.Wait()
}

// memInUse is heap plus goroutine stacks in use after a collection.
func memInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
