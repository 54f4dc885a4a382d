package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture/fleet"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/sessionfile"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/store"
	"github.com/tgsafety/tgsafety/monitor/testbin"
	"github.com/tgsafety/tgsafety/monitor/vclock"
	"github.com/tgsafety/tgsafety/testserver"
)

// daemonWorld is a test server with signed-in accounts and a daemon
// configuration pointing at it, for running serve (the production
// wiring) in-process.
type daemonWorld struct {
	srv *testserver.Server
	cfg *config.Config
	// tune, when set, changes the service's options after the world's own.
	tune func(*Options)
}

func newDaemonWorld(t *testing.T, names ...string) *daemonWorld {
	t.Helper()
	d := fleet.NewAccounts(t, names...)
	return &daemonWorld{srv: d.Srv, cfg: d.Cfg}
}

// start runs serve until the returned stop is called; stop waits for the
// ordered shutdown and fails the test if serve failed.
func (w *daemonWorld) start(t *testing.T) (base string, svc *Service, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	var addr string
	go func() {
		done <- Serve(ctx, Setup{
			Config: w.cfg, Log: zap.NewNop(), Level: zap.NewAtomicLevel(), Token: fixture.Token,
			Connect: func(a config.AccountConfig) (runner.Connection, error) {
				opts := w.srv.ClientOptions()
				opts.SessionStorage = sessionfile.File{Path: w.cfg.SessionPath(a.Name)}
				return runner.Connection{APIID: 1, APIHash: "0123456789abcdef0123456789abcdef", Options: opts}, nil
			},
			Tune: func(o *Options) {
				o.Clock = w.srv.Clock()
				if w.tune != nil {
					w.tune(o)
				}
			},
			Listening: func(a string) { addr = a },
			Started: func(_ context.Context, s *Service) {
				svc = s
				close(started)
			},
		})
	}()
	select {
	case <-started:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	return "http://" + addr, svc, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
}

// seedStore writes a snapshot and events into the world's store before
// the daemon starts: what a crash leaves behind.
func (w *daemonWorld) seedStore(t *testing.T, snap monitor.Snapshot, evs ...monitor.Event) {
	t.Helper()
	st, err := store.OpenSQLite(w.cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveSnapshots(context.Background(), []monitor.Snapshot{snap}); err != nil {
		t.Fatal(err)
	}
	if err := st.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func postSignals(base string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/signals", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+fixture.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, nil
}

// A restarted daemon restores each account's state, its end and the risk
// from the store, and a reported signal is in the history exactly once.
func TestRestartRestoresStateFromStore(t *testing.T) {
	w := newDaemonWorld(t, "alpha", "bravo")
	base, _, stop := w.start(t)
	for _, s := range []map[string]any{
		{"account": "alpha", "method": "messages.sendMessage", "code": 400, "message": "PEER_FLOOD"},
		{"account": "bravo", "method": "contacts.resolveUsername", "code": 420, "message": "FLOOD_WAIT_3600"},
	} {
		if code, body, err := postSignals(base, s); err != nil || code != http.StatusAccepted {
			t.Fatalf("POST %v: %d %s %v", s, code, body, err)
		}
	}
	before := map[string]view.Account{}
	var list struct {
		Accounts []view.Account `json:"accounts"`
	}
	fixture.GetJSON(t, base+"/api/v1/accounts", &list)
	for _, a := range list.Accounts {
		before[a.Name] = a
	}
	if before["alpha"].State != monitor.Limited || before["bravo"].State != monitor.Throttled {
		t.Fatalf("before restart: alpha %s, bravo %s; want limited, throttled", before["alpha"].State, before["bravo"].State)
	}
	stop()

	base, svc, stop := w.start(t)
	defer stop()
	fixture.GetJSON(t, base+"/api/v1/accounts", &list)
	for _, a := range list.Accounts {
		b := before[a.Name]
		if a.State != b.State || !a.Since.Equal(b.Since) || !a.Until.Equal(b.Until) || a.Risk != b.Risk {
			t.Errorf("%s after restart: %s since %s until %s risk %v; before: %s since %s until %s risk %v",
				a.Name, a.State, a.Since, a.Until, a.Risk, b.State, b.Since, b.Until, b.Risk)
		}
	}
	// Still throttled after restart: the flood wait is honoured by the
	// monitor's FloodWaitUntil, so the guard keeps refusing the method.
	bravo, _ := svc.Monitor().Lookup("bravo")
	if until := bravo.FloodWaitUntil("contacts.resolveUsername", w.srv.Clock().Now()); until.IsZero() {
		t.Error("bravo's flood wait on contacts.resolveUsername was not restored")
	}
	var evs struct {
		Events []monitor.Event `json:"events"`
	}
	fixture.GetJSON(t, base+"/api/v1/accounts/alpha/events?since=2000-01-01T00:00:00Z", &evs)
	n := 0
	for _, e := range evs.Events {
		if e.Type == monitor.EventSignal && e.Signal.Kind == signal.PeerFlood {
			n++
		}
	}
	if n != 1 {
		t.Errorf("alpha's history has %d PEER_FLOOD signals, want exactly 1: %+v", n, evs.Events)
	}
}

// The durability promise, with a real process: signals posted under load
// and acknowledged (202) survive SIGKILL. Unacknowledged ones may or may
// not be there; none may be there twice.
func TestSIGKILLUnderIngestLosesNoAcknowledgedSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the daemon")
	}
	dir := t.TempDir()
	bin := testbin.Path(t, "safetyd")
	port := fixture.FreePort(t)
	dbPath := filepath.Join(dir, "history.db")
	cmd := exec.Command(bin, "demo", "--listen", port, "--accounts", "2", "--traffic=false", "--quiet",
		"--speed", "1", "--store", dbPath, "--token", fixture.Token)
	notify, ready := testbin.NotifySocket(t)
	cmd.Env = append(os.Environ(), notify)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	base := "http://" + port
	waitReady(t, ready, &stderr)

	// Workers post batches of 50; each signal carries a unique wait so
	// that rows can be matched to acknowledgements.
	const workers, batch, minAcked = 4, 50, 3000
	var (
		next  atomic.Int64
		mu    sync.Mutex
		acked = map[int64]bool{}
		wg    sync.WaitGroup
		stopC = make(chan struct{})
		// reached closes when minAcked signals are acknowledged.
		reached     = make(chan struct{})
		reachedOnce sync.Once
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopC:
					return
				default:
				}
				ids := make([]int64, batch)
				sigs := make([]map[string]any, batch)
				for i := range sigs {
					ids[i] = next.Add(1)
					sigs[i] = map[string]any{"account": "demo-01-careful", "method": "messages.sendMessage", "code": 420, "message": fmt.Sprintf("FLOOD_WAIT_%d", ids[i])}
				}
				code, _, err := postSignals(base, map[string]any{"signals": sigs})
				if err != nil {
					return // the daemon is gone
				}
				if code == http.StatusAccepted {
					mu.Lock()
					for _, id := range ids {
						acked[id] = true
					}
					if len(acked) >= minAcked {
						reachedOnce.Do(func() { close(reached) })
					}
					mu.Unlock()
				}
			}
		}()
	}
	loadStart := time.Now()
	workersGone := make(chan struct{})
	go func() {
		wg.Wait()
		close(workersGone)
	}()
	select {
	case <-reached:
	case <-workersGone: // every worker saw the daemon gone
		t.Fatalf("daemon stopped answering before %d signals were acknowledged: %s", minAcked, stderr.String())
	}
	loadTime := time.Since(loadStart)
	// Kill while the workers are still posting.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()
	close(stopC)
	wg.Wait()

	st, err := store.OpenSQLite(dbPath, store.Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer st.Close()
	evs, err := st.Events(context.Background(), "demo-01-careful", time.Time{}, store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int64]int{}
	for _, e := range evs {
		if e.Type == monitor.EventSignal {
			stored[int64(e.Signal.Wait/time.Second)]++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for id := range acked {
		if stored[id] != 1 {
			lost++
		}
	}
	dups := 0
	for _, n := range stored {
		if n > 1 {
			dups++
		}
	}
	t.Logf("acknowledged %d in %s (%.0f signals/s over HTTP, batches of %d, %d workers), stored %d signal rows, sent %d",
		len(acked), loadTime.Round(time.Millisecond), float64(len(acked))/loadTime.Seconds(), batch, workers, len(stored), next.Load())
	if lost > 0 || dups > 0 {
		t.Fatalf("%d acknowledged signals missing, %d stored more than once", lost, dups)
	}
	if len(evs) == store.MaxLimit {
		t.Fatalf("read %d events: the store limit cut the check short; lower minAcked", len(evs))
	}
	// Stored is not enough: a restart replays what came after the last
	// snapshot by the account's event order (Seq), so every acknowledged
	// signal must be among the events that order reaches.
	replayable := map[int64]bool{}
	for seq := uint64(0); ; {
		page, err := st.After(context.Background(), "demo-01-careful", seq, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Type == monitor.EventSignal {
				replayable[int64(e.Signal.Wait/time.Second)] = true
			}
		}
		if len(page) < store.MaxLimit {
			break
		}
		seq = page[len(page)-1].Seq
	}
	unreplayable := 0
	for id := range acked {
		if !replayable[id] {
			unreplayable++
		}
	}
	if unreplayable > 0 {
		t.Fatalf("%d of %d acknowledged signals are stored without their place in the account's order: a restart would not replay them", unreplayable, len(acked))
	}
}

// waitReady waits for a daemon process's READY=1 (testbin.NotifySocket):
// it has restored every account and serves. The 5 minutes are a failure
// guard for a daemon that died, not a budget: a loaded machine may take
// long.
func waitReady(t *testing.T, ready <-chan struct{}, stderr *bytes.Buffer) {
	t.Helper()
	select {
	case <-ready:
	case <-time.After(5 * time.Minute):
		t.Fatalf("daemon not ready within 5 minutes: %s", stderr.String())
	}
}

// After a crash, the store can hold acknowledged signals newer than the
// last snapshot (snapshots are saved every minute). Start-up applies them,
// so that the restored state does not forget an acknowledged PEER_FLOOD,
// and does not store the signal a second time.
func TestStartReplaysSignalsNewerThanTheSnapshot(t *testing.T) {
	w := newDaemonWorld(t, "alpha")
	now := w.srv.Clock().Now()
	peerFlood := signal.Classify(tgerrPeerFlood())
	ev := monitor.Event{Time: now.Add(-time.Minute), Account: "alpha", Type: monitor.EventSignal, Method: "messages.sendMessage", Signal: peerFlood}
	w.seedStore(t, monitor.Snapshot{Account: "alpha", State: monitor.OK, Since: now.Add(-time.Hour), At: now.Add(-2 * time.Minute)}, ev)

	base, _, stop := w.start(t)
	defer stop()
	var a view.Account
	fixture.GetJSON(t, base+"/api/v1/accounts/alpha", &a)
	if a.State != monitor.Limited {
		t.Fatalf("alpha is %s after start-up, want limited from the stored PEER_FLOOD", a.State)
	}
	var evs struct {
		Events []monitor.Event `json:"events"`
	}
	fixture.GetJSON(t, base+"/api/v1/accounts/alpha/events?since=2000-01-01T00:00:00Z", &evs)
	n := 0
	for _, e := range evs.Events {
		if e.Type == monitor.EventSignal {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d signal events in the history, want the one stored before the crash", n)
	}
}

func tgerrPeerFlood() error { return tgerr.New(400, "PEER_FLOOD") }

// Probe floors use the last run, failed or not; the last-success gauge
// uses conclusive runs only, so that a restart neither lets a probe run
// early nor makes staleness alerts read "never answered". Both come from
// the snapshot's probe runs, not from reading event reasons: an unknown
// freeze answer ("freeze probe: unknown: ...") is a run, not a success.
func TestLastProbesSeparatesRunsFromSuccesses(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	mon, err := monitor.New(monitor.Options{Clock: vclock.New(t0)})
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := mon.Account("alpha")
	acct.ObserveFreeze(t0, monitor.FreezeStatus{Known: true})
	acct.ObserveProbeError(t0.Add(time.Hour), monitor.ProbeFreeze, errors.New("timeout"))
	acct.ObserveFreeze(t0.Add(90*time.Minute), monitor.FreezeStatus{Reason: "appConfigNotModified"})
	acct.ObserveSpamBot(t0.Add(2*time.Hour), spambot.Result{State: spambot.Free})
	acct.ObserveSpamBot(t0.Add(3*time.Hour), spambot.Result{State: spambot.Unknown, Reason: "no reply within 30s"})
	var sn monitor.Snapshot
	if b, err := json.Marshal(acct.Snapshot()); err != nil || json.Unmarshal(b, &sn) != nil {
		t.Fatalf("snapshot JSON: %v", err)
	}
	// A run after the snapshot (stored before a crash) still counts for
	// the floor.
	evs := append(acct.Events(),
		monitor.Event{Time: t0.Add(4 * time.Hour), Type: monitor.EventProbe, Probe: monitor.ProbeSessions, Reason: "sessions probe failed: timeout"},
		monitor.Event{Time: t0.Add(4 * time.Hour), Type: monitor.EventSignal, Method: "messages.sendMessage"})
	pt := runner.LastProbes(sn, evs)
	for kind, want := range map[string]time.Time{monitor.ProbeFreeze: t0.Add(90 * time.Minute), monitor.ProbeSpamBot: t0.Add(3 * time.Hour), monitor.ProbeSessions: t0.Add(4 * time.Hour)} {
		if got := pt.Ran[kind]; !got.Equal(want) {
			t.Errorf("last %s run %s, want %s", kind, got, want)
		}
	}
	for kind, want := range map[string]time.Time{monitor.ProbeFreeze: t0, monitor.ProbeSpamBot: t0.Add(2 * time.Hour)} {
		if got := pt.OK[kind]; !got.Equal(want) {
			t.Errorf("last %s success %s, want %s", kind, got, want)
		}
	}
	if got, ok := pt.OK[monitor.ProbeSessions]; ok {
		t.Errorf("sessions never succeeded, got a success at %s", got)
	}
}

// The ingest counter says what the endpoint did with what it received.
func TestIngestCounterByResult(t *testing.T) {
	w := newDaemonWorld(t, "alpha")
	base, _, stop := w.start(t)
	defer stop()
	good := map[string]any{"signals": []map[string]any{
		{"account": "alpha", "method": "messages.sendMessage", "code": 420, "message": "FLOOD_WAIT_30"},
		{"account": "alpha", "method": "messages.sendMessage", "code": 420, "message": "FLOOD_WAIT_31"},
	}}
	if code, body, err := postSignals(base, good); err != nil || code != http.StatusAccepted {
		t.Fatalf("good batch: %d %s %v", code, body, err)
	}
	bad := map[string]any{"account": "alpha", "method": "messages.sendMessage", "code": 420, "message": "not an rpc error"}
	if code, _, err := postSignals(base, bad); err != nil || code != http.StatusBadRequest {
		t.Fatalf("bad signal: %d %v", code, err)
	}
	m := fixture.ScrapeByLabel(t, base+"/metrics", "tgsafety_ingest_signals_total", "result")
	if m["accepted"] != 2 || m["rejected"] != 1 || m["failed"] != 0 {
		t.Fatalf("ingest counter %v, want accepted 2, rejected 1, failed 0", m)
	}
}

// The daemon runs only accounts with a stored session, which `safetyd
// login` writes after signing in: AUTH_KEY_UNREGISTERED on that session is
// a dead session even the first time the daemon (and its monitor) sees
// the account, not a key that has yet to sign in.
func TestStoredSessionUnregisteredAtFirstStartIsDead(t *testing.T) {
	w := newDaemonWorld(t, "alpha")
	unregistered := testserver.Fault{Method: "users.getUsers", Times: 100, Error: tgerr.New(401, "AUTH_KEY_UNREGISTERED")}
	if err := w.srv.Inject("9997700001", unregistered); err != nil {
		t.Fatal(err)
	}
	_, svc, stop := w.start(t)
	defer stop()
	svc.mu.Lock()
	r := svc.runners["alpha"]
	svc.mu.Unlock()
	select {
	case <-r.Done(): // stopped: Telegram answered a session error
	case <-time.After(time.Minute): // a failure guard only
		t.Fatal("the runner did not stop on AUTH_KEY_UNREGISTERED")
	}
	acct, _ := svc.Monitor().Lookup("alpha")
	if s := acct.Snapshot(); s.State != monitor.Dead {
		t.Fatalf("state %s (%s), want dead", s.State, s.Reason)
	}
}

// A SIGHUP reload of a file with a secret pasted into an *_env key is
// refused without the secret in its log line (config's
// TestSecretPastedIntoEnvKeyIsRefusedUnshown; check-config's side is in
// safetyd's commands_test.go).
func TestReloadDoesNotLogASecretPastedIntoEnvKey(t *testing.T) {
	cfg := fixture.WriteFile(t, t.TempDir(), "safetyd.yaml", "telegram: {api_id: 1, api_hash_env: "+fixture.HexSecret+"}\n"+fixture.BaseAccounts, 0o644)
	core, logs := observer.New(zap.InfoLevel)
	reload(Setup{ConfigPath: cfg, Log: zap.New(core), Level: zap.NewAtomicLevel()}, nil)
	entries := logs.All()
	if len(entries) != 1 || entries[0].Message != "Reload refused; keeping the running configuration" {
		t.Fatalf("reload logged %+v", entries)
	}
	var line bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	buf, _ := enc.EncodeEntry(entries[0].Entry, entries[0].Context)
	line.Write(buf.Bytes())
	fixture.NoPastedSecret(t, "reload log", line.String())
}
