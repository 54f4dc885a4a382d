package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"go.uber.org/zap"
)

// Store is the daemon's history. It is an interface so that the daemon does
// not care where the history lives: SQLite serves one daemon, and a shared
// database can later serve a fleet split across several daemons. All
// methods are safe for concurrent use.
type Store interface {
	// Append commits events durably, all or none: when it returns nil they
	// survive a crash, a SIGKILL and (with SQLite's synchronous=FULL) a
	// power loss. An event that cannot be encoded fails the whole call
	// before anything is written.
	Append(ctx context.Context, events []monitor.Event) error
	// Events returns an account's events with Time >= since, oldest first
	// (ties in insertion order), at most limit of them: limit <= 0 means
	// DefaultLimit, and more than MaxLimit is cut to MaxLimit, so that one
	// request cannot read the whole history into memory. An empty account
	// selects every account's events.
	Events(ctx context.Context, account string, since time.Time, limit int) ([]monitor.Event, error)
	// Latest returns an account's newest events in the order they were
	// stored (oldest first), at most limit (DefaultLimit, MaxLimit as for
	// Events): what a restart puts back into the account's ring.
	Latest(ctx context.Context, account string, limit int) ([]monitor.Event, error)
	// After returns an account's events with Event.Seq greater than seq,
	// in Seq order, at most limit (as for Events): a restart pages
	// through them to replay everything after its snapshot, in the order
	// it happened, however the events are dated. Events stored without a
	// Seq are never returned.
	After(ctx context.Context, account string, seq uint64, limit int) ([]monitor.Event, error)
	// SaveSnapshots upserts the latest snapshot of each account, so that a
	// restart can restore state and risk. A snapshot older (by At) than
	// the one stored for its account is ignored, so that a slow or stale
	// writer cannot roll an account back.
	SaveSnapshots(ctx context.Context, snaps []monitor.Snapshot) error
	// LoadSnapshots returns the stored snapshot of every account, ordered
	// by account name.
	LoadSnapshots(ctx context.Context) ([]monitor.Snapshot, error)
	// Prune deletes events with Time before before and returns how many,
	// to enforce the retention period.
	Prune(ctx context.Context, before time.Time) (int64, error)
	// Close releases the store; the daemon calls it after the Writer's
	// Close so that nothing queued is lost.
	Close() error
}

// Limits of Store.Events: how many events one call returns by default and
// at most, so that an API request cannot read the whole history at once.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// DefaultRetention is how long events are kept when no retention is
// configured: long enough to see an account's history across a 30-day
// limit and its aftermath.
const DefaultRetention = 90 * 24 * time.Hour

// ErrClosed is returned by Writer.Commit after Writer.Close, so that a
// request arriving during shutdown is answered with an error rather than
// acknowledged and lost.
var ErrClosed = errors.New("store: writer closed")

// SchemaVersionError reports a database written by a newer build: its
// schema has migrations this build does not know, so writing to it could
// corrupt data the newer build relies on. It names both versions so the
// operator knows which build to run.
type SchemaVersionError struct {
	Path  string
	Found int // the database's schema version
	Known int // the newest version this build knows
}

// Error names the database and both versions.
func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("store: database %s has schema version %d, newer than version %d known to this build; run a newer tgsafety or restore a backup",
		e.Path, e.Found, e.Known)
}

// limit applies DefaultLimit and MaxLimit.
func limit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// invalidName is what every tgsafety enum's String returns for a value
// outside its table (see monitor/internal/enum); such a value would be
// encoded but could never be decoded.
const invalidName = "invalid"

// checkEvent reports why e cannot be stored so that it reads back exactly,
// without encoding it: the Writer calls it on the RPC path.
func checkEvent(e monitor.Event) error {
	switch {
	case e.Type.String() == invalidName:
		return fmt.Errorf("invalid event type %d", uint8(e.Type))
	case e.From.String() == invalidName:
		return fmt.Errorf("invalid state %d", uint8(e.From))
	case e.State.String() == invalidName:
		return fmt.Errorf("invalid state %d", uint8(e.State))
	case e.Signal.Kind.String() == invalidName:
		return fmt.Errorf("invalid signal kind %d", uint8(e.Signal.Kind))
	case math.IsNaN(e.Risk) || math.IsInf(e.Risk, 0):
		return fmt.Errorf("risk %v is not a finite number", e.Risk)
	}
	if err := checkTime("time", e.Time); err != nil {
		return err
	}
	return checkTime("until", e.Until)
}

func checkTime(what string, t time.Time) error {
	if y := t.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%s %v is outside years 0-9999", what, t)
	}
	return nil
}

// encodeEvent checks and encodes an event as stored.
func encodeEvent(e monitor.Event) ([]byte, error) {
	if err := checkEvent(e); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// Time bounds of UnixNano, outside which it is undefined.
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// unixNano is t.UnixNano clamped to int64, so that the zero time (and any
// time before 1678 or after 2262) sorts and compares correctly in the
// time_ns column instead of wrapping around.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// rowScanner is what both engines' query results offer (database/sql's
// Rows for SQLite, pgx's for PostgreSQL), so that one decoder serves both.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanEvents decodes (id, body) rows into events; what names the query in
// errors.
func scanEvents(rows rowScanner, what string, n int) ([]monitor.Event, error) {
	out := make([]monitor.Event, 0, min(n, 256))
	for rows.Next() {
		var (
			id   int64
			body []byte
		)
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		var e monitor.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, fmt.Errorf("store: %s: row %d: %w", what, id, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// scanSnapshots decodes (account, body) rows into snapshots.
func scanSnapshots(rows rowScanner) ([]monitor.Snapshot, error) {
	var out []monitor.Snapshot
	for rows.Next() {
		var (
			account string
			body    []byte
		)
		if err := rows.Scan(&account, &body); err != nil {
			return nil, fmt.Errorf("store: load snapshots: %w", err)
		}
		var sn monitor.Snapshot
		if err := json.Unmarshal(body, &sn); err != nil {
			return nil, fmt.Errorf("store: load snapshots: %s: %w", account, err)
		}
		out = append(out, sn)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load snapshots: %w", err)
	}
	return out, nil
}

// pruneOlderThan is both engines' PruneOlderThan: retention before now
// (DefaultRetention when retention <= 0), logged when anything went.
func pruneOlderThan(ctx context.Context, prune func(context.Context, time.Time) (int64, error), log *zap.Logger, retention time.Duration, now time.Time) (int64, error) {
	if retention <= 0 {
		retention = DefaultRetention
	}
	n, err := prune(ctx, now.Add(-retention))
	if n > 0 {
		log.Info("Store pruned", zap.Int64("events", n), zap.Duration("retention", retention))
	}
	return n, err
}
