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
	// fence, when set, gives the lease epochs writes must match.
	fence atomic.Pointer[Fence]
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
	// 2: a fleet-wide leadership term (replaced by 3).
	`CREATE TABLE leadership (
		id       INTEGER PRIMARY KEY CHECK (id = 1),
		epoch    BIGINT  NOT NULL,
		holder   TEXT    NOT NULL,
		since_ns BIGINT  NOT NULL
	);`,
	// 3: account leases (lease.go): a row per account, its epoch only
	// grows; the live replicas; every term taken; reports waiting for
	// their account's holder.
	`DROP TABLE leadership;
	CREATE TABLE leases (
		account    TEXT   PRIMARY KEY,
		holder     TEXT   NOT NULL DEFAULT '',
		epoch      BIGINT NOT NULL DEFAULT 0,
		expires_ns BIGINT NOT NULL DEFAULT 0
	);
	CREATE TABLE replicas (
		replica    TEXT   PRIMARY KEY,
		expires_ns BIGINT NOT NULL
	);
	CREATE TABLE lease_history (
		account         TEXT   NOT NULL,
		epoch           BIGINT NOT NULL,
		holder          TEXT   NOT NULL,
		taken_ns        BIGINT NOT NULL,
		prev_holder     TEXT   NOT NULL,
		prev_expires_ns BIGINT NOT NULL,
		PRIMARY KEY (account, epoch)
	);
	CREATE TABLE inbox (
		id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		account     TEXT   NOT NULL,
		received_ns BIGINT NOT NULL,
		body        TEXT   NOT NULL
	);
	CREATE INDEX inbox_account ON inbox (account, id);`,
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
// large batch), acknowledged once committed. With a fence (FenceWith),
// the events of accounts whose lease this replica no longer holds are not
// written, the others are, and the error is a *FencedError naming them.
func (p *Postgres) Append(ctx context.Context, events []monitor.Event) error {
	if len(events) == 0 {
		return nil
	}
	rows, err := eventRows(events)
	if err != nil {
		return err
	}
	var fenced []string
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		accounts := make([]string, len(events))
		for i, e := range events {
			accounts[i] = e.Account
		}
		refused, err := p.checkFence(ctx, tx, accounts)
		if err != nil {
			return err
		}
		fenced = sortedKeys(refused)
		write := rows
		if len(refused) > 0 {
			write = nil
			for i, e := range events {
				if !refused[e.Account] {
					write = append(write, rows[i])
				}
			}
		}
		return insertEvents(ctx, tx, write)
	})
	if err != nil {
		return fmt.Errorf("store: append: %w", err)
	}
	if len(fenced) > 0 {
		return &FencedError{Accounts: fenced}
	}
	return nil
}

// eventRows encodes events as the events table's rows.
func eventRows(events []monitor.Event) ([][]any, error) {
	rows := make([][]any, len(events))
	for i, e := range events {
		b, err := encodeEvent(e)
		if err != nil {
			return nil, fmt.Errorf("store: event %d (%s, %s): %w", i, e.Account, e.Type, err)
		}
		var seq any // NULL for an event without one (not from an Account)
		if e.Seq != 0 {
			seq = int64(e.Seq)
		}
		rows[i] = []any{e.Account, unixNano(e.Time), e.Type.String(), seq, string(b)}
	}
	return rows, nil
}

// insertEvents writes encoded event rows in tx.
func insertEvents(ctx context.Context, tx pgx.Tx, rows [][]any) error {
	if len(rows) >= pgCopyFrom {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"account", "time_ns", "type", "seq", "body"}, pgx.CopyFromRows(rows))
		return err
	}
	b := &pgx.Batch{}
	for _, r := range rows {
		b.Queue("INSERT INTO events (account, time_ns, type, seq, body) VALUES ($1, $2, $3, $4, $5)", r...)
	}
	return tx.SendBatch(ctx, b).Close()
}

// Fence says, for the accounts a replica runs, which term of their lease
// it runs them under. *Leases is one (the terms it holds); the daemon
// gives its own, the terms it restored each account under, so that
// events produced in an earlier term and written late are refused even
// when the replica holds the account again.
type Fence interface {
	Replica() string
	Epoch(account string) (int64, bool)
}

// FenceWith makes every later Append and SaveSnapshots write an account's
// rows only while the lease row names f's replica and the epoch f gives
// for the account: checked inside the write's transaction under a
// key-share lock on the lease row, so that a new term begins only after the old
// term's writes in flight have committed, and a replica that lost a lease
// (paused, partitioned) cannot write over its successor.
func (p *Postgres) FenceWith(f Fence) { p.fence.Store(&f) }

// fencedIdleTimeout bounds how long a fenced write's transaction may sit
// idle (its process paused) holding lease locks.
const fencedIdleTimeout = 2 * time.Second

// FencedError is returned by a write some of whose accounts this replica
// no longer holds: their rows were not written (the others were).
type FencedError struct {
	Accounts []string
}

// Error names the accounts.
func (e *FencedError) Error() string {
	return fmt.Sprintf("store: the leases of %d account(s) moved to another replica; their writes were refused: %s",
		len(e.Accounts), strings.Join(e.Accounts, ", "))
}

// Is makes errors.Is(err, ErrFenced) true.
func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// ErrFenced matches every *FencedError (errors.Is).
var ErrFenced = errors.New("store: write refused: the account's lease moved to another replica")

// checkFence returns the accounts (of those given; "" is never fenced)
// whose lease this replica does not hold at the epoch it believes.
func (p *Postgres) checkFence(ctx context.Context, tx pgx.Tx, accounts []string) (map[string]bool, error) {
	fp := p.fence.Load()
	if fp == nil {
		return nil, nil
	}
	l := *fp
	want := map[string]bool{}
	for _, a := range accounts {
		if a != "" {
			want[a] = true
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	names := sortedKeys(want)
	// A replica paused inside this transaction would hold the lease rows'
	// share locks, and no other replica could take those accounts (takes
	// skip locked rows) until it resumed: the server ends a transaction
	// idle that long, freeing them.
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL idle_in_transaction_session_timeout = %d", fencedIdleTimeout.Milliseconds())); err != nil {
		return nil, fmt.Errorf("lease epochs: %w", err)
	}
	// In account order, as every lease lock is taken, so that writes and
	// takes never deadlock. FOR KEY SHARE keeps a take (FOR UPDATE) off the
	// rows until the write commits, but not this replica's renewals (FOR
	// NO KEY UPDATE), which waited behind large writes and lapsed.
	rows, err := tx.Query(ctx, `SELECT account, epoch FROM leases WHERE account = ANY($1) AND holder = $2
		ORDER BY account FOR KEY SHARE`, names, l.Replica())
	if err != nil {
		return nil, fmt.Errorf("lease epochs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		var epoch int64
		if err := rows.Scan(&a, &epoch); err != nil {
			return nil, fmt.Errorf("lease epochs: %w", err)
		}
		if mine, ok := l.Epoch(a); ok && mine == epoch {
			delete(want, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lease epochs: %w", err)
	}
	return want, nil
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
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
// stale replica cannot roll an account back. With a fence, snapshots of
// accounts this replica no longer holds are not saved (*FencedError).
func (p *Postgres) SaveSnapshots(ctx context.Context, snaps []monitor.Snapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	bodies := make([]string, len(snaps))
	accounts := make([]string, len(snaps))
	for i, sn := range snaps {
		body, err := json.Marshal(sn)
		if err != nil {
			return fmt.Errorf("store: snapshot of %s: %w", sn.Account, err)
		}
		bodies[i], accounts[i] = string(body), sn.Account
	}
	var fenced []string
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		refused, err := p.checkFence(ctx, tx, accounts)
		if err != nil {
			return err
		}
		fenced = sortedKeys(refused)
		b := &pgx.Batch{}
		for i, sn := range snaps {
			if refused[sn.Account] {
				continue
			}
			b.Queue(`INSERT INTO snapshots (account, saved_ns, body) VALUES ($1, $2, $3)
				ON CONFLICT (account) DO UPDATE SET saved_ns = excluded.saved_ns, body = excluded.body
				WHERE excluded.saved_ns >= snapshots.saved_ns`, sn.Account, unixNano(sn.At), bodies[i])
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("store: save snapshots: %w", err)
	}
	if len(fenced) > 0 {
		return &FencedError{Accounts: fenced}
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
