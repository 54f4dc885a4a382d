package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo)

	"github.com/tgsafety/tgsafety/monitor"
)

// Options configures OpenSQLite and OpenPostgres.
type Options struct {
	// Logger receives the store's log lines (opening, migrations); nil
	// means none.
	Logger *zap.Logger
	// Registerer receives the store's metrics (Metrics), so that the
	// daemon configures the registry in one place: a Writer writing to
	// this store whose WriterOptions.Registerer is nil registers there.
	// Nil means the metrics are not registered.
	Registerer prometheus.Registerer
	// Password is PostgreSQL's password when the DSN has none (the
	// daemon reads it from a secret source); unused by SQLite.
	Password string
}

// SQLite is the Store of one daemon: one SQLite database file in WAL mode.
// It is safe for concurrent use; writes are serialised in the process, and
// reads run concurrently with them.
type SQLite struct {
	// db is the write pool: one connection, so that its page cache stays
	// warm between transactions (a connection's cache is discarded when
	// another connection has written) and its statements stay prepared.
	db *sql.DB
	// rdb is the read pool: reads in WAL mode see the last commit and
	// never wait for the writer.
	rdb  *sql.DB
	path string
	log  *zap.Logger
	reg  prometheus.Registerer

	// wmu serialises write transactions within the process, so that they
	// queue in Go instead of polling SQLite's lock (busy_timeout is for
	// other processes).
	wmu          sync.Mutex
	insertEvent  *sql.Stmt
	upsertSnap   *sql.Stmt
	closeOnce    sync.Once
	closeErr     error
	schemaLoaded int
}

var _ Store = (*SQLite)(nil)

// busyTimeout is how long a statement waits for another process's lock
// before failing with SQLITE_BUSY; commonParams spells it in milliseconds.
const busyTimeout = 5 * time.Second

// Connection settings. Every connection: busy_timeout (the driver applies
// it first), foreign keys, WAL, synchronous=FULL. The write connection
// also: write transactions take the write lock at BEGIN (_txlock=immediate)
// so that two processes never deadlock upgrading a read lock; a 16 MiB page
// cache (the default 2 MiB is evicted by one 1000-event batch, and every
// batch then re-reads its index pages); and a checkpoint every 4000 WAL
// pages instead of 1000, so that index pages changed by many batches are
// copied into the database once, with the WAL file truncated back to 64 MiB
// after a checkpoint. Together with the single write connection these
// measured about 30% more events/s in BenchmarkAppend/batch=1000. Read
// connections are query_only, so a bug cannot write through them.
const (
	commonParams = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	writeParams  = "&_txlock=immediate&_pragma=cache_size(-16384)&_pragma=wal_autocheckpoint(4000)&_pragma=journal_size_limit(67108864)"
	readParams   = "&_pragma=query_only(1)"
	readConns    = 4
)

// pruneChunk is how many events one Prune transaction deletes, so that
// pruning a large backlog never holds the write lock for long. A variable
// so that tests can exercise several chunks cheaply.
var pruneChunk = 10000

// migrations are the schema, one entry per version (version = index + 1).
// Entries are never edited once released: a change is a new entry.
var migrations = []string{
	// 1: events as JSON bodies with the columns queries select on, and
	// the latest snapshot per account.
	`CREATE TABLE events (
		id      INTEGER PRIMARY KEY,
		account TEXT    NOT NULL,
		time_ns INTEGER NOT NULL,
		type    TEXT    NOT NULL,
		body    TEXT    NOT NULL
	);
	CREATE INDEX events_account_time ON events (account, time_ns);
	CREATE INDEX events_time ON events (time_ns);
	CREATE TABLE snapshots (
		account  TEXT    PRIMARY KEY,
		saved_ns INTEGER NOT NULL,
		body     TEXT    NOT NULL
	);`,
	// 2: each event's per-account sequence number (monitor.Event.Seq), so
	// that a restart replays exactly the events after a snapshot, in the
	// order they happened, however they are dated. NULL in rows written
	// before it. events_account_id serves Latest (the ring restored at
	// start-up) without sorting the account's whole history.
	`ALTER TABLE events ADD COLUMN seq INTEGER;
	CREATE INDEX events_account_seq ON events (account, seq);
	CREATE INDEX events_account_id ON events (account, id);`,
}

// OpenSQLite opens (creating if needed) the database at path and brings
// its schema up to date. The file is created with mode 0600 and its -wal
// and -shm files get the database file's permissions, whatever the umask.
// It fails with a *SchemaVersionError when the database was written by a
// newer build.
func OpenSQLite(path string, opts Options) (*SQLite, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if strings.ContainsRune(path, '?') {
		// The driver would read what follows as connection parameters.
		return nil, fmt.Errorf("store: database path %q must not contain '?'", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// Create the file ourselves: SQLite would create it with 0644 minus
	// the umask. It creates the -wal and -shm files with the database
	// file's mode, and fixPermissions checks them.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := sql.Open("sqlite", abs+"?"+commonParams+writeParams)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	rdb, err := sql.Open("sqlite", abs+"?"+commonParams+readParams)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	rdb.SetMaxOpenConns(readConns)
	rdb.SetMaxIdleConns(readConns)
	s := &SQLite{db: db, rdb: rdb, path: abs, log: log, reg: opts.Registerer}
	if err := s.init(context.Background()); err != nil {
		db.Close()
		rdb.Close()
		return nil, err
	}
	log.Info("Store opened", zap.String("path", abs), zap.Int("schema_version", s.schemaLoaded))
	return s, nil
}

func (s *SQLite) init(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("store: open %s: %w", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		// Without WAL, readers block the writer and durability differs
		// from what is documented; the file system probably lacks
		// shared memory (a network file system).
		return fmt.Errorf("store: %s: journal mode is %q, not WAL (is it on a network file system?)", s.path, mode)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.fixPermissions(); err != nil {
		return err
	}
	var err error
	if s.insertEvent, err = s.db.PrepareContext(ctx,
		"INSERT INTO events (account, time_ns, type, body, seq) VALUES (?, ?, ?, ?, ?)"); err != nil {
		return fmt.Errorf("store: prepare: %w", err)
	}
	if s.upsertSnap, err = s.db.PrepareContext(ctx,
		`INSERT INTO snapshots (account, saved_ns, body) VALUES (?, ?, ?)
		ON CONFLICT (account) DO UPDATE SET saved_ns = excluded.saved_ns, body = excluded.body
		WHERE excluded.saved_ns >= snapshots.saved_ns`); err != nil {
		return fmt.Errorf("store: prepare: %w", err)
	}
	return nil
}

// migrate applies the migrations the database lacks, each in its own
// transaction with its schema_migrations row, so that a crash leaves the
// schema at a known version.
func (s *SQLite) migrate(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_ns INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("store: %s: create schema_migrations: %w", s.path, err)
	}
	for {
		done, version, err := s.migrateOne(ctx)
		if err != nil {
			return err
		}
		if done {
			s.schemaLoaded = version
			return nil
		}
		s.log.Info("Store schema migrated", zap.String("path", s.path), zap.Int("version", version))
	}
}

// migrateOne applies the next migration, if any; it reads the version
// inside the write transaction so that two processes opening the same
// database at once cannot apply a migration twice.
func (s *SQLite) migrateOne(ctx context.Context) (done bool, version int, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, 0, fmt.Errorf("store: %s: migrate: %w", s.path, err)
	}
	defer tx.Rollback()
	var cur int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&cur); err != nil {
		return false, 0, fmt.Errorf("store: %s: read schema version: %w", s.path, err)
	}
	if cur > len(migrations) {
		return false, 0, &SchemaVersionError{Path: s.path, Found: cur, Known: len(migrations)}
	}
	if cur == len(migrations) {
		return true, cur, nil
	}
	next := cur + 1
	if _, err := tx.ExecContext(ctx, migrations[cur]); err != nil {
		return false, 0, fmt.Errorf("store: %s: migration %d: %w", s.path, next, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_ns) VALUES (?, ?)",
		next, time.Now().UnixNano()); err != nil {
		return false, 0, fmt.Errorf("store: %s: migration %d: %w", s.path, next, err)
	}
	if err := tx.Commit(); err != nil {
		return false, 0, fmt.Errorf("store: %s: migration %d: %w", s.path, next, err)
	}
	return false, next, nil
}

// fixPermissions gives the -wal and -shm files the database file's
// permissions: SQLite does so itself when it creates them, but files left
// by an older run or another tool may be wider.
func (s *SQLite) fixPermissions() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	perm := fi.Mode().Perm()
	for _, suffix := range []string{"-wal", "-shm"} {
		p := s.path + suffix
		wfi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if wfi.Mode().Perm() != perm {
			if err := os.Chmod(p, perm); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
	}
	return nil
}

// Path returns the absolute path of the database file, for logs and for
// backups.
func (s *SQLite) Path() string { return s.path }

// SchemaVersion returns the schema version the database is at, which is
// the newest this build knows.
func (s *SQLite) SchemaVersion() int { return s.schemaLoaded }

// metricsRegisterer lets a Writer find the registerer the store was opened
// with.
func (s *SQLite) metricsRegisterer() prometheus.Registerer { return s.reg }

// Append implements Store: all events in one transaction, with one
// prepared statement.
func (s *SQLite) Append(ctx context.Context, events []monitor.Event) error {
	if len(events) == 0 {
		return nil
	}
	bodies := make([]string, len(events))
	for i, e := range events {
		b, err := encodeEvent(e)
		if err != nil {
			return fmt.Errorf("store: event %d (%s, %s): %w", i, e.Account, e.Type, err)
		}
		bodies[i] = string(b)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: append: %w", err)
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, s.insertEvent)
	for i, e := range events {
		var seq any // NULL for an event without one (not from an Account)
		if e.Seq != 0 {
			seq = int64(e.Seq)
		}
		if _, err := stmt.ExecContext(ctx, e.Account, unixNano(e.Time), e.Type.String(), bodies[i], seq); err != nil {
			return fmt.Errorf("store: append: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: append: commit: %w", err)
	}
	return nil
}

// Events implements Store.
func (s *SQLite) Events(ctx context.Context, account string, since time.Time, n int) ([]monitor.Event, error) {
	n = limit(n)
	if account == "" {
		return s.query(ctx, "events", n,
			"SELECT id, body FROM events WHERE time_ns >= ? ORDER BY time_ns, id LIMIT ?",
			unixNano(since), n)
	}
	return s.query(ctx, "events", n,
		"SELECT id, body FROM events WHERE account = ? AND time_ns >= ? ORDER BY time_ns, id LIMIT ?",
		account, unixNano(since), n)
}

// Latest implements Store: the newest rows by id, returned oldest first.
func (s *SQLite) Latest(ctx context.Context, account string, n int) ([]monitor.Event, error) {
	n = limit(n)
	evs, err := s.query(ctx, "latest events", n,
		"SELECT id, body FROM events WHERE account = ? ORDER BY id DESC LIMIT ?", account, n)
	slices.Reverse(evs)
	return evs, err
}

// After implements Store.
func (s *SQLite) After(ctx context.Context, account string, seq uint64, n int) ([]monitor.Event, error) {
	n = limit(n)
	return s.query(ctx, "events after a sequence number", n,
		"SELECT id, body FROM events WHERE account = ? AND seq > ? ORDER BY seq LIMIT ?", account, int64(seq), n)
}

// query runs a select of (id, body) rows and decodes the bodies.
func (s *SQLite) query(ctx context.Context, what string, n int, q string, args ...any) ([]monitor.Event, error) {
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	return scanEvents(rows, what, n)
}

// SaveSnapshots implements Store, in one transaction.
func (s *SQLite) SaveSnapshots(ctx context.Context, snaps []monitor.Snapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	bodies := make([]string, len(snaps))
	for i, sn := range snaps {
		b, err := json.Marshal(sn)
		if err != nil {
			return fmt.Errorf("store: snapshot of %s: %w", sn.Account, err)
		}
		bodies[i] = string(b)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: save snapshots: %w", err)
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, s.upsertSnap)
	for i, sn := range snaps {
		if _, err := stmt.ExecContext(ctx, sn.Account, unixNano(sn.At), bodies[i]); err != nil {
			return fmt.Errorf("store: save snapshots: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: save snapshots: commit: %w", err)
	}
	return nil
}

// LoadSnapshots implements Store.
func (s *SQLite) LoadSnapshots(ctx context.Context) ([]monitor.Snapshot, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT account, body FROM snapshots ORDER BY account")
	if err != nil {
		return nil, fmt.Errorf("store: load snapshots: %w", err)
	}
	defer rows.Close()
	return scanSnapshots(rows)
}

// Prune implements Store. It deletes in chunks of pruneChunk events, each
// its own transaction, so that Append waits at most one chunk; an error or
// the end of ctx stops it with the chunks deleted so far counted.
func (s *SQLite) Prune(ctx context.Context, before time.Time) (int64, error) {
	cutoff := unixNano(before)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := s.pruneChunk(ctx, cutoff)
		total += n
		if err != nil {
			return total, fmt.Errorf("store: prune: %w", err)
		}
		if n < int64(pruneChunk) {
			return total, nil
		}
	}
}

func (s *SQLite) pruneChunk(ctx context.Context, cutoff int64) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	res, err := s.db.ExecContext(ctx,
		"DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time_ns < ? LIMIT ?)", cutoff, pruneChunk)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// PruneOlderThan enforces a retention period: it deletes events older than
// retention before now (DefaultRetention when retention <= 0). now is a
// parameter so that the daemon's clock, not the wall clock, decides.
func (s *SQLite) PruneOlderThan(ctx context.Context, retention time.Duration, now time.Time) (int64, error) {
	return pruneOlderThan(ctx, s.Prune, s.log, retention, now)
}

// Close implements Store. It lets SQLite update its query statistics
// (PRAGMA optimize) and closes the database; the last connection to close
// checkpoints the WAL into the database file. Calling it again returns the
// first result.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), busyTimeout)
		defer cancel()
		if _, err := s.db.ExecContext(ctx, "PRAGMA optimize"); err != nil {
			s.log.Warn("Store optimize failed", zap.Error(err))
		}
		err := errors.Join(s.insertEvent.Close(), s.upsertSnap.Close(), s.rdb.Close(), s.db.Close())
		if err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
	})
	return s.closeErr
}
