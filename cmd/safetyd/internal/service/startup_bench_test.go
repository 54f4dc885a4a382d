package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/store"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

// Start-up benchmark shape: the review's case, 100 accounts whose store
// holds about 12,800 events each, with a snapshot 20 signals before the
// end of each account's history (a crash a few seconds after a snapshot).
const (
	startupAccounts = 100
	startupSignals  = 12800
	startupAfter    = 20
)

// BenchmarkStartup is the time from an open store to a started service
// (Start returned: every account restored, its runner started and /readyz
// ready) for startupAccounts accounts with startupSignals stored signals
// each. The store is built once, through a monitor, so that events carry
// whatever ordering the code under test gives them; each iteration puts
// it back as built (the events and snapshots a start-up and shutdown add
// are deleted) before opening it again. Clients are not connected: Connect
// fails, which stops each runner at once.
func BenchmarkStartup(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "history.db")
	end := buildStartupStore(b, path)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	var lastID int64
	if err := raw.QueryRowContext(ctx, "SELECT MAX(id) FROM events").Scan(&lastID); err != nil {
		b.Fatal(err)
	}
	type snapRow struct {
		account string
		saved   int64
		body    string
	}
	var snaps []snapRow
	rows, err := raw.QueryContext(ctx, "SELECT account, saved_ns, body FROM snapshots")
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var r snapRow
		if err := rows.Scan(&r.account, &r.saved, &r.body); err != nil {
			b.Fatal(err)
		}
		snaps = append(snaps, r)
	}
	if err := rows.Close(); err != nil {
		b.Fatal(err)
	}
	reset := func() {
		if _, err := raw.ExecContext(ctx, "DELETE FROM events WHERE id > ?", lastID); err != nil {
			b.Fatal(err)
		}
		if _, err := raw.ExecContext(ctx, "DELETE FROM snapshots"); err != nil {
			b.Fatal(err)
		}
		for _, r := range snaps {
			if _, err := raw.ExecContext(ctx, "INSERT INTO snapshots (account, saved_ns, body) VALUES (?, ?, ?)", r.account, r.saved, r.body); err != nil {
				b.Fatal(err)
			}
		}
	}
	cfg := config.DefaultConfig()
	cfg.Store.Path = path
	cfg.Guard.Mode = config.GuardOff
	for i := range startupAccounts {
		cfg.Accounts = append(cfg.Accounts, config.AccountConfig{Name: fmt.Sprintf("acct-%03d", i), DC: config.DCTest})
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		reset()
		st, err := store.OpenSQLite(path, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		svc, err := New(Options{
			Config: cfg, Clock: vclock.New(end), Registry: prometheus.NewRegistry(), Store: st,
			Connect: func(config.AccountConfig) (runner.Connection, error) {
				return runner.Connection{}, errors.New("benchmark: not connecting")
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := svc.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		// The signals after the snapshot were replayed: the last one
		// stored is the account's last signal.
		if a, ok := svc.Monitor().Lookup("acct-000"); !ok || a.Snapshot().LastSignal == nil ||
			!a.Snapshot().LastSignal.Time.Equal(end.Add(-time.Minute-time.Second)) {
			b.Fatalf("acct-000 was not restored with its last stored signal")
		}
		if err := svc.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// buildStartupStore fills a store at path: startupSignals rounds one
// second apart in which a monitor observes a flood wait on every account
// (its events are stored as the daemon stores them), with the accounts'
// snapshots taken startupAfter rounds before the last. It returns the instant just after
// the last event, for the service's clock.
func buildStartupStore(b *testing.B, path string) time.Time {
	b.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	clk := vclock.New(start)
	var pending []monitor.Event
	mon, err := monitor.New(monitor.Options{Clock: clk, Sink: monitor.SinkFunc(func(e monitor.Event) { pending = append(pending, e) })})
	if err != nil {
		b.Fatal(err)
	}
	wait := signal.Classify(tgerr.New(420, "FLOOD_WAIT_60"))
	flush := func() {
		if err := st.Append(ctx, pending); err != nil {
			b.Fatal(err)
		}
		pending = pending[:0]
	}
	accts := make([]*monitor.Account, startupAccounts)
	for i := range accts {
		if accts[i], err = mon.Account(fmt.Sprintf("acct-%03d", i)); err != nil {
			b.Fatal(err)
		}
	}
	var snaps []monitor.Snapshot
	t := start
	for j := range startupSignals {
		if j == startupSignals-startupAfter {
			clk.AdvanceTo(t)
			for _, a := range accts {
				snaps = append(snaps, a.Snapshot())
			}
		}
		for _, a := range accts {
			a.ObserveSignal(t, "contacts.resolveUsername", wait)
		}
		if len(pending) >= 5000 {
			flush()
		}
		t = t.Add(time.Second)
	}
	flush()
	if err := st.SaveSnapshots(ctx, snaps); err != nil {
		b.Fatal(err)
	}
	return start.Add(startupSignals*time.Second + time.Minute)
}
