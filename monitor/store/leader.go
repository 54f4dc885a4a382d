package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/clock"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Leadership on PostgreSQL: replicas of the daemon share one database, and
// exactly one of them (the leader) runs the accounts; the others wait as
// standbys and take over when it goes. Two replicas must never run an
// account at once: Telegram destroys a session used from two connections
// (AUTH_KEY_DUPLICATED), and two monitors would write one history twice.
//
// The leader holds a session-level advisory lock on a dedicated
// connection, whose idle_session_timeout makes the server end that
// session, and so free the lock, soon after the leader stops talking to it
// (crashed, paused, partitioned). The leader pings every PingEvery and
// trusts its leadership only until its last good ping plus TrustWindow,
// shorter than the server's timeout: past that it must stop its clients
// (Lost closes, Trusted turns false) even if it cannot reach the database
// to find out. A new leader waits Margin after taking the lock before it
// starts, so that an old leader that lost the lock without dying has
// stopped by then. Every term has an epoch, incremented in the
// leadership table when taken; writes made with Fenced check it in their
// transaction, so a leader that lost its term cannot write over its
// successor's history.

// LeaderOptions tune Lead. Zero values take the defaults.
type LeaderOptions struct {
	// Holder names this replica in the leadership table and logs (host
	// and pid, say).
	Holder string
	// PingEvery is how often the leader checks its lock connection;
	// default 1 s.
	PingEvery time.Duration
	// SessionTimeout is the lock connection's idle_session_timeout: how
	// long after its last ping the server frees the lock of a leader gone
	// silent; default 10 s. It bounds failover time.
	SessionTimeout time.Duration
	// TrustWindow is how long after its last good ping the leader still
	// runs the accounts; default SessionTimeout/2. It must be shorter than
	// SessionTimeout minus PingEvery.
	TrustWindow time.Duration
	// Margin is how long a new leader waits after taking the lock before
	// Lead returns; default SessionTimeout - TrustWindow, so that the old
	// leader's trust has ended however its connection was lost.
	Margin time.Duration
	// Clock times pings, trust and the margin; default the system clock.
	Clock  clock.Clock
	Logger *zap.Logger
}

func (o *LeaderOptions) defaults() error {
	if o.PingEvery <= 0 {
		o.PingEvery = time.Second
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 10 * time.Second
	}
	if o.TrustWindow <= 0 {
		o.TrustWindow = o.SessionTimeout / 2
	}
	if o.Margin <= 0 {
		o.Margin = o.SessionTimeout - o.TrustWindow
	}
	if o.Clock == nil {
		o.Clock = clock.System
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.TrustWindow+o.PingEvery >= o.SessionTimeout {
		return fmt.Errorf("store: leadership: trust window %v plus ping period %v must be shorter than the session timeout %v", o.TrustWindow, o.PingEvery, o.SessionTimeout)
	}
	return nil
}

// leaderLock is the advisory lock key of the fleet's leadership.
const leaderLock = 0x7467_6c65_6164 // "tglead"

// ErrFenced is returned by a write of a leader whose term has ended: the
// leadership's epoch moved on, and nothing was written.
var ErrFenced = errors.New("store: this replica's leadership term has ended; write refused")

// Leadership is a term as the fleet's leader.
type Leadership struct {
	p      *Postgres
	conn   *pgx.Conn
	opts   LeaderOptions
	epoch  int64
	lost   chan struct{}
	once   sync.Once
	until  atomic.Int64 // unix ns: trusted until
	stop   chan struct{}
	done   chan struct{}
	reason atomic.Pointer[string]
}

// Lead waits until this replica is the leader (or ctx ends), then returns
// its term. It takes the lock on a connection of its own, records the new
// epoch and holder, waits Margin, and keeps the term alive until Release
// or until it is lost.
func (p *Postgres) Lead(ctx context.Context, opts LeaderOptions) (*Leadership, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	cfg := p.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["idle_session_timeout"] = fmt.Sprint(opts.SessionTimeout.Milliseconds())
	cfg.RuntimeParams["application_name"] = "safetyd leadership"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: %s: leadership connection: %w", p.name, err)
	}
	l := &Leadership{p: p, conn: conn, opts: opts, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.acquire(ctx); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	go l.keep()
	t := opts.Clock.Timer(opts.Margin)
	defer t.Stop()
	select {
	case <-t.C():
	case <-l.lost:
		l.Release()
		return nil, fmt.Errorf("store: leadership lost during the start margin: %s", l.Reason())
	case <-ctx.Done():
		l.Release()
		return nil, ctx.Err()
	}
	return l, nil
}

// acquire blocks on the advisory lock, pinging meanwhile so that the
// server does not end this idle-looking session, then starts the term.
func (l *Leadership) acquire(ctx context.Context) error {
	o := l.opts
	for {
		var got bool
		if err := l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(leaderLock)).Scan(&got); err != nil {
			return fmt.Errorf("store: %s: leadership: %w", l.p.name, err)
		}
		if got {
			break
		}
		t := o.Clock.Timer(o.PingEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C():
		}
	}
	start := o.Clock.Now()
	err := pgx.BeginFunc(ctx, l.conn, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO leadership (id, epoch, holder, since_ns) VALUES (1, 1, $1, $2)
			ON CONFLICT (id) DO UPDATE SET epoch = leadership.epoch + 1, holder = excluded.holder, since_ns = excluded.since_ns
			RETURNING epoch`, o.Holder, start.UnixNano()).Scan(&l.epoch)
	})
	if err != nil {
		return fmt.Errorf("store: %s: leadership: %w", l.p.name, err)
	}
	l.until.Store(start.Add(o.TrustWindow).UnixNano())
	o.Logger.Info("Leadership taken", zap.Int64("epoch", l.epoch), zap.String("holder", o.Holder))
	return nil
}

// keep pings the lock connection every PingEvery; each good ping extends
// the trust. A failed ping, or trust running out between pings (the
// process was paused, the database hangs), loses the term.
func (l *Leadership) keep() {
	defer close(l.done)
	o := l.opts
	t := o.Clock.Ticker(o.PingEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C():
		}
		// One reading of the clock for the check and the extension, so
		// that a pause between them cannot extend a lapsed trust.
		sent := o.Clock.Now()
		if sent.UnixNano() >= l.until.Load() {
			l.lose("no good ping within the trust window")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.TrustWindow)
		err := l.conn.Ping(ctx)
		cancel()
		if err != nil {
			l.lose("the leadership connection failed: " + err.Error())
			return
		}
		// Trust counts from when the ping was sent: the answer proves the
		// session (and so the lock) was alive then, not later.
		l.until.Store(sent.Add(o.TrustWindow).UnixNano())
	}
}

func (l *Leadership) lose(why string) {
	l.once.Do(func() {
		l.reason.Store(&why)
		l.until.Store(0)
		l.opts.Logger.Error("Leadership lost; stopping", zap.Int64("epoch", l.epoch), zap.String("reason", why))
		close(l.lost)
	})
}

// Epoch is the term's number; it only grows across the fleet.
func (l *Leadership) Epoch() int64 { return l.epoch }

// Lost is closed when the term ends (Release included): a replica that
// did not release it must stop its clients at once.
func (l *Leadership) Lost() <-chan struct{} { return l.lost }

// Reason says why the term was lost ("" while it holds).
func (l *Leadership) Reason() string {
	if r := l.reason.Load(); r != nil {
		return *r
	}
	return ""
}

// Trusted reports whether the leader may still act: within TrustWindow of
// its last good ping. A client middleware checks it before every call, so
// that a leader resumed after a pause sends nothing before it notices.
func (l *Leadership) Trusted() bool {
	return l.opts.Clock.Now().UnixNano() < l.until.Load()
}

// Release ends the term and frees the lock at once (SIGTERM: the standby
// takes over without waiting for the session timeout).
func (l *Leadership) Release() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
	l.lose("released")
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.SessionTimeout)
	defer cancel()
	_, _ = l.conn.Exec(ctx, "SELECT pg_advisory_unlock_all()")
	_ = l.conn.Close(ctx)
}
