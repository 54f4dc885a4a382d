package guard_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/clock"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
)

type invokerFunc func(ctx context.Context, input bin.Encoder, output bin.Decoder) error

func (f invokerFunc) Invoke(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
	return f(ctx, input, output)
}

// stepClock moves forward by step on every read, so a benchmark spends
// budget at a steady rate without a clock driver; reads are lock-free.
type stepClock struct {
	clock.Clock // timers and tickers: unused by the benchmarks
	base        time.Time
	step        time.Duration
	n           atomic.Int64
}

func (c *stepClock) Now() time.Time { return c.base.Add(time.Duration(c.n.Add(1)) * c.step) }

// BenchmarkGuard is the guard's cost on a successful call, next to the
// monitor middleware's on the same trivial invoker in the same run.
//
//   - passthrough: messages.getHistory, which spends no budget (most
//     calls); the guard reads the account's flood waits and the result's
//     shape.
//   - allowed: contacts.resolveUsername within budget: classify, the
//     account's state, the budget check and record under the guard's lock,
//     two clock reads. The clock advances 5 min per read (10 per call), so
//     the account stays within 144 resolves a day.
//   - monitor_middleware: monitor's Account.Middleware on the passthrough
//     call, for comparison.
func BenchmarkGuard(b *testing.B) {
	ok := invokerFunc(func(context.Context, bin.Encoder, bin.Decoder) error { return nil })
	ctx := context.Background()
	history := &tg.MessagesGetHistoryRequest{Peer: &tg.InputPeerSelf{}}
	run := func(b *testing.B, mw telegram.Middleware, req bin.Encoder, out bin.Decoder) {
		inv := mw.Handle(ok)
		for range 300 { // warm up: series created, the tracker's window at its steady size
			if err := inv.Invoke(ctx, req, out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := inv.Invoke(ctx, req, out); err != nil {
				b.Fatal(err)
			}
		}
	}
	newGuard := func(b *testing.B, clk clock.Clock) (*monitor.Account, *guard.Guard) {
		mon, err := monitor.New(monitor.Options{Clock: clk, Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		acct, _ := mon.Account("bench")
		g, err := guard.New(acct, guard.Options{Created: adult, Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		return acct, g
	}
	b.Run("passthrough", func(b *testing.B) {
		_, g := newGuard(b, nil)
		run(b, g.Middleware(), history, &tg.MessagesMessagesBox{})
	})
	b.Run("allowed", func(b *testing.B) {
		_, g := newGuard(b, &stepClock{Clock: clock.System, base: epoch, step: 5 * time.Minute})
		run(b, g.Middleware(), resolve("durov"), &tg.ContactsResolvedPeer{})
	})
	b.Run("monitor_middleware", func(b *testing.B) {
		acct, _ := newGuard(b, nil)
		run(b, acct.Middleware(), history, &tg.MessagesMessagesBox{})
	})
}
