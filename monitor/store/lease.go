package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/clock"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Account leases on PostgreSQL: replicas of the daemon share one database
// and split the fleet between them. Each account is run by exactly one
// replica at a time, the holder of its lease; the others answer for it
// from the store. Two replicas must never run an account at once:
// Telegram destroys a session used from two connections
// (AUTH_KEY_DUPLICATED), and two monitors would write one history twice.
//
// A lease row per account holds its holder, its epoch (one more at every
// new term, the fencing token) and when it expires. The holder renews all
// its leases every RenewEvery (expiry = renewal + TTL) and trusts them
// until its last successful renewal plus TTL, by its own clock, even when
// it cannot reach the database to learn that they were taken: past that
// it stops its clients (Trusted turns false at once; a Lose event
// follows). Another replica takes an expired lease only Margin after its
// expiry, by which time the old holder has stopped however it was cut
// off. Writes of an account's state carry its epoch (Fence): a replica
// that lost a lease while paused cannot write over the new holder.
//
// Replicas announce themselves in the replicas table, and each aims to
// hold its fair share, ceil(accounts / live replicas): one below it takes
// expired or released leases (FOR UPDATE SKIP LOCKED, so replicas never
// wait on each other), one above it gives leases back once their clients
// have stopped. Released leases and inbox rows are announced with
// NOTIFY, so that a hand-over or a report does not wait for a renewal.
//
// Time in the lease rows is each replica's clock, not the database's, so
// that tests can run replicas on one virtual clock; a replica whose clock
// is more than MaxSkew away from the database's takes no lease.

// LeaseOptions tune Leases. Zero values take the defaults.
type LeaseOptions struct {
	// Replica names this replica in the lease rows and logs; unique in
	// the fleet (host, pid and a random part, say).
	Replica string
	// TTL is how long after a renewal a lease stays this replica's
	// (default 30 s): it bounds how long a dead replica's accounts go
	// unwatched, and how long a replica may be cut off from the database
	// before it stops its clients.
	TTL time.Duration
	// RenewEvery is how often leases are renewed and the fleet
	// rebalanced; default TTL/3, so that two renewals may fail before a
	// lease is lost.
	RenewEvery time.Duration
	// Margin is how long after a lease expired another replica waits
	// before taking it (default 5 s): the old holder's clock may lag, and
	// its clients need a moment to stop.
	Margin time.Duration
	// Join is how long a starting replica announces itself before it
	// takes any lease (default RenewEvery), so that replicas starting
	// together split the fleet instead of the first taking it all.
	Join time.Duration
	// MaxSkew is how far this replica's clock may be from the database's
	// (default Margin/2); negative disables the check (tests on a virtual
	// clock).
	MaxSkew time.Duration
	// Clock times renewals and trust, and dates the lease rows; default
	// the system clock.
	Clock  clock.Clock
	Logger *zap.Logger

	// manual (tests) runs no rounds in the background: the test calls
	// round itself, so that it knows when each has happened.
	manual bool
}

func (o *LeaseOptions) defaults() error {
	if o.Replica == "" {
		return errors.New("store: leases: a replica name is required")
	}
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.RenewEvery <= 0 {
		o.RenewEvery = o.TTL / 3
	}
	if o.Margin <= 0 {
		o.Margin = 5 * time.Second
	}
	if o.Join <= 0 {
		o.Join = o.RenewEvery
	}
	if o.MaxSkew == 0 {
		o.MaxSkew = o.Margin / 2
	}
	if o.Clock == nil {
		o.Clock = clock.System
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.RenewEvery >= o.TTL {
		return fmt.Errorf("store: leases: renewal period %v must be shorter than the TTL %v", o.RenewEvery, o.TTL)
	}
	return nil
}

// LeaseEventKind says what happened to a lease.
type LeaseEventKind uint8

// Lease events, in the order an account meets them.
const (
	// LeaseTaken: this replica holds the account now; restore and start
	// it.
	LeaseTaken LeaseEventKind = iota + 1
	// LeaseGive: the fleet is unbalanced and this replica gives the
	// account back; stop it, flush its state, then call Done, after
	// which the lease is released for another replica.
	LeaseGive
	// LeaseLost: the lease ended without this replica giving it back
	// (not renewed in time, taken over, Close); stop the account's client
	// at once. Trusted is already false.
	LeaseLost
	// LeaseInbox: a report for the account waits in the inbox.
	LeaseInbox
)

// String names the kind for logs.
func (k LeaseEventKind) String() string {
	switch k {
	case LeaseTaken:
		return "taken"
	case LeaseGive:
		return "give"
	case LeaseLost:
		return "lost"
	case LeaseInbox:
		return "inbox"
	}
	return invalidName
}

// LeaseEvent is one change of this replica's leases.
type LeaseEvent struct {
	Kind    LeaseEventKind
	Account string
	Epoch   int64
	// Why says why a lease was lost.
	Why  string
	give func()
}

// Done tells Leases that a given-back account has stopped and its state
// is stored, so that its lease can be released. It does nothing for
// other events.
func (e LeaseEvent) Done() {
	if e.give != nil {
		e.give()
	}
}

// lease is one lease this replica holds.
type lease struct {
	epoch  int64
	giving bool
}

// Leases is this replica's share of the fleet; see the comment at the top
// of the file.
type Leases struct {
	p    *Postgres
	opts LeaseOptions
	// pool carries the lease traffic on connections of its own (one
	// listens, one renews): renewals waiting behind the replica's event
	// writes, restores and reports for a free connection of the store's
	// pool lapsed every lease of a busy replica at once.
	pool *pgxpool.Pool

	mu       sync.Mutex
	accounts []string // configured, sorted
	held     map[string]*lease
	released []releasedLease // given back, to release in the database
	queue    []LeaseEvent
	closed   bool

	// until is when this replica's trust in its leases ends (unix ns).
	until atomic.Int64
	// ready is signalled when queue gets an event.
	ready chan struct{}
	poke  chan struct{}
	// joined is when this replica may start taking leases.
	joined time.Time
	// releasing (tests) runs inside a release's transaction, its rows
	// locked and not yet committed: where a pause hurts the fleet most.
	releasing func()
	stop      chan struct{}
	done      sync.WaitGroup
}

type releasedLease struct {
	account string
	epoch   int64
}

// Lease channels of NOTIFY. On LeaseChannel, a replica that released
// leases says "released:" and its name, one that took some "taken:" and
// its name (what a watcher of the fleet, such as a test, waits on).
const (
	LeaseChannel   = "tgsafety_leases"
	inboxChannel   = "tgsafety_inbox"
	releasedPrefix = "released:"
	takenPrefix    = "taken:"
)

// Leases announces this replica and starts taking its share of accounts
// (the fleet's accounts as configured here; SetAccounts changes them).
// Read what happens from Events; Close gives everything back.
func (p *Postgres) Leases(ctx context.Context, accounts []string, opts LeaseOptions) (*Leases, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	l := &Leases{p: p, opts: opts, held: map[string]*lease{},
		ready: make(chan struct{}, 1), poke: make(chan struct{}, 1), stop: make(chan struct{})}
	cfg := p.pool.Config()
	cfg.MinConns, cfg.MaxConns = 0, leaseConns
	// A replica paused inside a release holds the rows it gives back
	// locked, and takes skip locked rows: those accounts would wait for it
	// to resume, however long. The server ends such a transaction once it
	// sits idle that long, as it does for fenced writes (seen in the
	// three-process test: 16 of 300 accounts held by nobody for 5 minutes).
	// A take is committed by the server once it has sent its answer,
	// whether or not the replica reads it (takeBatch).
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(fencedIdleTimeout.Milliseconds(), 10)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: %s: lease connections: %w", p.name, redactDSN(err, "", cfg.ConnConfig.Password))
	}
	l.pool = pool
	if err := l.setAccounts(ctx, accounts); err != nil {
		pool.Close()
		return nil, err
	}
	if err := l.heartbeat(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	l.joined = opts.Clock.Now().Add(opts.Join)
	l.done.Add(1)
	go l.listen()
	if !opts.manual {
		l.done.Add(1)
		go l.run()
	}
	return l, nil
}

// Replica is this replica's name.
func (l *Leases) Replica() string { return l.opts.Replica }

// SetAccounts changes the fleet's accounts (a reload): new ones get a
// lease row; leases of removed ones are given back.
func (l *Leases) SetAccounts(ctx context.Context, accounts []string) error {
	if err := l.setAccounts(ctx, accounts); err != nil {
		return err
	}
	l.wake()
	return nil
}

func (l *Leases) setAccounts(ctx context.Context, accounts []string) error {
	accounts = slices.Clone(accounts)
	sort.Strings(accounts)
	accounts = slices.Compact(accounts)
	if _, err := l.pool.Exec(ctx, `INSERT INTO leases (account) SELECT unnest($1::text[]) ON CONFLICT (account) DO NOTHING`, accounts); err != nil {
		return fmt.Errorf("store: %s: lease rows: %w", l.p.name, err)
	}
	l.mu.Lock()
	l.accounts = accounts
	l.mu.Unlock()
	return nil
}

// Events returns the next lease events, waiting until there is one or
// ctx ends. Events come in the order they happened.
func (l *Leases) Events(ctx context.Context) ([]LeaseEvent, error) {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			q := l.queue
			l.queue = nil
			l.mu.Unlock()
			return q, nil
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-l.ready:
		}
	}
}

func (l *Leases) emitLocked(e LeaseEvent) {
	l.queue = append(l.queue, e)
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

func (l *Leases) wake() {
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

// Trusted reports whether this replica holds account's lease and may act
// for it: a client middleware asks before every call, so that a replica
// resumed after a pause sends nothing before it notices its leases ended.
func (l *Leases) Trusted(account string) bool {
	_, ok := l.TrustedEpoch(account)
	return ok
}

// TrustedEpoch is the epoch of account's lease while this replica holds
// it and trusts it (Trusted): what a client's gate compares with the term
// the client started under, in one lock on the hot path of every call.
func (l *Leases) TrustedEpoch(account string) (int64, bool) {
	if l.opts.Clock.Now().UnixNano() >= l.until.Load() {
		return 0, false
	}
	l.mu.Lock()
	h, ok := l.held[account]
	l.mu.Unlock()
	if !ok {
		return 0, false
	}
	return h.epoch, true
}

// Epoch is the epoch of account's lease while this replica holds it:
// the fencing token its writes carry.
func (l *Leases) Epoch(account string) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.held[account]
	if !ok {
		return 0, false
	}
	return h.epoch, true
}

// Held returns the accounts this replica holds, sorted.
func (l *Leases) Held() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.held))
	for a := range l.held {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// run renews and rebalances every RenewEvery, when poked (a lease
// released, an account given back, the accounts changed) and when a lease
// of another replica is due to become takeable.
func (l *Leases) run() {
	defer l.done.Done()
	t := l.opts.Clock.Timer(0)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C():
		case <-l.poke:
			t.Stop()
		}
		t.Reset(l.round())
	}
}

// round is one round: trust check, renewal, heartbeat, releases, balance.
// It returns when the next round is due.
func (l *Leases) round() time.Duration {
	o, joined := l.opts, l.joined
	sent := o.Clock.Now()
	if n := sent.UnixNano(); n >= l.until.Load() && l.heldCount() > 0 {
		l.loseAll("not renewed within the TTL (paused, or cut off from the database)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.TTL)
	defer cancel()
	if err := l.renew(ctx, sent); err != nil {
		o.Logger.Warn("Cannot renew leases", zap.Error(err))
		return min(o.RenewEvery, max(time.Duration(l.until.Load()-o.Clock.Now().UnixNano()), time.Millisecond))
	}
	if err := l.heartbeat(ctx); err != nil {
		o.Logger.Warn("Cannot announce this replica", zap.Error(err))
		return o.RenewEvery
	}
	l.release(ctx)
	if o.Clock.Now().Before(joined) {
		return joined.Sub(o.Clock.Now())
	}
	next, err := l.balance(ctx)
	if err != nil {
		o.Logger.Warn("Cannot balance leases", zap.Error(err))
		return o.RenewEvery
	}
	return max(min(next, o.RenewEvery), time.Millisecond)
}

func (l *Leases) heldCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// loseAll ends every lease this replica holds (Lose events).
func (l *Leases) loseAll(why string) {
	l.until.Store(0)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opts.Logger.Error("Every lease lost; stopping their accounts", zap.Int("accounts", len(l.held)), zap.String("reason", why))
	for a, h := range l.held {
		l.emitLocked(LeaseEvent{Kind: LeaseLost, Account: a, Epoch: h.epoch, Why: why})
		delete(l.held, a)
	}
}

// renew extends every lease held, from sent; a lease the database no
// longer gives this replica (expired, taken over) is lost.
func (l *Leases) renew(ctx context.Context, sent time.Time) error {
	o := l.opts
	l.mu.Lock()
	accts := make([]string, 0, len(l.held))
	epochs := make([]int64, 0, len(l.held))
	for a, h := range l.held {
		accts = append(accts, a)
		epochs = append(epochs, h.epoch)
	}
	l.mu.Unlock()
	if len(accts) == 0 {
		l.until.Store(sent.Add(o.TTL).UnixNano())
		return nil
	}
	// FOR NO KEY UPDATE: a renewal does not wait for this replica's own
	// writes, whose fence holds the rows FOR KEY SHARE (checkFence); takes
	// (FOR UPDATE) still skip rows a write holds.
	rows, err := l.pool.Query(ctx, `WITH c AS (
			SELECT l.account FROM leases l JOIN unnest($3::text[], $4::bigint[]) AS h(account, epoch)
				ON l.account = h.account AND l.epoch = h.epoch
			WHERE l.holder = $1 AND l.expires_ns > $5
			ORDER BY l.account FOR NO KEY UPDATE OF l
		)
		UPDATE leases l SET expires_ns = $2 FROM c WHERE l.account = c.account
		RETURNING l.account`, o.Replica, sent.Add(o.TTL).UnixNano(), accts, epochs, sent.UnixNano())
	if err != nil {
		return fmt.Errorf("store: %s: renew leases: %w", l.p.name, err)
	}
	kept := map[string]bool{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			rows.Close()
			return fmt.Errorf("store: %s: renew leases: %w", l.p.name, err)
		}
		kept[a] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: %s: renew leases: %w", l.p.name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Trust counts from when the renewal was sent: its answer proves the
	// leases were ours then, not later.
	l.until.Store(sent.Add(o.TTL).UnixNano())
	for i, a := range accts {
		if h, ok := l.held[a]; ok && !kept[a] && h.epoch == epochs[i] {
			delete(l.held, a)
			l.emitLocked(LeaseEvent{Kind: LeaseLost, Account: a, Epoch: h.epoch, Why: "expired or taken over before it was renewed"})
			o.Logger.Warn("Lease lost", zap.String("account", a), zap.Int64("epoch", h.epoch))
		}
	}
	return nil
}

// heartbeat announces this replica as live until TTL from now and checks
// the clocks agree.
func (l *Leases) heartbeat(ctx context.Context) error {
	o := l.opts
	before := o.Clock.Now()
	var dbNow time.Time
	err := l.pool.QueryRow(ctx, `INSERT INTO replicas (replica, expires_ns) VALUES ($1, $2)
		ON CONFLICT (replica) DO UPDATE SET expires_ns = excluded.expires_ns RETURNING clock_timestamp()`,
		o.Replica, before.Add(o.TTL).UnixNano()).Scan(&dbNow)
	if err != nil {
		return fmt.Errorf("store: %s: announce replica: %w", l.p.name, err)
	}
	if o.MaxSkew > 0 {
		after := o.Clock.Now()
		if skew := dbNow.Sub(before.Add(after.Sub(before) / 2)); skew > o.MaxSkew || -skew > o.MaxSkew {
			return fmt.Errorf("store: this replica's clock is %v away from the database's (at most %v): fix its time synchronisation; no lease is taken meanwhile", skew.Round(time.Millisecond), o.MaxSkew)
		}
	}
	return nil
}

// Give-back bookkeeping: Done of a LeaseGive event queues the lease here;
// the next round releases it in the database.
func (l *Leases) gave(account string, epoch int64) {
	l.mu.Lock()
	if h, ok := l.held[account]; ok && h.epoch == epoch {
		delete(l.held, account)
		l.released = append(l.released, releasedLease{account, epoch})
	}
	l.mu.Unlock()
	l.wake()
}

// GiveBack gives back a lease this replica took but cannot use (its
// account could not be restored from the store): released on the next
// round, for another replica, or this one on a later round, to try again.
func (l *Leases) GiveBack(account string, epoch int64) { l.gave(account, epoch) }

// release hands given-back leases to the fleet: expired at once, and
// NOTIFY wakes the other replicas.
func (l *Leases) release(ctx context.Context) {
	l.mu.Lock()
	rel := l.released
	l.released = nil
	l.mu.Unlock()
	if len(rel) == 0 {
		return
	}
	if err := l.releaseRows(ctx, rel); err != nil {
		l.opts.Logger.Warn("Cannot release leases; they expire instead", zap.Error(err))
	}
}

func (l *Leases) releaseRows(ctx context.Context, rel []releasedLease) error {
	accts := make([]string, len(rel))
	epochs := make([]int64, len(rel))
	for i, r := range rel {
		accts[i], epochs[i] = r.account, r.epoch
	}
	return pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `WITH c AS (
				SELECT l.account FROM leases l JOIN unnest($2::text[], $3::bigint[]) AS h(account, epoch)
					ON l.account = h.account AND l.epoch = h.epoch
				WHERE l.holder = $1
				ORDER BY l.account FOR UPDATE OF l
			)
			UPDATE leases l SET holder = '', expires_ns = 0 FROM c WHERE l.account = c.account`, l.opts.Replica, accts, epochs); err != nil {
			return err
		}
		if l.releasing != nil {
			l.releasing()
		}
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", LeaseChannel, releasedPrefix+l.opts.Replica)
		return err
	})
}

// balance takes leases up to this replica's fair share, or gives back
// those above it; it returns when the next lease of another replica
// becomes takeable.
func (l *Leases) balance(ctx context.Context) (time.Duration, error) {
	o := l.opts
	now := o.Clock.Now()
	var live int
	if err := l.pool.QueryRow(ctx, "SELECT count(*) FROM replicas WHERE expires_ns > $1", now.UnixNano()).Scan(&live); err != nil {
		return 0, fmt.Errorf("store: %s: count replicas: %w", l.p.name, err)
	}
	l.mu.Lock()
	accounts := l.accounts
	configured := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		configured[a] = true
	}
	holding := 0
	var extra []string
	for a, h := range l.held {
		if h.giving {
			continue
		}
		if !configured[a] {
			extra = append(extra, a) // removed by a reload
			continue
		}
		holding++
	}
	l.mu.Unlock()
	share := len(accounts)
	if live > 1 {
		share = (len(accounts) + live - 1) / live
	}
	if holding > share {
		l.mu.Lock()
		var mine []string
		for a, h := range l.held {
			if !h.giving && configured[a] {
				mine = append(mine, a)
			}
		}
		l.mu.Unlock()
		sort.Strings(mine)
		extra = append(extra, mine[share:]...)
	}
	for _, a := range extra {
		l.give(a)
	}
	if holding < share {
		if err := l.take(ctx, accounts, share-holding, now); err != nil {
			return 0, err
		}
	}
	var soonest int64
	err := l.pool.QueryRow(ctx, `SELECT COALESCE(min(expires_ns), 0) FROM leases
		WHERE account = ANY($1) AND holder <> $2 AND expires_ns >= $3`,
		accounts, o.Replica, now.Add(-o.Margin).UnixNano()).Scan(&soonest)
	if err != nil || soonest == 0 {
		return o.RenewEvery, nil
	}
	return time.Unix(0, soonest).Add(o.Margin).Sub(now) + time.Millisecond, nil
}

// give starts giving account back.
func (l *Leases) give(account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.held[account]
	if !ok || h.giving {
		return
	}
	h.giving = true
	epoch := h.epoch
	l.emitLocked(LeaseEvent{Kind: LeaseGive, Account: account, Epoch: epoch, give: sync.OnceFunc(func() { l.gave(account, epoch) })})
	l.opts.Logger.Info("Giving a lease back to balance the fleet", zap.String("account", account), zap.Int64("epoch", epoch))
}

// take takes up to n leases that expired Margin ago or were released,
// recording each term in lease_history.
func (l *Leases) take(ctx context.Context, accounts []string, n int, now time.Time) error {
	o := l.opts
	if now.UnixNano() >= l.until.Load() {
		return nil // not renewed lately: take nothing we could not trust
	}
	var (
		got []releasedLease
		err error
	)
	for n > 0 {
		var batch []releasedLease
		// What earlier statements took is committed: it is held below
		// even when a later one fails.
		if batch, err = l.takeRows(ctx, accounts, min(n, takeBatch), now); err != nil {
			break
		}
		got = append(got, batch...)
		if len(batch) < min(n, takeBatch) {
			break
		}
		n -= len(batch)
	}
	if len(got) > 0 {
		if _, err := l.pool.Exec(ctx, "SELECT pg_notify($1, $2)", LeaseChannel, takenPrefix+o.Replica); err != nil {
			o.Logger.Warn("Cannot announce leases taken", zap.Error(err))
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range got {
		l.held[r.account] = &lease{epoch: r.epoch}
		l.emitLocked(LeaseEvent{Kind: LeaseTaken, Account: r.account, Epoch: r.epoch})
	}
	if len(got) > 0 {
		o.Logger.Info("Leases taken", zap.Int("accounts", len(got)), zap.Int("held", len(l.held)))
	}
	return err
}

// takeBatch bounds the leases one statement takes. The server commits a
// take only after it has sent every row of its answer: a replica paused
// while a large answer filled the socket would keep those rows locked,
// from every other replica, for as long as the pause (the lease
// connections' idle timeout does not apply: the server is not idle but
// writing). A thousand rows fit in the socket's buffers.
const takeBatch = 1000

func (l *Leases) takeRows(ctx context.Context, accounts []string, n int, now time.Time) ([]releasedLease, error) {
	o := l.opts
	rows, err := l.pool.Query(ctx, `WITH c AS (
			SELECT account, holder, expires_ns FROM leases
			WHERE account = ANY($1) AND expires_ns < $2
			ORDER BY random() LIMIT $3 FOR UPDATE SKIP LOCKED
		), t AS (
			UPDATE leases l SET holder = $4, epoch = l.epoch + 1, expires_ns = $5
			FROM c WHERE l.account = c.account
			RETURNING l.account, l.epoch, c.holder AS prev_holder, c.expires_ns AS prev_expires_ns
		), h AS (
			INSERT INTO lease_history (account, epoch, holder, taken_ns, prev_holder, prev_expires_ns)
			SELECT account, epoch, $4, $6, prev_holder, prev_expires_ns FROM t
		)
		SELECT account, epoch FROM t`,
		accounts, now.Add(-o.Margin).UnixNano(), n, o.Replica, now.Add(o.TTL).UnixNano(), now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: %s: take leases: %w", l.p.name, err)
	}
	defer rows.Close()
	var got []releasedLease
	for rows.Next() {
		var r releasedLease
		if err := rows.Scan(&r.account, &r.epoch); err != nil {
			return nil, fmt.Errorf("store: %s: take leases: %w", l.p.name, err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: take leases: %w", l.p.name, err)
	}
	return got, nil
}

// listen wakes the balance when another replica releases leases and
// reports inbox rows for held accounts, over a connection of its own; it
// reconnects every RenewEvery when that connection fails (renewals catch
// up with what it missed).
func (l *Leases) listen() {
	defer l.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-l.stop
		cancel()
	}()
	for ctx.Err() == nil {
		if err := l.listenOnce(ctx); err != nil && ctx.Err() == nil {
			l.opts.Logger.Warn("Lease notifications lost; reconnecting", zap.Error(err))
			t := l.opts.Clock.Timer(l.opts.RenewEvery)
			select {
			case <-ctx.Done():
			case <-t.C():
			}
			t.Stop()
		}
	}
}

func (l *Leases) listenOnce(ctx context.Context) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+LeaseChannel+"; LISTEN "+inboxChannel); err != nil {
		conn.Conn().Close(ctx)
		return err
	}
	// Inbox rows that arrived before this connection listened.
	l.announceInbox(ctx)
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			conn.Conn().Close(context.Background()) // not back to the pool while listening
			return err
		}
		switch n.Channel {
		case LeaseChannel:
			if strings.HasPrefix(n.Payload, releasedPrefix) && n.Payload != releasedPrefix+l.opts.Replica {
				l.wake()
			}
		case inboxChannel:
			l.mu.Lock()
			if _, ok := l.held[n.Payload]; ok {
				l.emitLocked(LeaseEvent{Kind: LeaseInbox, Account: n.Payload})
			}
			l.mu.Unlock()
		}
	}
}

// announceInbox emits an inbox event for every held account with rows
// waiting.
func (l *Leases) announceInbox(ctx context.Context) {
	held := l.Held()
	if len(held) == 0 {
		return
	}
	rows, err := l.pool.Query(ctx, "SELECT DISTINCT account FROM inbox WHERE account = ANY($1)", held)
	if err != nil {
		return
	}
	defer rows.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for rows.Next() {
		var a string
		if rows.Scan(&a) == nil {
			if _, ok := l.held[a]; ok {
				l.emitLocked(LeaseEvent{Kind: LeaseInbox, Account: a})
			}
		}
	}
}

// Close stops renewing and releases every lease still held (the caller
// stopped their accounts first: SIGTERM hands the fleet over at once),
// and withdraws this replica. Events ends with the ones Close emitted.
func (l *Leases) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.done.Wait()
	l.mu.Lock()
	rel := l.released
	for a, h := range l.held {
		rel = append(rel, releasedLease{a, h.epoch})
		l.emitLocked(LeaseEvent{Kind: LeaseLost, Account: a, Epoch: h.epoch, Why: "replica stopping"})
	}
	l.held = map[string]*lease{}
	l.released = nil
	l.mu.Unlock()
	l.until.Store(0)
	var err error
	if len(rel) > 0 {
		err = l.releaseRows(ctx, rel)
	}
	if _, e := l.pool.Exec(ctx, "DELETE FROM replicas WHERE replica = $1", l.opts.Replica); e != nil {
		err = errors.Join(err, e)
	}
	l.pool.Close()
	if err != nil {
		return fmt.Errorf("store: %s: give leases back: %w", l.p.name, err)
	}
	return nil
}

// Abandon stops renewing without releasing anything, as a replica that
// died would: the leases expire by themselves. Tests use it to kill a
// replica.
func (l *Leases) Abandon() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.done.Wait()
	l.pool.Close()
}

// leaseConns is the size of the lease pool: the listening connection and
// the one rounds use, plus one for a round that overlaps a reconnect.
const leaseConns = 3

// LeaseTerm is one term of one account's lease, from lease_history.
type LeaseTerm struct {
	Account, Holder string
	Epoch           int64
	Taken           time.Time
	// PrevHolder and PrevExpires are the lease as it was when taken.
	PrevHolder  string
	PrevExpires time.Time
}

// LeaseHistory returns every term of every lease, by account and epoch:
// what shows that no account was ever held by two replicas at once.
func (p *Postgres) LeaseHistory(ctx context.Context) ([]LeaseTerm, error) {
	rows, err := p.pool.Query(ctx, `SELECT account, epoch, holder, taken_ns, prev_holder, prev_expires_ns
		FROM lease_history ORDER BY account, epoch`)
	if err != nil {
		return nil, fmt.Errorf("store: %s: lease history: %w", p.name, err)
	}
	defer rows.Close()
	var out []LeaseTerm
	for rows.Next() {
		var t LeaseTerm
		var taken, prev int64
		if err := rows.Scan(&t.Account, &t.Epoch, &t.Holder, &taken, &t.PrevHolder, &prev); err != nil {
			return nil, fmt.Errorf("store: %s: lease history: %w", p.name, err)
		}
		t.Taken, t.PrevExpires = time.Unix(0, taken), time.Unix(0, prev)
		out = append(out, t)
	}
	return out, rows.Err()
}

// LeaseHolders returns who holds each account's lease now ("" for none)
// and until when: the API marks the accounts other replicas run.
func (p *Postgres) LeaseHolders(ctx context.Context) (map[string]LeaseHolder, error) {
	rows, err := p.pool.Query(ctx, "SELECT account, holder, epoch, expires_ns FROM leases")
	if err != nil {
		return nil, fmt.Errorf("store: %s: leases: %w", p.name, err)
	}
	defer rows.Close()
	out := map[string]LeaseHolder{}
	for rows.Next() {
		var a string
		var h LeaseHolder
		var exp int64
		if err := rows.Scan(&a, &h.Replica, &h.Epoch, &exp); err != nil {
			return nil, fmt.Errorf("store: %s: leases: %w", p.name, err)
		}
		if exp > 0 && exp < math.MaxInt64 {
			h.Expires = time.Unix(0, exp)
		}
		out[a] = h
	}
	return out, rows.Err()
}

// LeaseHolder is an account's lease as stored.
type LeaseHolder struct {
	Replica string
	Epoch   int64
	Expires time.Time
}
