package monitor

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gotd/contrib/middleware/tg_prom"
	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/vclock"
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

// BenchmarkObserveSignalDistinctMethods reports a flood wait on a new
// made-up method name each time, as a misbehaving reporter would: the cost
// per signal must not grow with the number of names seen (compare
// -benchtime 5000x with 100000x).
func BenchmarkObserveSignalDistinctMethods(b *testing.B) {
	clk := vclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	mon, _ := New(Options{Clock: clk, Registerer: prometheus.NewRegistry()})
	acct, _ := mon.Account("bench")
	fw := signal.Parse(420, "FLOOD_WAIT_60")
	names := make([]string, b.N)
	for i := range names {
		names[i] = "ns" + strconv.Itoa(i) + ".madeUp" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		acct.ObserveSignal(clk.Now(), names[i], fw)
	}
}
