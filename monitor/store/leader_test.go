package store

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/store/pgtest"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

// guard bounds waits on the database server (another process), so that a
// broken build fails instead of hanging; nothing here is timed by it.
const guard = 2 * time.Minute

// quick are leadership settings for tests on the real clock.
func quick(holder string) LeaderOptions {
	return LeaderOptions{Holder: holder, PingEvery: 20 * time.Millisecond, SessionTimeout: 2 * time.Second,
		TrustWindow: time.Second, Margin: 50 * time.Millisecond}
}

type leadResult struct {
	l   *Leadership
	err error
}

func leadAsync(ctx context.Context, p *Postgres, o LeaderOptions) chan leadResult {
	ch := make(chan leadResult, 1)
	go func() {
		l, err := p.Lead(ctx, o)
		ch <- leadResult{l, err}
	}()
	return ch
}

// twoReplicas opens two stores on one new database, the first leading.
func twoReplicas(t *testing.T) (a, b *Postgres, la *Leadership) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	a, b = openPG(t, dsn), openPG(t, dsn)
	la, err := a.Lead(context.Background(), quick("a"))
	if err != nil {
		t.Fatal(err)
	}
	return a, b, la
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(guard):
		t.Fatalf("%s: nothing after %v", what, guard)
		panic("unreachable")
	}
}

// One leader at a time: a second replica waits while the first leads and
// takes over, with the next epoch, as soon as the first releases.
func TestLeadershipHandsOverOnRelease(t *testing.T) {
	_, b, la := twoReplicas(t)
	ctx := context.Background()
	if !la.Trusted() {
		t.Fatal("new leader not trusted")
	}
	bCh := leadAsync(ctx, b, quick("b"))
	select {
	case r := <-bCh:
		t.Fatalf("b became leader while a leads: %+v", r)
	default:
	}
	la.Release()
	rb := wait(t, bCh, "b's leadership")
	if rb.err != nil {
		t.Fatal(rb.err)
	}
	defer rb.l.Release()
	if rb.l.Epoch() != la.Epoch()+1 {
		t.Errorf("epochs %d then %d", la.Epoch(), rb.l.Epoch())
	}
	if la.Trusted() {
		t.Error("released leader still trusted")
	}
	var holder string
	queryRow(t, b, "SELECT holder FROM leadership WHERE id = 1", &holder)
	if holder != "b" {
		t.Errorf("holder %q", holder)
	}
}

// A leader whose term ended cannot write: its Append and SaveSnapshots
// fail with ErrFenced and write nothing, while the new leader's succeed.
func TestFencedWritesRefusedAfterTakeover(t *testing.T) {
	a, b, la := twoReplicas(t)
	ctx := context.Background()
	a.Fence(la.Epoch())
	ev := []monitor.Event{{Time: t0, Account: "x", Type: monitor.EventState, State: monitor.OK, Seq: 1}}
	if err := a.Append(ctx, ev); err != nil {
		t.Fatalf("leader's append: %v", err)
	}
	la.Release()
	lb, err := b.Lead(ctx, quick("b"))
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release()
	b.Fence(lb.Epoch())
	if err := a.Append(ctx, ev); !errors.Is(err, ErrFenced) {
		t.Errorf("old leader's append = %v, want ErrFenced", err)
	}
	if err := a.SaveSnapshots(ctx, []monitor.Snapshot{{Account: "x", At: t0}}); !errors.Is(err, ErrFenced) {
		t.Errorf("old leader's snapshots = %v, want ErrFenced", err)
	}
	if n := count(t, b, ""); n != 1 {
		t.Errorf("%d events stored, want 1 (the old leader's second append refused)", n)
	}
	if err := b.Append(ctx, ev); err != nil {
		t.Errorf("new leader's append: %v", err)
	}
}

// A leader that cannot reach its lock session loses its term at once
// (Lost, not trusted), and the server frees the lock for the standby.
func TestLeadershipLostWhenTheSessionEnds(t *testing.T) {
	_, b, la := twoReplicas(t)
	ctx := context.Background()
	defer la.Release()
	bCh := leadAsync(ctx, b, quick("b"))
	// The network drops the leader's session (what a partition or the
	// server's idle_session_timeout does).
	var n int
	queryRow(t, b, "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'safetyd leadership' AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)", &n)
	if n != 1 {
		t.Fatalf("terminated %d leadership sessions, want 1", n)
	}
	wait(t, la.Lost(), "a's loss")
	if la.Trusted() {
		t.Error("leader still trusted after losing its session")
	}
	rb := wait(t, bCh, "b's leadership")
	if rb.err != nil {
		t.Fatal(rb.err)
	}
	defer rb.l.Release()
	if rb.l.Epoch() <= la.Epoch() {
		t.Errorf("epochs %d then %d", la.Epoch(), rb.l.Epoch())
	}
}

// pausableClock is a virtual clock whose Now can jump ahead without
// firing anything, as the wall clock does for a process that was stopped
// (SIGSTOP, a stalled VM) and runs again.
type pausableClock struct {
	*vclock.Clock
	skew atomic.Int64
}

func (c *pausableClock) Now() time.Time { return c.Clock.Now().Add(time.Duration(c.skew.Load())) }

// A paused leader (SIGSTOP, a stalled VM) distrusts itself as soon as it
// runs again, before any ping: Trusted is false the moment its clock is
// past the trust window, and the keeper ends the term at its next tick.
func TestPausedLeaderDistrustsItself(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := openPG(t, dsn)
	clk := &pausableClock{Clock: vclock.New(t0)}
	o := quick("a")
	o.Clock = clk
	ch := leadAsync(context.Background(), a, o)
	// Lead waits Margin on the virtual clock, beside the keeper's ticker:
	// once both are scheduled, pass the margin.
	clk.BlockUntil(2)
	clk.Advance(o.Margin)
	r := wait(t, ch, "Lead")
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.l.Release()
	if !r.l.Trusted() {
		t.Fatal("not trusted at the start")
	}
	clk.skew.Store(int64(o.TrustWindow + o.Margin)) // the pause
	if r.l.Trusted() {
		t.Error("trusted past the trust window without a ping")
	}
	clk.Advance(o.PingEvery)
	wait(t, r.l.Lost(), "the term's end")
}

func TestLeaderOptionsRefuseATrustWindowTheServerCannotHonour(t *testing.T) {
	o := LeaderOptions{PingEvery: time.Second, SessionTimeout: 5 * time.Second, TrustWindow: 4500 * time.Millisecond}
	if err := o.defaults(); err == nil {
		t.Error("trust window + ping period >= session timeout accepted")
	}
}
