package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/store/pgtest"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

// guard bounds waits on the database server (another process), so that a
// broken build fails instead of hanging; nothing here is timed by it.
const guard = 2 * time.Minute

var leaseEpoch = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// testLeases are lease settings on a virtual clock.
func testLeases(name string, clk *vclock.Clock) LeaseOptions {
	return LeaseOptions{Replica: name, TTL: 30 * time.Second, Margin: 5 * time.Second, MaxSkew: -1, Clock: clk}
}

// replicaLeases is one replica's leases in a test: its events as they
// come, and its rounds.
type replicaLeases struct {
	*Leases
	st     *Postgres
	events chan LeaseEvent
}

// startLeases starts a replica's leases for accounts on its own store
// connection, with no background rounds: the test runs each (round).
func startLeases(t *testing.T, dsn string, accounts []string, o LeaseOptions) *replicaLeases {
	t.Helper()
	st := openPG(t, dsn)
	o.manual = true
	l, err := st.Leases(context.Background(), accounts, o)
	if err != nil {
		t.Fatal(err)
	}
	st.FenceWith(l)
	r := &replicaLeases{Leases: l, st: st, events: make(chan LeaseEvent, 1024)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			evs, err := l.Events(ctx)
			if err != nil {
				return
			}
			for _, e := range evs {
				r.events <- e
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = l.Close(context.Background())
	})
	return r
}

// next waits for r's next lease event.
func (r *replicaLeases) next(t *testing.T) LeaseEvent {
	t.Helper()
	select {
	case e := <-r.events:
		return e
	case <-time.After(guard):
		t.Fatalf("%s: no lease event after %v", r.Replica(), guard)
		panic("unreachable")
	}
}

// expect takes r's next n events, all of kind k, and returns their accounts.
func (r *replicaLeases) expect(t *testing.T, k LeaseEventKind, n int) []string {
	t.Helper()
	var out []string
	for range n {
		e := r.next(t)
		if e.Kind != k {
			t.Fatalf("%s: %s %s (epoch %d), want %s", r.Replica(), e.Kind, e.Account, e.Epoch, k)
		}
		out = append(out, e.Account)
	}
	return out
}

// quiet checks r has no event waiting.
func (r *replicaLeases) quiet(t *testing.T) {
	t.Helper()
	select {
	case e := <-r.events:
		t.Fatalf("%s: unexpected %s %s", r.Replica(), e.Kind, e.Account)
	default:
	}
}

// soleHolder starts replica "a" on a new database with n accounts and
// lets it take them all.
func soleHolder(t *testing.T, n int) (dsn string, clk *vclock.Clock, accts []string, a *replicaLeases) {
	t.Helper()
	dsn = pgtest.NewDatabase(t)
	clk = vclock.New(leaseEpoch)
	accts = names(n)
	a = startLeases(t, dsn, accts, testLeases("a", clk))
	clk.Advance(10 * time.Second)
	a.round()
	a.expect(t, LeaseTaken, n)
	return dsn, clk, accts, a
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("acct-%02d", i)
	}
	return out
}

// checkHistory checks no two terms of an account overlapped: each was
// taken Margin after its predecessor expired or was released.
func checkHistory(t *testing.T, st *Postgres, margin time.Duration) []LeaseTerm {
	t.Helper()
	h, err := st.LeaseHistory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, term := range h {
		if i > 0 && h[i-1].Account == term.Account && h[i-1].Epoch >= term.Epoch {
			t.Errorf("%s: epoch %d after %d", term.Account, term.Epoch, h[i-1].Epoch)
		}
		released := term.PrevExpires.UnixNano() == 0
		if !released && term.Taken.Before(term.PrevExpires.Add(margin)) {
			t.Errorf("%s epoch %d taken by %s at %v, before %s's lease expired (%v) plus the margin",
				term.Account, term.Epoch, term.Holder, term.Taken, term.PrevHolder, term.PrevExpires)
		}
	}
	return h
}

// Three replicas starting together split 30 accounts 10/10/10 once they
// have announced themselves, and no account is taken twice.
func TestLeasesSplitTheFleetEvenly(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	clk := vclock.New(leaseEpoch)
	accts := names(30)
	var rs []*replicaLeases
	for _, n := range []string{"a", "b", "c"} {
		r := startLeases(t, dsn, accts, testLeases(n, clk))
		r.round() // announced; joining
		rs = append(rs, r)
	}
	clk.Advance(10 * time.Second) // the join delay (RenewEvery)
	for _, r := range rs {
		r.round()
	}
	seen := map[string]string{}
	for _, r := range rs {
		for _, a := range r.expect(t, LeaseTaken, 10) {
			if prev, dup := seen[a]; dup {
				t.Fatalf("%s taken by %s and %s", a, prev, r.Replica())
			}
			seen[a] = r.Replica()
			if !r.Trusted(a) {
				t.Errorf("%s does not trust its lease of %s", r.Replica(), a)
			}
		}
	}
	for _, r := range rs {
		r.quiet(t)
	}
	checkHistory(t, rs[0].st, 5*time.Second)
}

// A replica takes a fleet larger than one statement's batch (takeBatch)
// in one round, every account once.
func TestALargeFleetIsTakenInBatchesInOneRound(t *testing.T) {
	n := 2*takeBatch + takeBatch/2
	_, _, accts, a := soleHolder(t, n)
	if got := a.Held(); len(got) != len(accts) {
		t.Fatalf("a holds %d of %d", len(got), len(accts))
	}
	a.quiet(t)
	checkHistory(t, a.st, 5*time.Second)
}

// A replica that stops renewing (dies) keeps its accounts until its
// leases expired plus the margin, not a moment less; then the survivor
// takes them with a new epoch.
func TestLeasesOfADeadReplicaAreTakenAfterTheMargin(t *testing.T) {
	dsn, clk, accts, a := soleHolder(t, 4)
	b := startLeases(t, dsn, accts, testLeases("b", clk))
	a.Abandon() // killed: no renewal, no release
	// Until the leases expired (30 s after a's last renewal at +10 s) plus
	// the margin, b takes nothing, whatever its rounds.
	deadline := leaseEpoch.Add(10*time.Second + 30*time.Second + 5*time.Second)
	for clk.Now().Before(deadline) {
		b.round()
		if got := b.Held(); len(got) != 0 {
			t.Fatalf("at %v b holds %v before a's leases expired plus the margin", clk.Now().Sub(leaseEpoch), got)
		}
		clk.Advance(time.Second)
	}
	clk.Advance(time.Second)
	b.round()
	taken := b.expect(t, LeaseTaken, 4)
	if len(taken) != 4 {
		t.Fatalf("b took %v", taken)
	}
	for _, term := range checkHistory(t, b.st, 5*time.Second) {
		if term.Holder == "b" && term.Epoch != 2 {
			t.Errorf("%s: b's term is epoch %d, want 2", term.Account, term.Epoch)
		}
	}
}

// A paused replica (its clock stopped while the fleet's went on) cannot
// write over the account's new holder: its events and snapshots are
// refused by the epoch, the new holder's are stored, and once it resumes
// it trusts nothing and reports the lease lost.
func TestAPausedHolderIsFencedOut(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	fleet := vclock.New(leaseEpoch)
	paused := vclock.New(leaseEpoch)
	accts := []string{"x"}
	a := startLeases(t, dsn, accts, testLeases("a", paused))
	paused.Advance(10 * time.Second)
	a.round()
	a.expect(t, LeaseTaken, 1)
	fleet.Advance(10 * time.Second)
	b := startLeases(t, dsn, accts, testLeases("b", fleet))
	fleet.Advance(50 * time.Second) // a's lease expired 10 s ago
	b.round()
	b.expect(t, LeaseTaken, 1)

	ev := func(risk float64) monitor.Event {
		return monitor.Event{Account: "x", Type: monitor.EventSignal, Time: leaseEpoch, Risk: risk, Seq: 1}
	}
	err := a.st.Append(context.Background(), []monitor.Event{ev(1), {Account: "", Type: monitor.EventState, Time: leaseEpoch}})
	var fe *FencedError
	if !errors.As(err, &fe) || len(fe.Accounts) != 1 || fe.Accounts[0] != "x" || !errors.Is(err, ErrFenced) {
		t.Fatalf("paused holder's append: %v, want fenced x", err)
	}
	if err := a.st.SaveSnapshots(context.Background(), []monitor.Snapshot{{Account: "x", At: leaseEpoch.Add(time.Hour)}}); !errors.Is(err, ErrFenced) {
		t.Fatalf("paused holder's snapshot: %v, want fenced", err)
	}
	if err := b.st.Append(context.Background(), []monitor.Event{ev(2)}); err != nil {
		t.Fatalf("new holder's append: %v", err)
	}
	got, err := b.st.Latest(context.Background(), "x", 10)
	if err != nil || len(got) != 1 || got[0].Risk != 2 {
		t.Fatalf("x's events: %+v %v, want only the new holder's", got, err)
	}
	snaps, _ := b.st.LoadSnapshots(context.Background())
	if len(snaps) != 0 {
		t.Fatalf("the paused holder's snapshot was saved: %+v", snaps)
	}
	// Resumed: past its trust, it acts for nothing and says so.
	paused.Advance(40 * time.Second)
	if a.Trusted("x") {
		t.Error("a resumed past its TTL still trusts its lease")
	}
	a.round()
	if e := a.next(t); e.Kind != LeaseLost || e.Account != "x" {
		t.Fatalf("a after resuming: %s %s, want lost x", e.Kind, e.Account)
	}
}

// halfGivenBack starts replica a with 6 accounts and then b: a gives 3
// back (each trusted until it is stopped, then Done), not yet released.
func halfGivenBack(t *testing.T) (clk *vclock.Clock, a, b *replicaLeases, given []string) {
	t.Helper()
	dsn, clk, accts, a := soleHolder(t, 6)
	b = startLeases(t, dsn, accts, testLeases("b", clk))
	clk.Advance(10 * time.Second) // b's join ends
	a.round()                     // a sees b: its share is 3
	for range 3 {
		e := a.next(t)
		if e.Kind != LeaseGive {
			t.Fatalf("a: %s %s, want give", e.Kind, e.Account)
		}
		if !a.Trusted(e.Account) {
			t.Errorf("a stopped trusting %s before it was given back", e.Account)
		}
		given = append(given, e.Account)
		e.Done()
	}
	return clk, a, b, given
}

// A lone replica holds the whole fleet; when a second joins, it gives
// half back (stopping each before release), and the newcomer takes them;
// Close hands the rest over at once, without waiting for expiry.
func TestLeasesRebalanceAndHandOverOnClose(t *testing.T) {
	_, a, b, given := halfGivenBack(t)
	a.round() // releases what was given back
	b.round()
	taken := b.expect(t, LeaseTaken, 3)
	if fmt.Sprint(sortStrings(taken)) != fmt.Sprint(sortStrings(given)) {
		t.Errorf("b took %v, a gave %v", taken, given)
	}
	for _, g := range given {
		if a.Trusted(g) {
			t.Errorf("a still trusts %s after giving it back", g)
		}
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// No clock advance: the release and its NOTIFY hand the rest over.
	select {
	case <-b.poke:
	case <-time.After(guard):
		t.Fatal("b was not told of a's release")
	}
	b.round()
	b.expect(t, LeaseTaken, 3)
	checkHistory(t, b.st, 5*time.Second)
}

// A replica paused (SIGSTOP) inside a release, the rows it gives back
// locked and not committed, does not keep those accounts from the fleet:
// the server ends its idle transaction, and another replica takes them
// once their leases expired plus the margin. Without the lease
// connections' idle_in_transaction_session_timeout the rows stayed locked
// for as long as the pause (the three-process test's 16 of 300 accounts).
func TestAReplicaPausedInsideAReleaseDoesNotKeepItsAccounts(t *testing.T) {
	clk, a, b, given := halfGivenBack(t)
	accts := names(6)
	paused, resume, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	a.releasing = func() {
		close(paused)
		<-resume
	}
	go func() {
		defer close(done)
		a.round() // releases what was given back, and stops inside
	}()
	resumed := sync.OnceFunc(func() { close(resume) })
	t.Cleanup(func() { // before a's Close, also when the test fails
		resumed()
		<-done
		a.releasing = nil
	})
	select {
	case <-paused:
	case <-time.After(guard):
		t.Fatal("a's release never ran")
	}
	// a stays paused; every lease it had expires (its last renewal was at
	// +20 s) and the margin passes, so b's share is the whole fleet.
	clk.Advance(45 * time.Second)
	// Wait, on a connection of the test's own, for the locks on the given
	// rows to go: the server ends a's transaction after fencedIdleTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), 15*fencedIdleTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, b.st.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT account FROM leases WHERE account = ANY($1) FOR UPDATE", given)
		return err
	})
	if err != nil {
		t.Fatalf("the rows a paused replica was releasing are still locked after %v: %v", 15*fencedIdleTimeout, err)
	}
	b.round()
	taken := b.expect(t, LeaseTaken, 6)
	if fmt.Sprint(sortStrings(taken)) != fmt.Sprint(accts) {
		t.Errorf("b took %v, want all of %v", taken, accts)
	}
	resumed() // a resumes: its release fails, its leases are b's
	<-done
	for _, acct := range accts {
		if a.Trusted(acct) {
			t.Errorf("a, resumed past its TTL, trusts its lease of %s", acct)
		}
	}
	checkHistory(t, b.st, 5*time.Second)
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// A report posted to a replica that does not hold the account waits in
// the inbox; the holder hears of it, and Deliver moves it into the
// events once; a fenced Deliver moves nothing.
func TestInboxReachesTheHolderOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	clk := vclock.New(leaseEpoch)
	a := startLeases(t, dsn, []string{"x"}, testLeases("a", clk))
	clk.Advance(10 * time.Second)
	a.round()
	a.expect(t, LeaseTaken, 1)
	other := openPG(t, dsn)
	report := monitor.Event{Account: "x", Type: monitor.EventSignal, Time: leaseEpoch, Method: "messages.sendMessage"}
	if err := other.Enqueue(context.Background(), []monitor.Event{report}); err != nil {
		t.Fatal(err)
	}
	if e := a.next(t); e.Kind != LeaseInbox || e.Account != "x" {
		t.Fatalf("a: %s %s, want inbox x", e.Kind, e.Account)
	}
	items, err := a.st.Inbox(context.Background(), "x", 10)
	if err != nil || len(items) != 1 || items[0].Event.Method != "messages.sendMessage" {
		t.Fatalf("inbox: %+v %v", items, err)
	}
	applied := items[0].Event
	applied.Seq = 7
	// A replica without the lease cannot deliver it.
	stranger := openPG(t, dsn)
	so := testLeases("s", clk)
	so.manual = true
	sl, err := stranger.Leases(context.Background(), []string{"x"}, so)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Abandon()
	stranger.FenceWith(sl)
	if err := stranger.Deliver(context.Background(), []int64{items[0].ID}, []monitor.Event{applied}); !errors.Is(err, ErrFenced) {
		t.Fatalf("a stranger's delivery: %v, want fenced", err)
	}
	if err := a.st.Deliver(context.Background(), []int64{items[0].ID}, []monitor.Event{applied}); err != nil {
		t.Fatal(err)
	}
	left, _ := a.st.Inbox(context.Background(), "x", 10)
	evs, _ := a.st.After(context.Background(), "x", 0, 10)
	if len(left) != 0 || len(evs) != 1 || evs[0].Seq != 7 {
		t.Fatalf("after delivery: inbox %+v, events %+v", left, evs)
	}
}

// A replica that took a lease but cannot restore its account gives it
// back at once (GiveBack): the lease is free on its next round, not
// after the TTL, and the replica no longer trusts it.
func TestALeaseThatCannotBeUsedIsGivenBack(t *testing.T) {
	_, _, accts, a := soleHolder(t, 2)
	epoch, ok := a.Epoch(accts[0])
	if !ok {
		t.Fatalf("a holds no epoch of %s", accts[0])
	}
	a.GiveBack(accts[0], epoch)
	if a.Trusted(accts[0]) {
		t.Fatalf("a still trusts %s after giving it back", accts[0])
	}
	a.round() // releases it; takes it again, its share being both
	if got := a.expect(t, LeaseTaken, 1); got[0] != accts[0] {
		t.Fatalf("a took %v again, want %s", got, accts[0])
	}
	if again, _ := a.Epoch(accts[0]); again != epoch+1 {
		t.Errorf("retaken at epoch %d, want %d (a new term)", again, epoch+1)
	}
	checkHistory(t, a.st, 5*time.Second)
}
