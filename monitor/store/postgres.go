package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/monitor"
)

// Postgres is the Store of a fleet of daemons (replicas) sharing one
// PostgreSQL database: the same events, snapshots, retention and
// guarantees as SQLite (Append and SaveSnapshots return only after their
// transaction committed, with PostgreSQL's default synchronous_commit=on,
// so that an acknowledged signal survives the loss of any replica). It is
// safe for concurrent use, also by several processes.
type Postgres struct {
	pool *pgxpool.Pool
	// name says which database this is in errors and logs: host and
	// database, never the user's password.
	name string
	log  *zap.Logger
	reg  prometheus.Registerer

	closeOnce    sync.Once
	schemaLoaded int
	// fence is the leadership epoch writes must match (0: not fenced).
	fence atomic.Int64
}

var _ Store = (*Postgres)(nil)

// pgMigrations are the PostgreSQL schema, one entry per version, the same
// tables and meaning as SQLite's migrations (its versions count apart:
// the two engines never share a database). Entries are never edited once
// released: a change is a new entry.
var pgMigrations = []string{
	// 1: events as JSON bodies with the columns queries select on (seq is
	// monitor.Event.Seq, NULL for events not from an Account), and the
	// latest snapshot per account.
	`CREATE TABLE events (
		id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		account TEXT   NOT NULL,
		time_ns BIGINT NOT NULL,
		type    TEXT   NOT NULL,
		seq     BIGINT,
		body    TEXT   NOT NULL
	);
	CREATE INDEX events_account_time ON events (account, time_ns, id);
	CREATE INDEX events_time ON events (time_ns);
	CREATE INDEX events_account_seq ON events (account, seq);
	CREATE INDEX events_account_id ON events (account, id);
	CREATE TABLE snapshots (
		account  TEXT   PRIMARY KEY,
		saved_ns BIGINT NOT NULL,
		body     TEXT   NOT NULL
	);`,
	// 2: the fleet's leadership term (leader.go): one row, its epoch only
	// grows.
	`CREATE TABLE leadership (
		id       INTEGER PRIMARY KEY CHECK (id = 1),
		epoch    BIGINT  NOT NULL,
		holder   TEXT    NOT NULL,
		since_ns BIGINT  NOT NULL
	);`,
}

// pgMigrationLock is the advisory lock key migrations hold, so that
// replicas starting together apply each migration once.
const pgMigrationLock = 0x7467_7361_6665 // "tgsafe"

// pgCopyFrom is the batch size from which Append uses COPY instead of one
// INSERT per event.
const pgCopyFrom = 16

// OpenPostgres connects to the database dsn names (a URL,
// postgres://user@host/db?sslmode=..., or key=value pairs) and brings its
// schema up to date. The password is best not in dsn at all (a
// passfile, PGPASSWORD or a secret the daemon's configuration reads); if
// it is, no error or log line shows it. It fails with a
// *SchemaVersionError when the database was written by a newer build.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (*Postgres, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", redactDSN(err, dsn, opts.Password))
	}
	if opts.Password != "" {
		cfg.ConnConfig.Password = opts.Password
	}
	name := pgName(cfg.ConnConfig.Config)
	p := &Postgres{name: name, log: log, reg: opts.Registerer}
	p.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", name, redactDSN(err, dsn, opts.Password))
	}
	if err := p.pool.Ping(ctx); err != nil {
		p.pool.Close()
		return nil, fmt.Errorf("store: %s: %w", name, redactDSN(err, dsn, opts.Password))
	}
	if err := p.migrate(ctx); err != nil {
		p.pool.Close()
		return nil, redactDSN(err, dsn, opts.Password)
	}
	log.Info("Store opened", zap.String("database", name), zap.Int("schema_version", p.schemaLoaded))
	return p, nil
}

// pgName is "postgres database DB on HOST:PORT", for messages.
func pgName(c pgconn.Config) string {
	host := c.Host
	if strings.HasPrefix(host, "/") {
		host = "socket " + host
	} else {
		host = fmt.Sprintf("%s:%d", host, c.Port)
	}
	return fmt.Sprintf("postgres database %s on %s", c.Database, host)
}

// passwordInDSN finds a password in a URL's user information or a
// key=value DSN, so that redactDSN can take it out of error texts (the
// driver's own messages include parts of the connection string).
var passwordInDSN = regexp.MustCompile(`(?i)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// redactDSN returns err with every occurrence of dsn's password replaced,
// so that no error text repeats it.
func redactDSN(err error, dsn string, passwords ...string) error {
	if err == nil {
		return nil
	}
	secrets := passwords
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	for _, m := range passwordInDSN.FindAllStringSubmatch(dsn, -1) {
		secrets = append(secrets, strings.Trim(m[1], "'"))
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return redactedError{msg: msg, err: err}
}

// redactedError is an error whose text had a password taken out; errors.Is
// and errors.As still see the original.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// migrate applies the migrations the database lacks, each in its own
// transaction holding the migration lock (which also covers creating the
// schema_migrations table), so that replicas starting at once apply each
// exactly once and a crash leaves a known version.
func (p *Postgres) migrate(ctx context.Context) error {
	for {
		done, version, err := p.migrateOne(ctx)
		if err != nil {
			return err
		}
		if done {
			p.schemaLoaded = version
			return nil
		}
		p.log.Info("Store schema migrated", zap.String("database", p.name), zap.Int("version", version))
	}
}

func (p *Postgres) migrateOne(ctx context.Context) (done bool, version int, err error) {
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(pgMigrationLock)); err != nil {
			return err
		}
		// Under the lock: two replicas creating the table at once would
		// collide in the catalog even with IF NOT EXISTS.
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_ns BIGINT  NOT NULL
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var cur int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&cur); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if cur > len(pgMigrations) {
			return &SchemaVersionError{Path: p.name, Found: cur, Known: len(pgMigrations)}
		}
		if cur == len(pgMigrations) {
			done, version = true, cur
			return nil
		}
		version = cur + 1
		if _, err := tx.Exec(ctx, pgMigrations[cur]); err != nil {
			return fmt.Errorf("migration %d: %w", version, err)
		}
		_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, applied_ns) VALUES ($1, $2)", version, time.Now().UnixNano())
		return err
	})
	var sv *SchemaVersionError
	if errors.As(err, &sv) {
		return false, 0, err
	}
	if err != nil {
		return false, 0, fmt.Errorf("store: %s: migrate: %w", p.name, err)
	}
	return done, version, nil
}

// Name says which database this is (host and database, no credentials).
func (p *Postgres) Name() string { return p.name }

// SchemaVersion returns the schema version the database is at, which is
// the newest this build knows.
func (p *Postgres) SchemaVersion() int { return p.schemaLoaded }

// metricsRegisterer lets a Writer find the registerer the store was opened
// with.
func (p *Postgres) metricsRegisterer() prometheus.Registerer { return p.reg }

// Append implements Store: all events in one transaction (COPY for a
// large batch), acknowledged once committed.
func (p *Postgres) Append(ctx context.Context, events []monitor.Event) error {
	if len(events) == 0 {
		return nil
	}
	rows := make([][]any, len(events))
	for i, e := range events {
		b, err := encodeEvent(e)
		if err != nil {
			return fmt.Errorf("store: event %d (%s, %s): %w", i, e.Account, e.Type, err)
		}
		var seq any // NULL for an event without one (not from an Account)
		if e.Seq != 0 {
			seq = int64(e.Seq)
		}
		rows[i] = []any{e.Account, unixNano(e.Time), e.Type.String(), seq, string(b)}
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := p.checkFence(ctx, tx); err != nil {
			return err
		}
		if len(rows) >= pgCopyFrom {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"account", "time_ns", "type", "seq", "body"}, pgx.CopyFromRows(rows))
			return err
		}
		b := &pgx.Batch{}
		for _, r := range rows {
			b.Queue("INSERT INTO events (account, time_ns, type, seq, body) VALUES ($1, $2, $3, $4, $5)", r...)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("store: append: %w", err)
	}
	return nil
}

// Fence makes every later Append and SaveSnapshots check, inside its
// transaction, that epoch is still the fleet's leadership epoch (Lead),
// and fail with ErrFenced, writing nothing, once a successor has taken
// over. The check takes a share lock on the leadership row, so a new term
// begins only after the writes in flight of the old one have committed.
func (p *Postgres) Fence(epoch int64) { p.fence.Store(epoch) }

func (p *Postgres) checkFence(ctx context.Context, tx pgx.Tx) error {
	want := p.fence.Load()
	if want == 0 {
		return nil
	}
	var cur int64
	if err := tx.QueryRow(ctx, "SELECT epoch FROM leadership WHERE id = 1 FOR SHARE").Scan(&cur); err != nil {
		return fmt.Errorf("leadership epoch: %w", err)
	}
	if cur != want {
		return ErrFenced
	}
	return nil
}

// Events implements Store.
func (p *Postgres) Events(ctx context.Context, account string, since time.Time, n int) ([]monitor.Event, error) {
	n = limit(n)
	if account == "" {
		return p.query(ctx, "events", n,
			"SELECT id, body FROM events WHERE time_ns >= $1 ORDER BY time_ns, id LIMIT $2", unixNano(since), n)
	}
	return p.query(ctx, "events", n,
		"SELECT id, body FROM events WHERE account = $1 AND time_ns >= $2 ORDER BY time_ns, id LIMIT $3",
		account, unixNano(since), n)
}

// Latest implements Store: the newest rows by id, returned oldest first.
func (p *Postgres) Latest(ctx context.Context, account string, n int) ([]monitor.Event, error) {
	n = limit(n)
	evs, err := p.query(ctx, "latest events", n,
		"SELECT id, body FROM events WHERE account = $1 ORDER BY id DESC LIMIT $2", account, n)
	slices.Reverse(evs)
	return evs, err
}

// After implements Store.
func (p *Postgres) After(ctx context.Context, account string, seq uint64, n int) ([]monitor.Event, error) {
	n = limit(n)
	return p.query(ctx, "events after a sequence number", n,
		"SELECT id, body FROM events WHERE account = $1 AND seq > $2 ORDER BY seq LIMIT $3", account, int64(seq), n)
}

func (p *Postgres) query(ctx context.Context, what string, n int, q string, args ...any) ([]monitor.Event, error) {
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	return scanEvents(rows, what, n)
}

// SaveSnapshots implements Store, in one transaction; a snapshot older
// than the stored one is ignored (the upsert's WHERE), so that a slow or
// stale replica cannot roll an account back.
func (p *Postgres) SaveSnapshots(ctx context.Context, snaps []monitor.Snapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, sn := range snaps {
		body, err := json.Marshal(sn)
		if err != nil {
			return fmt.Errorf("store: snapshot of %s: %w", sn.Account, err)
		}
		b.Queue(`INSERT INTO snapshots (account, saved_ns, body) VALUES ($1, $2, $3)
			ON CONFLICT (account) DO UPDATE SET saved_ns = excluded.saved_ns, body = excluded.body
			WHERE excluded.saved_ns >= snapshots.saved_ns`, sn.Account, unixNano(sn.At), string(body))
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := p.checkFence(ctx, tx); err != nil {
			return err
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("store: save snapshots: %w", err)
	}
	return nil
}

// LoadSnapshots implements Store.
func (p *Postgres) LoadSnapshots(ctx context.Context) ([]monitor.Snapshot, error) {
	rows, err := p.pool.Query(ctx, "SELECT account, body FROM snapshots ORDER BY account")
	if err != nil {
		return nil, fmt.Errorf("store: load snapshots: %w", err)
	}
	defer rows.Close()
	return scanSnapshots(rows)
}

// Prune implements Store, in chunks of pruneChunk events as SQLite does,
// so that no transaction holds many row locks for long.
func (p *Postgres) Prune(ctx context.Context, before time.Time) (int64, error) {
	cutoff := unixNano(before)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		tag, err := p.pool.Exec(ctx,
			"DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time_ns < $1 LIMIT $2)", cutoff, pruneChunk)
		n := tag.RowsAffected()
		total += n
		if err != nil {
			return total, fmt.Errorf("store: prune: %w", err)
		}
		if n < int64(pruneChunk) {
			return total, nil
		}
	}
}

// PruneOlderThan enforces a retention period as SQLite.PruneOlderThan
// does.
func (p *Postgres) PruneOlderThan(ctx context.Context, retention time.Duration, now time.Time) (int64, error) {
	return pruneOlderThan(ctx, p.Prune, p.log, retention, now)
}

// Close implements Store: it closes the connection pool, waiting for the
// queries in flight.
func (p *Postgres) Close() error {
	p.closeOnce.Do(p.pool.Close)
	return nil
}
