package monitor

import (
	"context"
	"testing"

	"github.com/gotd/contrib/middleware/tg_prom"
	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkMiddleware compares the cost the monitor adds to a successful
// call with gotd/contrib's tg_prom middleware, on the same trivial invoker
// in the same run (docs/performance.md).
func BenchmarkMiddleware(b *testing.B) {
	ok := invokerFunc(func(context.Context, bin.Encoder, bin.Decoder) error { return nil })
	req := &tg.MessagesGetHistoryRequest{}
	run := func(b *testing.B, mw telegram.Middleware) {
		inv := mw.Handle(ok)
		ctx := context.Background()
		_ = inv.Invoke(ctx, req, nil)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			_ = inv.Invoke(ctx, req, nil)
		}
	}
	b.Run("none", func(b *testing.B) {
		run(b, telegram.MiddlewareFunc(func(next tg.Invoker) telegram.InvokeFunc { return next.Invoke }))
	})
	b.Run("tgsafety", func(b *testing.B) {
		mon, err := New(Options{Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		acct, _ := mon.Account("bench")
		run(b, acct.Middleware())
	})
	b.Run("tg_prom", func(b *testing.B) {
		p := tg_prom.New()
		reg := prometheus.NewRegistry()
		for _, c := range p.Metrics() {
			reg.MustRegister(c)
		}
		run(b, p)
	})
}

// BenchmarkMiddlewareError is the failure path: classification, counters
// and the account's state update.
func BenchmarkMiddlewareError(b *testing.B) {
	flood := tgerr.New(420, "FLOOD_WAIT_3")
	fail := invokerFunc(func(context.Context, bin.Encoder, bin.Decoder) error { return flood })
	req := &tg.ContactsResolveUsernameRequest{}
	b.Run("tgsafety", func(b *testing.B) {
		mon, _ := New(Options{Registerer: prometheus.NewRegistry()})
		acct, _ := mon.Account("bench")
		inv := acct.Middleware().Handle(fail)
		b.ReportAllocs()
		for b.Loop() {
			_ = inv.Invoke(context.Background(), req, nil)
		}
	})
	b.Run("tg_prom", func(b *testing.B) {
		p := tg_prom.New()
		inv := p.Handle(fail)
		b.ReportAllocs()
		for b.Loop() {
			_ = inv.Invoke(context.Background(), req, nil)
		}
	})
}
