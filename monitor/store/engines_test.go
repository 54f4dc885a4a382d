package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testStore is what the tests use of a store: the interface and retention.
type testStore interface {
	Store
	PruneOlderThan(ctx context.Context, retention time.Duration, now time.Time) (int64, error)
}

// engine opens stores of one kind: open an empty one, reopen the same
// data after closing s.
type engine struct {
	name   string
	open   func(t testing.TB) testStore
	reopen func(t testing.TB, s testStore) testStore
}

// engines are the stores every behaviour test runs on: SQLite, and
// PostgreSQL on a throwaway server (pgtest; skipped where PostgreSQL is not
// installed, unless TGSAFETY_REQUIRE_POSTGRES=1, as in make test).
func engines() []engine {
	return []engine{
		{
			name: "sqlite",
			open: func(t testing.TB) testStore { return open(t, filepath.Join(t.TempDir(), "h.db")) },
			reopen: func(t testing.TB, s testStore) testStore {
				s.Close()
				return open(t, s.(*SQLite).Path())
			},
		},
		{
			name: "postgres",
			open: func(t testing.TB) testStore { return openPG(t, pgtest.NewDatabase(t)) },
			reopen: func(t testing.TB, s testStore) testStore {
				p := s.(*Postgres)
				p.Close()
				return openPG(t, pgDSNs.get(p))
			},
		},
	}
}

func forEachEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) { fn(t, e) })
	}
}

// pgDSNs remembers the DSN of each store openPG opened, for reopening
// (the store itself keeps none: it may hold a password).
var pgDSNs = &dsnBook{m: map[*Postgres]string{}}

type dsnBook struct {
	sync.Mutex
	m map[*Postgres]string
}

func (d *dsnBook) get(p *Postgres) string {
	d.Lock()
	defer d.Unlock()
	return d.m[p]
}

func openPG(t testing.TB, dsn string) *Postgres {
	t.Helper()
	p, err := OpenPostgres(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pgDSNs.Lock()
	pgDSNs.m[p] = dsn
	pgDSNs.Unlock()
	t.Cleanup(func() { p.Close() })
	return p
}

// queryRow runs a query returning one row on either engine's own
// connection (the tests' SQL is the same on both) and scans it.
func queryRow(t testing.TB, s Store, q string, dst ...any) {
	t.Helper()
	var err error
	switch s := s.(type) {
	case *SQLite:
		err = s.db.QueryRow(q).Scan(dst...)
	case *Postgres:
		err = s.pool.QueryRow(context.Background(), q).Scan(dst...)
	default:
		err = fmt.Errorf("queryRow: %T is not an engine", s)
	}
	if err != nil {
		t.Fatal(err)
	}
}

type accountNS struct {
	account string
	ns      int64
}

// queryPairs runs a query returning (text, bigint) rows on either engine.
func queryPairs(t testing.TB, s Store, q string) []accountNS {
	t.Helper()
	var rows rowScanner
	switch s := s.(type) {
	case *SQLite:
		r, err := s.db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rows = r
	case *Postgres:
		r, err := s.pool.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rows = r
	default:
		t.Fatalf("queryPairs: %T is not an engine", s)
	}
	var out []accountNS
	for rows.Next() {
		var r accountNS
		if err := rows.Scan(&r.account, &r.ns); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// Latest and After read what a restart needs on both engines: the newest
// events in arrival order, and the events after a sequence number in Seq
// order however they are dated.
func TestLatestAndAfter(t *testing.T) {
	forEachEngine(t, func(t *testing.T, eng engine) {
		ctx := context.Background()
		s := eng.open(t)
		var evs []monitor.Event
		for i := 1; i <= 30; i++ {
			// Dated backwards: arrival order and Seq disagree with time.
			evs = append(evs, monitor.Event{Time: t0.Add(-time.Duration(i) * time.Minute), Account: "a",
				Type: monitor.EventState, State: monitor.OK, Reason: fmt.Sprint(i), Seq: uint64(i)})
		}
		evs = append(evs, monitor.Event{Time: t0, Account: "b", Type: monitor.EventState, Seq: 1})
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		latest, err := s.Latest(ctx, "a", 5)
		if err != nil || len(latest) != 5 || latest[0].Reason != "26" || latest[4].Reason != "30" {
			t.Fatalf("Latest(5) = %v, %v; want reasons 26..30", reasons(latest), err)
		}
		after, err := s.After(ctx, "a", 27, 0)
		if err != nil || len(after) != 3 || after[0].Seq != 28 || after[2].Seq != 30 {
			t.Fatalf("After(27) = %v, %v; want 28..30", reasons(after), err)
		}
		if page, _ := s.After(ctx, "a", 0, 10); len(page) != 10 || page[9].Seq != 10 {
			t.Errorf("After(0, limit 10) = %v", reasons(page))
		}
	})
}

func reasons(evs []monitor.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Reason
	}
	return out
}
