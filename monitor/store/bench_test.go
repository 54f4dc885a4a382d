package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/store/pgtest"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

func benchEvent(i int) monitor.Event {
	return monitor.Event{
		Time: t0.Add(time.Duration(i) * time.Millisecond), Account: fmt.Sprintf("acc%03d", i%100),
		Type: monitor.EventSignal, Method: "messages.sendMessage",
		Signal: signal.Signal{Kind: signal.FloodWait, Code: 420, Type: "FLOOD_WAIT", Wait: 30 * time.Second},
		From:   monitor.OK, State: monitor.Throttled, Until: t0.Add(time.Duration(i)*time.Millisecond + 30*time.Second),
		Risk: 12.5, Reason: "FLOOD_WAIT of 30s on messages.sendMessage",
	}
}

// BenchmarkAppend measures Append with one transaction (and one fsync,
// synchronous=FULL) per batch.
func BenchmarkAppend(b *testing.B) {
	for _, eng := range engines() {
		for _, size := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", eng.name, size), func(b *testing.B) {
				s := eng.open(b)
				batch := make([]monitor.Event, size)
				for i := range batch {
					batch[i] = benchEvent(i)
				}
				ctx := context.Background()
				events := 0
				b.ReportAllocs()
				for b.Loop() {
					if err := s.Append(ctx, batch); err != nil {
						b.Fatal(err)
					}
					events += size
				}
				b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkWriter measures the Sink path end to end: Record from one
// goroutine per processor, batched by Run, then Close writing the rest.
// events/s counts written events; dropped would be events the buffer
// could not hold.
func BenchmarkWriter(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"))
	w := NewWriter(s, WriterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			w.Record(benchEvent(i))
			i++
		}
	})
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(testutil.ToFloat64(w.m.written)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(testutil.ToFloat64(w.m.dropped), "dropped")
}

// BenchmarkWriterNoDrops measures what the Writer writes when it drops
// nothing: the same Records as BenchmarkWriter, with a buffer that holds
// every one of them, so that events/s is Records turned into committed
// rows (Close waits for the last) rather than the share of them a full
// buffer let through. It fails if anything was dropped.
func BenchmarkWriterNoDrops(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"))
	w := NewWriter(s, WriterOptions{Buffer: b.N + 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			w.Record(benchEvent(i))
			i++
		}
	})
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if d := testutil.ToFloat64(w.m.dropped); d > 0 {
		b.Fatalf("%v events dropped", d)
	}
	if n := testutil.ToFloat64(w.m.written); n != float64(b.N) {
		b.Fatalf("%v events written, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCommit measures acknowledged writes: concurrent Commit calls of
// one event each, as the API makes them, grouped into shared transactions.
func BenchmarkCommit(b *testing.B) {
	for _, eng := range engines() {
		b.Run(eng.name, func(b *testing.B) { benchmarkCommit(b, eng.open(b)) })
	}
}

func benchmarkCommit(b *testing.B, s Store) {
	w := NewWriter(s, WriterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	b.SetParallelism(16) // many API requests in flight per processor
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := w.Commit(ctx, []monitor.Event{benchEvent(i)}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(testutil.ToFloat64(w.m.written)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkLeaseTake measures how long a replica takes to hold n free
// accounts: from its first round (after it announced itself) until every
// lease is its own, one row lock and one term row per account. Each
// iteration's replica then gives them all back (Close), so the next one
// finds them free, as a replica taking over a fleet whose holder stopped
// with SIGTERM does.
func BenchmarkLeaseTake(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			st := openPG(b, pgtest.NewDatabase(b))
			clk := vclock.New(leaseEpoch)
			accts := names(n)
			ctx := context.Background()
			rounds := 0
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				o := testLeases(fmt.Sprintf("r%d", i), clk)
				o.manual = true
				l, err := st.Leases(ctx, accts, o)
				if err != nil {
					b.Fatal(err)
				}
				clk.Advance(o.TTL) // past its announcement
				b.StartTimer()
				for l.heldCount() < n {
					l.round()
					rounds++
				}
				b.StopTimer()
				if err := l.Close(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(rounds)/float64(b.N), "rounds/op")
		})
	}
}
