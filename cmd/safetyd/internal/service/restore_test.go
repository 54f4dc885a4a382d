package service

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/api"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/dedup"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/store"
	"github.com/tgsafety/tgsafety/monitor/testbin"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

// A real daemon, killed after 11,000 flood waits and then a PEER_FLOOD
// were acknowledged for one account, comes back limited: start-up replays
// every stored signal after the snapshot in the order it arrived, a page
// at a time, not the oldest 10,000 by time (issue: restart forgets state
// when many signals arrived after the last snapshot).
func TestRestartAfterManySignalsKeepsTheLastOne(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills the daemon")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "history.db")
	base, kill := startDemoProcess(t, db)
	const batches, batch = 220, 50
	for b := range batches {
		sigs := make([]map[string]any, batch)
		for i := range sigs {
			sigs[i] = map[string]any{"account": "demo-01-careful", "method": "contacts.resolveUsername", "code": 420, "message": "FLOOD_WAIT_1"}
		}
		if code, body, err := postSignals(base, map[string]any{"signals": sigs}); err != nil || code != http.StatusAccepted {
			t.Fatalf("batch %d: %d %s %v", b, code, body, err)
		}
	}
	if code, body, err := postSignals(base, map[string]any{"signals": []map[string]any{
		{"account": "demo-01-careful", "method": "messages.sendMessage", "code": 400, "message": "PEER_FLOOD"},
	}}); err != nil || code != http.StatusAccepted {
		t.Fatalf("PEER_FLOOD: %d %s %v", code, body, err)
	}
	kill()

	base, kill = startDemoProcess(t, db)
	defer kill()
	var a view.Account
	fixture.GetJSON(t, base+"/api/v1/accounts/demo-01-careful", &a)
	if a.State != monitor.Limited {
		t.Fatalf("after SIGKILL and restart the account is %s (%s), want limited by the last acknowledged PEER_FLOOD", a.State, a.Reason)
	}
}

// startDemoProcess runs `safetyd demo` on store db (no traffic, real
// time) until the returned function SIGKILLs it.
func startDemoProcess(t *testing.T, db string) (base string, kill func()) {
	t.Helper()
	base, stop := startDemo(t, db)
	return base, func() { _ = stop(syscall.SIGKILL) }
}

// startDemo runs `safetyd demo` on store db (no traffic, real time) until
// the returned function sends it sig and waits for it to exit, returning
// how it exited (the first call's result on later calls).
func startDemo(t *testing.T, db string) (base string, stop func(sig os.Signal) error) {
	t.Helper()
	port := fixture.FreePort(t)
	cmd := exec.Command(testbin.Path(t, "safetyd"), "demo", "--listen", port, "--accounts", "2", "--traffic=false", "--quiet",
		"--speed", "1", "--store", db, "--token", fixture.Token)
	notify, ready := testbin.NotifySocket(t)
	cmd.Env = append(os.Environ(), notify)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		once   sync.Once
		result error
	)
	stop = func(sig os.Signal) error {
		once.Do(func() {
			_ = cmd.Process.Signal(sig)
			result = cmd.Wait()
		})
		return result
	}
	t.Cleanup(func() { _ = stop(syscall.SIGKILL) })
	base = "http://" + port
	waitReady(t, ready, &stderr)
	return base, stop
}

// A real daemon: a PEER_FLOOD reported after the last snapshot but dated
// ten minutes before it (the API accepts past times) is acknowledged, the
// daemon is killed, and the restarted one is limited: start-up replays
// the signals that reached the account after its snapshot, whatever their
// dates, instead of those dated after it.
func TestRealDaemonReplaysABackDatedSignalAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills the daemon")
	}
	const name = "demo-01-careful"
	db := filepath.Join(t.TempDir(), "history.db")
	// A first run stopped in order leaves a snapshot of every account.
	_, stop := startDemo(t, db)
	if err := stop(syscall.SIGTERM); err != nil {
		t.Fatalf("the first daemon did not stop cleanly: %v", err)
	}
	st, err := store.OpenSQLite(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := st.LoadSnapshots(context.Background())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var snapAt time.Time
	for _, sn := range snaps {
		if sn.Account == name {
			snapAt = sn.At
		}
	}
	if snapAt.IsZero() {
		t.Fatalf("no snapshot of %s after an orderly stop: %+v", name, snaps)
	}

	base, kill := startDemoProcess(t, db)
	dated := snapAt.Add(-10 * time.Minute)
	if code, body, err := postSignals(base, map[string]any{
		"account": name, "method": "messages.sendMessage", "code": 400, "message": "PEER_FLOOD", "time": dated.Format(time.RFC3339Nano),
	}); err != nil || code != http.StatusAccepted {
		t.Fatalf("back-dated PEER_FLOOD: %d %s %v", code, body, err)
	}
	var a view.Account
	fixture.GetJSON(t, base+"/api/v1/accounts/"+name, &a)
	if a.State != monitor.Limited {
		t.Fatalf("%s is %s after the report, want limited", name, a.State)
	}
	kill()

	base, kill = startDemoProcess(t, db)
	defer kill()
	fixture.GetJSON(t, base+"/api/v1/accounts/"+name, &a)
	if a.State != monitor.Limited {
		t.Fatalf("after SIGKILL and restart %s is %s (%s), want limited by the acknowledged PEER_FLOOD dated %s, before the snapshot of %s",
			name, a.State, a.Reason, dated, snapAt)
	}
}

// A signal reported with a time before the last snapshot, but after it
// was taken, is replayed after a crash: what counts is the order events
// reached the account (Event.Seq), not their dates.
func TestRestartReplaysBackDatedSignalsAfterTheSnapshot(t *testing.T) {
	w := newDaemonWorld(t, "alpha")
	now := w.srv.Clock().Now()
	snap := monitor.Snapshot{Account: "alpha", State: monitor.OK, Since: now.Add(-time.Hour), At: now.Add(-time.Minute), Seq: 5}
	// Reported 5 s after the snapshot, dated 10 min before it.
	ev := monitor.Event{Time: snap.At.Add(-10 * time.Minute), Account: "alpha", Type: monitor.EventSignal,
		Method: "messages.sendMessage", Signal: signal.Classify(tgerrPeerFlood()), From: monitor.OK, State: monitor.Limited, Seq: 6}
	w.seedStore(t, snap, ev)
	base, _, stop := w.start(t)
	defer stop()
	var a view.Account
	fixture.GetJSON(t, base+"/api/v1/accounts/alpha", &a)
	if a.State != monitor.Limited {
		t.Fatalf("alpha is %s after restart, want limited by the back-dated PEER_FLOOD", a.State)
	}
}

// An account removed by a reload and added back by a later one resumes
// as it was, as after a restart, instead of starting fresh.
func TestReloadReAddedAccountResumesFromTheStore(t *testing.T) {
	w := newDaemonWorld(t, "alpha", "bravo")
	base, svc, stop := w.start(t)
	defer stop()
	if code, body, err := postSignals(base, map[string]any{"signals": []map[string]any{
		{"account": "alpha", "method": "messages.sendMessage", "code": 400, "message": "PEER_FLOOD"},
	}}); err != nil || code != http.StatusAccepted {
		t.Fatalf("%d %s %v", code, body, err)
	}
	without := *svc.cfg
	without.Accounts = nil
	for _, a := range svc.cfg.Accounts {
		if a.Name != "alpha" {
			without.Accounts = append(without.Accounts, a)
		}
	}
	with := *svc.cfg
	if plan := svc.Reload(&without); len(plan.Removed) != 1 {
		t.Fatalf("plan %+v", plan)
	}
	if _, ok := svc.Monitor().Lookup("alpha"); ok {
		t.Fatal("alpha still monitored after removal")
	}
	w.srv.Clock().Advance(time.Hour)
	if plan := svc.Reload(&with); len(plan.Added) != 1 {
		t.Fatalf("plan %+v", plan)
	}
	var a view.Account
	fixture.GetJSON(t, base+"/api/v1/accounts/alpha", &a)
	if a.State != monitor.Limited {
		t.Fatalf("re-added alpha is %s, want limited as it left", a.State)
	}
}

// Until the accounts are restored, reported signals are refused (503):
// one applied to a fresh account would be acknowledged and then
// overwritten by the restore.
func TestIngestRefusedUntilRestored(t *testing.T) {
	w := newDaemonWorld(t, "alpha")
	_, svc, stop := w.start(t)
	defer stop()
	svc.ready.Store(false) // as between listening and the end of Start
	defer svc.ready.Store(true)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/signals",
		strings.NewReader(`{"signals":[{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}]}`))
	req.Header.Set("Authorization", "Bearer "+fixture.Token)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("ingest before restore: %d %s, want 503", rec.Code, rec.Body)
	}
	acct, _ := svc.Monitor().Lookup("alpha")
	for _, e := range acct.Events() {
		if e.Type == monitor.EventSignal && e.Signal.Kind == signal.PeerFlood {
			t.Fatal("the refused signal was applied")
		}
	}
}

// BenchmarkRestoreAccount is start-up's cost per account whose store
// holds 12,800 events (the review measured 100 such accounts taking 11.9 s
// to become ready when start-up read up to 10,000 events twice each):
// restore reads the newest 256 for the ring and the few after the
// snapshot.
func BenchmarkRestoreAccount(b *testing.B) {
	st, err := store.OpenSQLite(filepath.Join(b.TempDir(), "h.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	const n = 12800
	evs := make([]monitor.Event, n)
	for i := range evs {
		evs[i] = monitor.Event{Time: t0.Add(time.Duration(i) * time.Second), Account: "alpha", Type: monitor.EventSignal,
			Method: "contacts.resolveUsername", Signal: signal.Classify(tgerrFloodWait()), Seq: uint64(i + 1)}
	}
	if err := st.Append(context.Background(), evs); err != nil {
		b.Fatal(err)
	}
	snap := monitor.Snapshot{Account: "alpha", State: monitor.OK, At: t0.Add((n - 20) * time.Second), Seq: n - 20}
	mon, err := monitor.New(monitor.Options{})
	if err != nil {
		b.Fatal(err)
	}
	svc := &Service{opts: Options{Store: st}, log: zap.NewNop(), dedup: dedup.New(nil)}
	b.ResetTimer()
	for b.Loop() {
		mon.Remove("alpha")
		acct, _ := mon.Account("alpha")
		if _, err := svc.restoreAccount(context.Background(), acct, snap, true); err != nil {
			b.Fatal(err)
		}
	}
}

func tgerrFloodWait() error { return tgerr.New(420, "FLOOD_WAIT_1") }

// hookSink calls hook with each event before passing it on to next.
type hookSink struct {
	next monitor.Sink
	hook func(monitor.Event)
}

func (h hookSink) Record(e monitor.Event) {
	h.hook(e)
	h.next.Record(e)
}

// A reported signal is stored with its place in the account's order
// (Event.Seq) even when the account observes another signal between
// applying the report and committing it (its own client's RPC error, a
// concurrent report): a restart replays by that order, so a row stored
// without it would never be replayed.
func TestReportedSignalKeepsItsSeqWhenAnotherSignalInterleaves(t *testing.T) {
	clk := vclock.New(fixture.Epoch)
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "history.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := store.NewWriter(st, store.WriterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
		_ = w.Close(context.Background())
		_ = st.Close()
	}()
	dedup := dedup.New(w)
	var (
		alpha *monitor.Account
		once  sync.Once
	)
	// While the reported PEER_FLOOD is being delivered, the account's
	// client meets a flood wait.
	sink := hookSink{next: dedup, hook: func(e monitor.Event) {
		if e.Type == monitor.EventSignal && e.Signal.Kind == signal.PeerFlood {
			once.Do(func() {
				alpha.ObserveSignal(clk.Now(), "contacts.resolveUsername", signal.Classify(tgerrFloodWait()))
			})
		}
	}}
	mon, err := monitor.New(monitor.Options{Clock: clk, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if alpha, err = mon.Account("alpha"); err != nil {
		t.Fatal(err)
	}
	h := api.New(api.Deps{Monitor: mon, Store: st, Writer: w, Dedup: dedup, Token: fixture.APIToken, Now: clk.Now})
	req := httptest.NewRequest(http.MethodPost, "/api/v1/signals",
		strings.NewReader(`{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`))
	req.Header.Set("Authorization", "Bearer "+fixture.APIToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("report: %d %s", rec.Code, rec.Body)
	}
	replayed, err := st.After(context.Background(), "alpha", 0, store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range replayed {
		if e.Type == monitor.EventSignal && e.Signal.Kind == signal.PeerFlood {
			if e.Risk == 0 {
				t.Errorf("the stored PEER_FLOOD has risk 0: %+v", e)
			}
			return
		}
	}
	t.Fatalf("the acknowledged PEER_FLOOD is not among the events a restart replays (stored without a sequence number?): %+v",
		fixture.StoredSignals(t, st, "alpha"))
}

// hookStore is the daemon's store with a hook run at the start of
// LoadSnapshots, which a reload calls between creating an added account
// and restoring it.
type hookStore struct {
	store.Store
	onLoad func()
}

func (h *hookStore) LoadSnapshots(ctx context.Context) ([]monitor.Snapshot, error) {
	if f := h.onLoad; f != nil {
		h.onLoad = nil
		f()
	}
	return h.Store.LoadSnapshots(ctx)
}

// A report for an account that a reload is adding back, made before the
// account is restored from the store, is refused (503) rather than
// applied to the fresh account, acknowledged and then overwritten by the
// restore, with an event number the restored account has already used (so
// that a crash would not replay it).
func TestReloadRefusesReportsForAnAccountBeingRestored(t *testing.T) {
	w := newDaemonWorld(t, "alpha", "bravo")
	hs := &hookStore{}
	w.tune = func(o *Options) {
		hs.Store = o.Store
		o.Store = hs
	}
	base, svc, stop := w.start(t)
	defer stop()
	// Some history, so that alpha's snapshot numbers events past those a
	// fresh account starts with.
	if code, body, err := postSignals(base, map[string]any{"signals": []map[string]any{
		{"account": "alpha", "method": "contacts.resolveUsername", "code": 420, "message": "FLOOD_WAIT_5"},
		{"account": "alpha", "method": "contacts.resolveUsername", "code": 420, "message": "FLOOD_WAIT_6"},
	}}); err != nil || code != http.StatusAccepted {
		t.Fatalf("%d %s %v", code, body, err)
	}
	with := *svc.cfg
	without := with
	without.Accounts = nil
	for _, a := range with.Accounts {
		if a.Name != "alpha" {
			without.Accounts = append(without.Accounts, a)
		}
	}
	if plan := svc.Reload(&without); len(plan.Removed) != 1 {
		t.Fatalf("plan %+v", plan)
	}
	snaps, err := hs.Store.LoadSnapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	for _, sn := range snaps {
		if sn.Account == "alpha" {
			seq = sn.Seq
		}
	}
	if seq < 2 {
		t.Fatalf("alpha's snapshot at removal has Seq %d, want the reports' events counted", seq)
	}

	peerFlood := `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`
	report := func() int {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/signals", strings.NewReader(peerFlood))
		req.Header.Set("Authorization", "Bearer "+fixture.Token)
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	code := 0
	hs.onLoad = func() { code = report() }
	if plan := svc.Reload(&with); len(plan.Added) != 1 {
		t.Fatalf("plan %+v", plan)
	}
	switch code {
	case http.StatusServiceUnavailable:
		// Refused: the client retries once the account is restored.
	case http.StatusAccepted:
		after, err := hs.Store.After(context.Background(), "alpha", seq, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range after {
			found = found || e.Type == monitor.EventSignal && e.Signal.Kind == signal.PeerFlood
		}
		if !found {
			t.Fatalf("a PEER_FLOOD acknowledged while alpha was being restored is not among the events after its snapshot (Seq %d): a crash would forget it", seq)
		}
	default:
		t.Fatalf("report during the restore: %d", code)
	}
	if got := report(); got != http.StatusAccepted {
		t.Fatalf("report after the reload: %d", got)
	}
	alpha, _ := svc.Monitor().Lookup("alpha")
	if st := alpha.Snapshot().State; st != monitor.Limited {
		t.Fatalf("alpha is %s after the reported PEER_FLOOD, want limited", st)
	}
}
