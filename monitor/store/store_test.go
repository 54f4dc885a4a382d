package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func open(t testing.TB, path string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func count(t testing.TB, s Store, where string) int {
	t.Helper()
	var n int
	queryRow(t, s, "SELECT COUNT(*) FROM events "+where, &n)
	return n
}

// allEventTypes returns one event of every type and shape the monitor
// emits, with every field that matters set.
func allEventTypes() []monitor.Event {
	return []monitor.Event{
		{
			Time: t0, Account: "alice", Type: monitor.EventSignal, Method: "messages.sendMessage",
			Signal: signal.Signal{Kind: signal.FloodWait, Code: 420, Type: "FLOOD_WAIT", Wait: 37 * time.Second},
			From:   monitor.OK, State: monitor.Throttled, Until: t0.Add(37 * time.Second),
			Risk: 12.345678901234567, Reason: "FLOOD_WAIT on messages.sendMessage",
		},
		{
			Time: t0.Add(time.Nanosecond), Account: "alice", Type: monitor.EventSignal, Method: "messages.sendMessage",
			Signal: signal.Signal{Kind: signal.PeerFlood, Code: 400, Type: "PEER_FLOOD"},
			From:   monitor.Throttled, State: monitor.Limited, Until: t0.Add(7 * 24 * time.Hour),
			Risk: 61.5, Reason: "PEER_FLOOD on messages.sendMessage",
		},
		{
			Time: t0.Add(time.Second), Account: "alice", Type: monitor.EventProbe, Probe: "spambot",
			From: monitor.Limited, State: monitor.Limited, Until: t0.Add(3 * 24 * time.Hour),
			Risk: 70, Reason: "SpamBot: limited_temporary",
		},
		{
			Time: t0.Add(2 * time.Second), Account: "alice", Type: monitor.EventState, Probe: "spambot",
			From: monitor.Limited, State: monitor.OK, Risk: 0.1, Reason: "",
		},
		{
			Time: t0.Add(3 * time.Second), Account: "alice", Type: monitor.EventState,
			From: monitor.Unknown, State: monitor.Dead, Risk: 100, Reason: "AUTH_KEY_UNREGISTERED on users.getUsers",
		},
	}
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	old := syscall.Umask(0) // the widest umask: permissions must not depend on it
	defer syscall.Umask(old)
	s := open(t, path)
	if err := s.Append(context.Background(), allEventTypes()[:1]); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), perm)
		}
	}
	var mode, sync string
	if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
	if err := s.db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != "2" {
		t.Errorf("synchronous = %q, %v; want 2 (FULL)", sync, err)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	ctx := context.Background()
	s := open(t, path)
	if err := s.Append(ctx, allEventTypes()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	if got := s.SchemaVersion(); got != len(migrations) {
		t.Errorf("schema version %d, want %d", got, len(migrations))
	}
	var rows int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&rows); err != nil || rows != len(migrations) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", rows, err, len(migrations))
	}
	if n := count(t, s, ""); n != len(allEventTypes()) {
		t.Errorf("%d events after reopening, want %d", n, len(allEventTypes()))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	s := open(t, path)
	future := len(migrations) + 5
	if _, err := s.db.Exec("INSERT INTO schema_migrations (version, applied_ns) VALUES (?, 0)", future); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := OpenSQLite(path, Options{})
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || sv.Found != future || sv.Known != len(migrations) {
		t.Fatalf("OpenSQLite = %v, want SchemaVersionError %d > %d", err, future, len(migrations))
	}
	msg := err.Error()
	if !strings.Contains(msg, strconv.Itoa(future)) || !strings.Contains(msg, strconv.Itoa(len(migrations))) {
		t.Errorf("error %q does not name both versions", msg)
	}
}

func TestRejectsQuestionMarkPath(t *testing.T) {
	if _, err := OpenSQLite(filepath.Join(t.TempDir(), "a?b.db"), Options{}); err == nil {
		t.Fatal("path with '?' accepted")
	}
}

func TestAppendEventsRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng engine) {
		ctx := context.Background()
		s := eng.open(t)
		want := allEventTypes()
		other := want[0]
		other.Account = "bob"
		if err := s.Append(ctx, append(want, other)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Events(ctx, "alice", time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip differs:\n got %+v\nwant %+v", got, want)
		}
		all, err := s.Events(ctx, "", time.Time{}, 0)
		if err != nil || len(all) != len(want)+1 {
			t.Errorf("all accounts: %d events, %v", len(all), err)
		}
		var typ string
		if queryRow(t, s, "SELECT type FROM events WHERE account = 'alice' ORDER BY id LIMIT 1", &typ); typ != "signal" {
			t.Errorf("type column %q", typ)
		}
	})
}

// TestRoundTripZones checks that a time in another zone keeps its instant
// and offset, and that the monotonic reading is not needed.
func TestRoundTripZones(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng engine) {
		ctx := context.Background()
		s := eng.open(t)
		zone := time.FixedZone("", 3*3600)
		now := time.Now() // with a monotonic reading
		e := monitor.Event{Time: now, Account: "z", Type: monitor.EventState, State: monitor.OK, Until: t0.In(zone)}
		if err := s.Append(ctx, []monitor.Event{e}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Events(ctx, "z", time.Time{}, 0)
		if err != nil || len(got) != 1 {
			t.Fatal(got, err)
		}
		if !got[0].Time.Equal(now) || !got[0].Until.Equal(e.Until) {
			t.Errorf("times changed: %v %v", got[0].Time, got[0].Until)
		}
		if _, off := got[0].Until.Zone(); off != 3*3600 {
			t.Errorf("offset %d, want %d", off, 3*3600)
		}
	})
}

func TestAppendRejectsUnencodable(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng engine) {
		ctx := context.Background()
		s := eng.open(t)
		good := allEventTypes()[0]
		bad := []monitor.Event{
			{Time: t0, Type: 0},
			{Time: t0, Type: monitor.EventState, State: monitor.State(200)},
			{Time: t0, Type: monitor.EventSignal, Signal: signal.Signal{Kind: signal.Kind(200)}},
			{Time: t0, Type: monitor.EventState, Risk: math.NaN()},
			{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Type: monitor.EventState},
		}
		for i, b := range bad {
			if err := s.Append(ctx, []monitor.Event{good, b}); err == nil {
				t.Errorf("bad event %d accepted", i)
			}
		}
		if n := count(t, s, ""); n != 0 {
			t.Errorf("%d rows written by failed appends, want 0", n)
		}
	})
}

func TestEventsSinceLimitOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng engine) {
		ctx := context.Background()
		s := eng.open(t)
		// Appended out of order, and two events at the same instant.
		var evs []monitor.Event
		for _, sec := range []int{5, 1, 3, 3, 2, 4, 0} {
			evs = append(evs, monitor.Event{
				Time: t0.Add(time.Duration(sec) * time.Second), Account: "a", Type: monitor.EventState,
				State: monitor.OK, Reason: fmt.Sprint(len(evs)),
			})
		}
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		got, err := s.Events(ctx, "a", t0.Add(2*time.Second), 3)
		if err != nil {
			t.Fatal(err)
		}
		var reasons []string
		for _, e := range got {
			reasons = append(reasons, e.Reason)
		}
		// Seconds 2, 3, 3 (ties in insertion order: indexes 2 then 3).
		if want := []string{"4", "2", "3"}; !reflect.DeepEqual(reasons, want) {
			t.Errorf("since 2s, limit 3: %v, want %v", reasons, want)
		}
		if got, _ := s.Events(ctx, "a", t0.Add(6*time.Second), 0); len(got) != 0 {
			t.Errorf("since after the last event: %d events", len(got))
		}
		if got, _ := s.Events(ctx, "nobody", time.Time{}, 0); len(got) != 0 {
			t.Errorf("unknown account: %d events", len(got))
		}
		if limit(0) != DefaultLimit || limit(-1) != DefaultLimit || limit(MaxLimit+1) != MaxLimit || limit(7) != 7 {
			t.Error("limit bounds")
		}
	})
}

func TestDefaultLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng engine) {
		ctx := context.Background()
		s := eng.open(t)
		evs := make([]monitor.Event, DefaultLimit+10)
		for i := range evs {
			evs[i] = monitor.Event{Time: t0.Add(time.Duration(i)), Account: "a", Type: monitor.EventState}
		}
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		got, err := s.Events(ctx, "a", time.Time{}, 0)
		if err != nil || len(got) != DefaultLimit || !got[0].Time.Equal(t0) {
			t.Fatalf("%d events, %v", len(got), err)
		}
	})
}

func snapshot(account string, at time.Time, st monitor.State, risk float64) monitor.Snapshot {
	sig := allEventTypes()[1]
	return monitor.Snapshot{
		Account: account, State: st, Since: at.Add(-time.Hour), Until: at.Add(time.Hour),
		Reason: "PEER_FLOOD on messages.sendMessage", Risk: risk,
		FloodWaits: []monitor.FloodWait{{
			Method: "messages.sendMessage", Type: "FLOOD_WAIT", Wait: 30 * time.Second,
			Since: at.Add(-10 * time.Second), Until: at.Add(20 * time.Second),
		}},
		Limit:      monitor.Limit{Active: true, Since: at.Add(-time.Hour), Until: at.Add(time.Hour), UntilKnown: true, Reason: "SpamBot"},
		Freeze:     monitor.Freeze{Active: true, Since: at, DeletionDate: at.Add(30 * 24 * time.Hour), AppealURL: "https://t.me/spambot"},
		LastSignal: &sig,
		SpamBot:    &monitor.SpamBotStatus{State: spambot.LimitedTemporary, Until: at.Add(time.Hour), At: at, Reason: "dated"},
		At:         at,
	}
}

func TestSnapshotsUpsertLoad(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng engine) {
		ctx := context.Background()
		s := eng.open(t)
		a1 := snapshot("alice", t0, monitor.Limited, 55.25)
		b1 := snapshot("bob", t0, monitor.OK, 0)
		b1.FloodWaits = []monitor.FloodWait{}
		b1.LastSignal, b1.SpamBot = nil, nil
		b1.Limit, b1.Freeze = monitor.Limit{}, monitor.Freeze{}
		if err := s.SaveSnapshots(ctx, []monitor.Snapshot{a1, b1}); err != nil {
			t.Fatal(err)
		}
		a2 := snapshot("alice", t0.Add(time.Minute), monitor.Throttled, 20)
		stale := snapshot("bob", t0.Add(-time.Minute), monitor.Banned, 100)
		if err := s.SaveSnapshots(ctx, []monitor.Snapshot{a2, stale}); err != nil {
			t.Fatal(err)
		}
		s = eng.reopen(t, s)
		got, err := s.LoadSnapshots(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []monitor.Snapshot{a2, b1}; !reflect.DeepEqual(got, want) {
			t.Errorf("snapshots:\n got %+v\nwant %+v", got, want)
		}
	})
}

func TestPrune(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng engine) {
		ctx := context.Background()
		s := eng.open(t)
		defer func(old int) { pruneChunk = old }(pruneChunk)
		pruneChunk = 100
		n := pruneChunk*2 + 500 // several chunks
		evs := make([]monitor.Event, n)
		for i := range evs {
			evs[i] = monitor.Event{Time: t0.Add(time.Duration(i) * time.Second), Account: "a", Type: monitor.EventState}
		}
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		cut := n - 100
		got, err := s.Prune(ctx, t0.Add(time.Duration(cut)*time.Second))
		if err != nil || got != int64(cut) {
			t.Fatalf("Prune = %d, %v; want %d", got, err, cut)
		}
		if left := count(t, s, ""); left != 100 {
			t.Errorf("%d events left, want 100", left)
		}
		// Retention: everything older than 50s before the last event.
		last := t0.Add(time.Duration(n-1) * time.Second)
		got, err = s.PruneOlderThan(ctx, 50*time.Second, last)
		if err != nil || got != 49 {
			t.Errorf("PruneOlderThan = %d, %v; want 49", got, err)
		}
		// Default retention keeps everything from the last 90 days.
		if got, err := s.PruneOlderThan(ctx, 0, last.Add(DefaultRetention-time.Hour)); err != nil || got != 0 {
			t.Errorf("default retention pruned %d, %v", got, err)
		}
	})
}

func TestWriterConcurrentRecord(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng engine) {
		ctx := context.Background()
		s := eng.open(t)
		reg := prometheus.NewRegistry()
		w := NewWriter(s, WriterOptions{Registerer: reg})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		runDone := make(chan error, 1)
		go func() { runDone <- w.Run(ctx) }()
		const goroutines, per = 8, 5000
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range per {
					w.Record(monitor.Event{
						Time: t0.Add(time.Duration(i) * time.Millisecond), Account: fmt.Sprintf("acc%d", g),
						Type: monitor.EventSignal, Method: "m", Signal: signal.Signal{Kind: signal.FloodWait, Wait: time.Second},
						State: monitor.Throttled, Reason: strconv.Itoa(i),
					})
				}
			})
		}
		wg.Wait()
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-runDone; err != nil {
			t.Errorf("Run after Close = %v", err)
		}
		if n := count(t, s, ""); n != goroutines*per {
			t.Errorf("%d rows, want %d", n, goroutines*per)
		}
		// Each account's events are stored in the order they were recorded.
		last := map[string]int64{}
		for _, r := range queryPairs(t, s, "SELECT account, time_ns FROM events ORDER BY id") {
			if prev, ok := last[r.account]; ok && r.ns < prev {
				t.Fatalf("%s: events stored out of order", r.account)
			}
			last[r.account] = r.ns
		}
		if got := testutil.ToFloat64(w.m.written); got != goroutines*per {
			t.Errorf("written metric %v", got)
		}
		if got := testutil.ToFloat64(w.m.dropped); got != 0 {
			t.Errorf("dropped metric %v", got)
		}
		if n, err := testutil.GatherAndCount(reg); err != nil || n != len(Metrics()) {
			t.Errorf("%d metrics registered (%v), want %d", n, err, len(Metrics()))
		}
	})
}

func TestWriterCommitVisible(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng engine) {
		ctx := context.Background()
		s := eng.open(t)
		// A long MaxDelay: only Commit's urgency can make the writes prompt.
		w := NewWriter(s, WriterOptions{MaxDelay: time.Hour})
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go w.Run(runCtx)
		w.Record(monitor.Event{Time: t0, Account: "a", Type: monitor.EventState, Reason: "recorded"})
		for i := range 50 {
			e := monitor.Event{Time: t0.Add(time.Duration(i+1) * time.Second), Account: "a", Type: monitor.EventSignal,
				Signal: signal.Signal{Kind: signal.PeerFlood}, Reason: strconv.Itoa(i)}
			start := time.Now()
			if err := w.Commit(ctx, []monitor.Event{e}); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("Commit took %v", d)
			}
			got, err := s.Events(ctx, "a", e.Time, 0)
			if err != nil || len(got) != 1 || got[0].Reason != e.Reason {
				t.Fatalf("after Commit %d: %v, %v", i, got, err)
			}
		}
		// The recorded event went out with the first Commit's batch.
		if n := count(t, s, "WHERE account = 'a'"); n != 51 {
			t.Errorf("%d rows, want 51", n)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx, []monitor.Event{{Time: t0, Account: "a", Type: monitor.EventState}}); !errors.Is(err, ErrClosed) {
			t.Errorf("Commit after Close = %v", err)
		}
		if err := w.Commit(ctx, []monitor.Event{{Time: t0, Account: "a"}}); err == nil {
			t.Error("Commit of an invalid event succeeded")
		}
	})
}

func TestWriterBufferFullDrops(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "h.db"))
	reg := prometheus.NewRegistry()
	w := NewWriter(s, WriterOptions{Buffer: 10, Registerer: reg}) // Run not started: nothing drains
	for i := range 15 {
		w.Record(monitor.Event{Time: t0, Account: "a", Type: monitor.EventState, Reason: strconv.Itoa(i)})
	}
	w.Record(monitor.Event{Time: t0, Account: "a"}) // invalid type: dropped too
	if got := testutil.ToFloat64(w.m.dropped); got != 6 {
		t.Errorf("dropped = %v, want 6", got)
	}
	// Commit waits for room instead of dropping.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Commit(ctx, []monitor.Event{{Time: t0, Account: "a", Type: monitor.EventState}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Commit with a full buffer = %v, want deadline exceeded", err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Record(monitor.Event{Time: t0, Account: "a", Type: monitor.EventState}) // after Close
	if n := count(t, s, ""); n != 10 {
		t.Errorf("%d rows, want the 10 buffered", n)
	}
	if got := testutil.ToFloat64(w.m.dropped); got != 7 {
		t.Errorf("dropped = %v, want 7", got)
	}
}

// failing is a Store whose Append fails.
type failing struct{ Store }

func (failing) Append(context.Context, []monitor.Event) error { return errors.New("disk on fire") }

func TestWriterWriteError(t *testing.T) {
	ctx := context.Background()
	w := NewWriter(failing{}, WriterOptions{})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.Run(runCtx)
	w.Record(monitor.Event{Time: t0, Account: "a", Type: monitor.EventState})
	if err := w.Commit(ctx, []monitor.Event{{Time: t0, Account: "a", Type: monitor.EventState}}); err == nil {
		t.Fatal("Commit acknowledged a failed write")
	}
	w.Close(ctx)
	if got := testutil.ToFloat64(w.m.errors); got < 1 {
		t.Errorf("write errors = %v", got)
	}
	if got := testutil.ToFloat64(w.m.dropped); got != 1 {
		t.Errorf("dropped = %v, want the recorded event", got)
	}
}

// TestWriterRunFlushesOnCancel checks that ending Run's context writes what
// is queued, even with a MaxDelay that has not passed.
func TestWriterRunFlushesOnCancel(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "h.db"))
	w := NewWriter(s, WriterOptions{MaxDelay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for range 10 {
		w.Record(monitor.Event{Time: t0, Account: "a", Type: monitor.EventState})
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	if n := count(t, s, ""); n != 10 {
		t.Errorf("%d rows, want 10", n)
	}
}

// appendNotify is a store that says when a batch was appended.
type appendNotify struct {
	Store
	appended chan int
}

func (a *appendNotify) Append(ctx context.Context, evs []monitor.Event) error {
	err := a.Store.Append(ctx, evs)
	a.appended <- len(evs)
	return err
}

// TestWriterMaxDelay checks that recorded events are written without a
// Commit or Close once MaxDelay passes, and not before.
func TestWriterMaxDelay(t *testing.T) {
	s := &appendNotify{Store: open(t, filepath.Join(t.TempDir(), "h.db")), appended: make(chan int, 1)}
	clk := vclock.New(t0)
	w := NewWriter(s, WriterOptions{MaxDelay: time.Second, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	w.Record(monitor.Event{Time: t0, Account: "a", Type: monitor.EventState})
	clk.BlockUntil(1) // the batch timer is armed
	clk.Advance(time.Second - time.Nanosecond)
	select {
	case n := <-s.appended:
		t.Fatalf("%d events written before MaxDelay", n)
	default:
	}
	clk.Advance(time.Nanosecond)
	if n := <-s.appended; n != 1 {
		t.Fatalf("wrote a batch of %d, want the 1 recorded", n)
	}
	if got := count(t, s.Store, ""); got != 1 {
		t.Fatalf("%d events stored, want 1", got)
	}
	w.Close(context.Background())
}

// TestWriterMetricsFromStoreOptions checks that a Writer registers on the
// store's Registerer when it has none of its own.
func TestWriterMetricsFromStoreOptions(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "h.db"), Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := NewWriter(s, WriterOptions{})
	w2 := NewWriter(s, WriterOptions{}) // same registry: shares the series
	w.Close(context.Background())
	w2.Close(context.Background())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, d := range Metrics() {
		if !names[d.Name] {
			t.Errorf("%s not registered", d.Name)
		}
	}
}

// The crash test: a child process commits events through a Writer and
// prints each acknowledged sequence number; the parent SIGKILLs it and
// checks that every acknowledged event is in the database.

const (
	crashEnv     = "STORE_CRASH_CHILD"
	crashAcks    = 2000
	crashWorkers = 4
)

// TestCrashChild is the child; it does nothing unless started by
// TestCrashNoAcknowledgedEventLost.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only run as the crash test's child process")
	}
	s, err := OpenSQLite(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := NewWriter(s, WriterOptions{})
	go w.Run(context.Background())
	var (
		seq atomic.Int64
		mu  sync.Mutex
	)
	var wg sync.WaitGroup
	for range crashWorkers {
		wg.Go(func() {
			for {
				n := seq.Add(1)
				// Unacknowledged background traffic shares the batches.
				w.Record(monitor.Event{Time: time.Now(), Account: "noise", Type: monitor.EventState})
				e := monitor.Event{
					Time: time.Now(), Account: "crash", Type: monitor.EventSignal, Method: strconv.FormatInt(n, 10),
					Signal: signal.Signal{Kind: signal.PeerFlood, Code: 400, Type: "PEER_FLOOD"},
					State:  monitor.Limited,
				}
				if err := w.Commit(context.Background(), []monitor.Event{e}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintln(os.Stdout, n) // os.Stdout is unbuffered: the line leaves now
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestCrashNoAcknowledgedEventLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int64]bool{}
	sc := bufio.NewScanner(out)
	for len(acked) < crashAcks && sc.Scan() {
		n, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			continue // the test framework's own output
		}
		acked[n] = true
	}
	// Kill mid-stream: the child is still committing.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Acknowledgements already in the pipe count too.
	for sc.Scan() {
		if n, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
			acked[n] = true
		}
	}
	werr := cmd.Wait()
	if len(acked) < crashAcks {
		t.Fatalf("child acknowledged only %d events (%v)", len(acked), werr)
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("child did not die of the signal: %v", werr)
	}

	s := open(t, path)
	ctx := context.Background()
	stored := map[int64]bool{}
	for since := (time.Time{}); ; {
		evs, err := s.Events(ctx, "crash", since, MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			n, _ := strconv.ParseInt(e.Method, 10, 64)
			stored[n] = true
		}
		if len(evs) < MaxLimit {
			break
		}
		since = evs[len(evs)-1].Time // re-reads events at that instant; the set ignores duplicates
	}
	lost := 0
	for n := range acked {
		if !stored[n] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged events lost", lost, len(acked))
	}
	t.Logf("child SIGKILLed after %d acks; %d committed events found, none lost", len(acked), len(stored))
}

// TestSQLitePoolReadsDuringWrite is a smoke test that readers are not
// blocked by an open write transaction (WAL).
func TestSQLitePoolReadsDuringWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	s := open(t, path)
	if err := s.Append(ctx, allEventTypes()); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin() // another process holding the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if got, err := s.Events(rctx, "alice", time.Time{}, 0); err != nil || len(got) != len(allEventTypes()) {
		t.Errorf("read during a write transaction: %d, %v", len(got), err)
	}
}

// A real full database, not a fake error: with SQLite's max_page_count
// at the file's size, commits fail with SQLITE_FULL exactly as on a full
// file system. The Writer fails the Commit (nothing is acknowledged) and
// reports Failing, which the daemon's /readyz follows; SaveSnapshots
// fails the same way; once there is room again, the next commit succeeds
// and Failing clears.
func TestWriterFailingWhileTheDatabaseIsFull(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "h.db"))
	w := NewWriter(s, WriterOptions{})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.Run(runCtx)
	// max_page_count is a setting of the connection: the write pool has
	// exactly one, which every commit uses.
	var pages int
	if err := s.db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	setMax := func(n int) {
		t.Helper()
		if _, err := s.db.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", n)); err != nil {
			t.Fatal(err)
		}
	}
	setMax(pages)
	batch := make([]monitor.Event, 200)
	for i := range batch {
		batch[i] = benchEvent(i)
	}
	err := w.Commit(ctx, batch)
	if err == nil || !strings.Contains(err.Error(), "database or disk is full") {
		t.Fatalf("Commit on a full database: %v, want SQLite's disk-full error", err)
	}
	if !w.Failing() {
		t.Fatal("Writer not Failing after a failed commit")
	}
	snaps := make([]monitor.Snapshot, 300)
	for i := range snaps {
		snaps[i] = snapshot(fmt.Sprintf("acc%03d", i), t0, monitor.OK, 0)
	}
	if err := s.SaveSnapshots(ctx, snaps); err == nil || !strings.Contains(err.Error(), "database or disk is full") {
		t.Fatalf("SaveSnapshots on a full database: %v, want SQLite's disk-full error", err)
	}
	if n := count(t, s, ""); n != 0 {
		t.Fatalf("%d events stored by the failed commit", n)
	}
	setMax(1 << 30)
	if err := w.Commit(ctx, batch); err != nil {
		t.Fatalf("Commit once there is room: %v", err)
	}
	if w.Failing() {
		t.Fatal("Writer still Failing after a commit succeeded")
	}
}
