package service

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture/fleet"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/sessionfile"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/store/pgtest"
)

// replica is one safetyd of a PostgreSQL fleet, run in-process by Serve.
type replica struct {
	started chan *Service
	addr    chan string
	done    chan struct{} // closed when Serve returned, with err
	err     error
	cancel  context.CancelFunc
}

// startReplica runs Serve for cfg on the fleet's database; it returns at
// once: a standby waits in Serve until it leads.
func startReplica(t *testing.T, f *fleet.Accounts, cfg *config.Config, dsn string) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{started: make(chan *Service, 1), addr: make(chan string, 1), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		r.err = Serve(ctx, Setup{
			Config: cfg, Log: zap.NewNop(), Level: zap.NewAtomicLevel(), Token: fixture.Token, StoreDSN: dsn,
			Connect: func(a config.AccountConfig) (runner.Connection, error) {
				opts := f.Srv.ClientOptions()
				opts.SessionStorage = sessionfile.File{Path: cfg.SessionPath(a.Name)}
				return runner.Connection{APIID: 1, APIHash: "0123456789abcdef0123456789abcdef", Options: opts}, nil
			},
			Tune:      func(o *Options) { o.Clock = f.Srv.Clock() },
			Listening: func(a string) { r.addr <- a },
			Started:   func(_ context.Context, s *Service) { r.started <- s },
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// replicaConfig is f's configuration for one replica: the PostgreSQL
// store, its own copy of the session files (each machine has its own).
func replicaConfig(t *testing.T, f *fleet.Accounts) *config.Config {
	t.Helper()
	c := *f.Cfg
	c.Store.Driver = config.DriverPostgres
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

// Two replicas on one PostgreSQL database: the first leads and runs the
// accounts while the second stands by without listening; a PEER_FLOOD
// acknowledged by the leader survives it; when the leader stops, the
// standby takes over, restores the account as limited from the shared
// store and answers for the fleet.
func TestStandbyTakesOverWithWhatTheLeaderAcknowledged(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	f := fleet.NewAccounts(t, "alpha", "bravo")
	a := startReplica(t, f, replicaConfig(t, f), dsn)
	svcA := wait(t, a.started, "the first replica's start")
	baseA := "http://" + <-a.addr
	b := startReplica(t, f, replicaConfig(t, f), dsn)

	code, body, err := postSignals(baseA, map[string]any{"signals": []map[string]any{
		{"account": "alpha", "method": "messages.sendMessage", "code": 400, "message": "PEER_FLOOD"},
	}})
	if err != nil || code != 202 {
		t.Fatalf("ingest on the leader: %d %s %v", code, body, err)
	}
	if acct, _ := svcA.Monitor().Lookup("alpha"); acct.Snapshot().State != monitor.Limited {
		t.Fatalf("alpha on the leader is %s", acct.Snapshot().State)
	}
	select {
	case <-b.addr:
		t.Fatal("the standby listens while the first replica leads")
	case <-b.started:
		t.Fatal("the standby started while the first replica leads")
	default:
	}

	a.cancel() // SIGTERM: the leader hands over at once
	wait(t, a.done, "the first replica's stop")
	if a.err != nil {
		t.Fatalf("first replica: %v", a.err)
	}
	svcB := wait(t, b.started, "the standby's takeover")
	acct, ok := svcB.Monitor().Lookup("alpha")
	if !ok || acct.Snapshot().State != monitor.Limited {
		t.Fatalf("alpha after the takeover: %v %v, want limited", ok, acct.Snapshot().State)
	}
	baseB := "http://" + <-b.addr
	var list struct {
		Accounts []struct{ Name, State string } `json:"accounts"`
	}
	fixture.GetJSON(t, baseB+"/api/v1/accounts", &list)
	if len(list.Accounts) != 2 {
		t.Errorf("the new leader lists %+v", list.Accounts)
	}
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
