package service

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture/fleet"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/sessionfile"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/store"
	"github.com/tgsafety/tgsafety/monitor/store/pgtest"
)

// replica is one safetyd of a PostgreSQL fleet, run in-process by Serve.
type replica struct {
	svc    *Service
	base   string
	leases chan store.LeaseEvent // every lease event once acted on
	done   chan struct{}         // closed when Serve returned, with err
	err    error
	cancel context.CancelFunc
}

// startReplica runs Serve for cfg on the fleet's database and returns once
// it serves.
func startReplica(t *testing.T, f *fleet.Accounts, cfg *config.Config, dsn string) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{leases: make(chan store.LeaseEvent, 1024), done: make(chan struct{}), cancel: cancel}
	started := make(chan *Service, 1)
	addr := make(chan string, 1)
	go func() {
		defer close(r.done)
		r.err = Serve(ctx, Setup{
			Config: cfg, Log: zap.NewNop(), Level: zap.NewAtomicLevel(), Token: fixture.Token, StoreDSN: dsn,
			Connect: func(a config.AccountConfig) (runner.Connection, error) {
				opts := f.Srv.ClientOptions()
				opts.SessionStorage = sessionfile.File{Path: cfg.SessionPath(a.Name)}
				return runner.Connection{APIID: 1, APIHash: "0123456789abcdef0123456789abcdef", Options: opts}, nil
			},
			Tune: func(o *Options) {
				o.Clock = f.Srv.Clock()
				o.LeaseApplied = func(e store.LeaseEvent) { r.leases <- e }
			},
			Listening: func(a string) { addr <- a },
			Started:   func(_ context.Context, s *Service) { started <- s },
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	r.base = "http://" + wait(t, addr, "the replica's listener")
	r.svc = wait(t, started, "the replica's start")
	return r
}

// expect waits for n lease events of kind k and returns their accounts,
// sorted.
func (r *replica) expect(t *testing.T, k store.LeaseEventKind, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		e := wait(t, r.leases, "a lease event")
		if e.Kind != k {
			t.Fatalf("lease event %s %s, want %s", e.Kind, e.Account, k)
		}
		out = append(out, e.Account)
	}
	sort.Strings(out)
	return out
}

// replicaConfig is f's configuration for one replica: the PostgreSQL
// store with short leases, its own copy of the session files (each
// machine has its own).
func replicaConfig(t *testing.T, f *fleet.Accounts) *config.Config {
	t.Helper()
	c := *f.Cfg
	c.Store.Driver = config.DriverPostgres
	c.Store.LeaseTTL = limits.Duration(3 * time.Second)
	c.Store.LeaseMargin = limits.Duration(time.Second)
	c.SessionsDir = filepath.Join(t.TempDir(), "sessions")
	if err := os.MkdirAll(c.SessionsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Accounts {
		b, err := os.ReadFile(f.Cfg.SessionPath(a.Name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.SessionPath(a.Name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &c
}

// state is account name's state on a replica's monitor ("" when it does
// not run it).
func (r *replica) state(name string) string {
	acct, ok := r.svc.Monitor().Lookup(name)
	if !ok {
		return ""
	}
	return acct.Snapshot().State.String()
}

func peerFlood(t *testing.T, base, account string) {
	t.Helper()
	code, body, err := postSignals(base, map[string]any{"signals": []map[string]any{
		{"account": account, "method": "messages.sendMessage", "code": 400, "message": "PEER_FLOOD"},
	}})
	if err != nil || code != 202 {
		t.Fatalf("PEER_FLOOD for %s on %s: %d %s %v", account, base, code, body, err)
	}
}

// Two replicas on one PostgreSQL database split four accounts: the first
// runs all four until the second joins, then gives two back, which the
// second takes. A report posted to either replica reaches the account's
// holder (through the inbox when it is the other one); either replica
// lists all four accounts, saying who runs the others. On SIGTERM the
// first hands its accounts over at once, and the second restores them as
// the first left them (limited).
func TestReplicasSplitTheFleetAndHandOver(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	f := fleet.NewAccounts(t, "alpha", "bravo", "charlie", "delta")
	a := startReplica(t, f, replicaConfig(t, f), dsn)
	all := a.expect(t, store.LeaseTaken, 4)
	peerFlood(t, a.base, "alpha")
	if st := a.state("alpha"); st != monitor.Limited.String() {
		t.Fatalf("alpha on its holder is %s", st)
	}

	b := startReplica(t, f, replicaConfig(t, f), dsn)
	given := a.expect(t, store.LeaseGive, 2)
	taken := b.expect(t, store.LeaseTaken, 2)
	if len(given) != 2 || given[0] != taken[0] || given[1] != taken[1] {
		t.Fatalf("a gave %v, b took %v", given, taken)
	}
	for _, n := range given {
		if a.state(n) != "" {
			t.Errorf("a still runs %s after giving it back", n)
		}
	}
	// A report for an account the other replica runs.
	var onA, onB string
	for _, n := range all {
		switch {
		case a.state(n) != "" && onA == "":
			onA = n
		case b.state(n) != "" && onB == "":
			onB = n
		}
	}
	peerFlood(t, b.base, onA)
	if e := wait(t, a.leases, "the inbox report"); e.Kind != store.LeaseInbox || e.Account != onA {
		t.Fatalf("a: %s %s, want the inbox of %s", e.Kind, e.Account, onA)
	}
	if st := a.state(onA); st != monitor.Limited.String() {
		t.Fatalf("%s on its holder after a report posted to the other replica: %s", onA, st)
	}
	var list struct {
		Accounts []struct{ Name, State, Replica string } `json:"accounts"`
	}
	fixture.GetJSON(t, b.base+"/api/v1/accounts", &list)
	if len(list.Accounts) != 4 {
		t.Fatalf("b lists %+v", list.Accounts)
	}
	for _, acct := range list.Accounts {
		local := b.state(acct.Name) != ""
		if local != (acct.Replica == "") {
			t.Errorf("b lists %+v (runs it: %v)", acct, local)
		}
	}

	a.cancel() // SIGTERM: a hands over at once
	wait(t, a.done, "the first replica's stop")
	if a.err != nil {
		t.Fatalf("first replica: %v", a.err)
	}
	b.expect(t, store.LeaseTaken, 2)
	if st := b.state("alpha"); st != monitor.Limited.String() {
		t.Fatalf("alpha after the hand-over: %q, want limited", st)
	}
	if st := b.state(onA); st != monitor.Limited.String() {
		t.Fatalf("%s after the hand-over: %q, want limited", onA, st)
	}
	_ = onB
}

// wait bounds a wait on a replica (goroutines doing real network and
// database work), so that a broken build fails instead of hanging.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: nothing after 2 minutes", what)
		panic("unreachable")
	}
}
