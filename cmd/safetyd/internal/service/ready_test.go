package service

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/api"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/store"
	"github.com/tgsafety/tgsafety/monitor/testbin"
)

// A second daemon on the same store refuses to start, naming the store
// and the first one's pid; the first keeps running.
func TestSecondDaemonOnOneStoreRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon twice")
	}
	db := filepath.Join(t.TempDir(), "history.db")
	base, kill := startDemoProcess(t, db)
	defer kill()
	cmd := exec.Command(testbin.Path(t, "safetyd"), "demo", "--listen", fixture.FreePort(t), "--accounts", "1", "--traffic=false", "--quiet",
		"--store", db)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a second daemon on %s started: %s", db, out)
	}
	if !strings.Contains(string(out), db+".lock is in use by another safetyd (pid ") {
		t.Errorf("second daemon's message: %s", out)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the first daemon stopped answering: %v", err)
	}
	resp.Body.Close()
}

// fullStore is a store whose disk is full: every Append (full) or
// SaveSnapshots (snapsFull) fails as SQLite's does, until cleared.
type fullStore struct {
	store.Store
	full, snapsFull atomic.Bool
}

func (f *fullStore) SaveSnapshots(ctx context.Context, snaps []monitor.Snapshot) error {
	if f.snapsFull.Load() {
		return errors.New("store: save snapshots: commit: database or disk is full (13)")
	}
	return f.Store.SaveSnapshots(ctx, snaps)
}

func (f *fullStore) Append(ctx context.Context, evs []monitor.Event) error {
	if f.full.Load() {
		return errors.New("store: append: commit: database or disk is full (13)")
	}
	return f.Store.Append(ctx, evs)
}

// While the store cannot commit, /readyz says not ready and a report is
// answered 500 with a plain body (the driver's text is in the log, not in
// the answer); once a commit succeeds again, the daemon is ready again.
func TestFullDiskIsNotReadyAndSaysSoPlainly(t *testing.T) {
	w := newDaemonWorld(t, "alpha")
	var fs *fullStore
	w.tune = func(o *Options) {
		fs = &fullStore{Store: o.Store}
		o.Store = fs
	}
	base, _, stop := w.start(t)
	defer stop()
	fs.full.Store(true)
	code, body, err := postSignals(base, map[string]any{"signals": []map[string]any{
		{"account": "alpha", "method": "messages.sendMessage", "code": 420, "message": "FLOOD_WAIT_5"},
	}})
	if err != nil || code != http.StatusInternalServerError || strings.Contains(string(body), "disk is full") || strings.Contains(string(body), "(13)") {
		t.Fatalf("report on a full disk: %d %s %v, want 500 with a plain body", code, body, err)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a full disk: %d, want 503", resp.StatusCode)
	}
	fs.full.Store(false)
	if code, body, err := postSignals(base, map[string]any{"signals": []map[string]any{
		{"account": "alpha", "method": "messages.sendMessage", "code": 420, "message": "FLOOD_WAIT_6"},
	}}); err != nil || code != http.StatusAccepted {
		t.Fatalf("report after the disk recovered: %d %s %v", code, body, err)
	}
	resp, err = http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz after the disk recovered: %d, want 200", resp.StatusCode)
	}
}

// Snapshots are commits too: while saving them fails the daemon is not
// ready, even when no event is being written (a quiet fleet on a full
// disk), and the next save that succeeds makes it ready again.
func TestFailingSnapshotSavesMakeTheDaemonNotReady(t *testing.T) {
	w := newDaemonWorld(t, "alpha")
	var fs *fullStore
	w.tune = func(o *Options) {
		fs = &fullStore{Store: o.Store}
		o.Store = fs
	}
	base, svc, stop := w.start(t)
	defer stop()
	readyz := func() (int, string) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	fs.snapsFull.Store(true)
	svc.saveSnapshots(context.Background())
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "the store cannot commit") || strings.Contains(body, "disk is full") {
		t.Fatalf("/readyz while snapshots cannot be saved: %d %s, want 503 saying the store cannot commit, without the driver's text", code, body)
	}
	fs.snapsFull.Store(false)
	svc.saveSnapshots(context.Background())
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz once a snapshot save succeeded again: %d %s", code, body)
	}
}

// An account without a session file is not monitored: /readyz (still
// ready, for the other accounts) and the status page say which and what
// to do, instead of an "unknown" account with no reason.
func TestAccountsWithoutSessionAreShownAsNotMonitored(t *testing.T) {
	w := newDaemonWorld(t, "alpha")
	extra := w.cfg.Accounts[0]
	extra.Name = "nosession"
	w.cfg.Accounts = append(w.cfg.Accounts, extra)
	base, svc, stop := w.start(t)
	defer stop()
	svc.mu.Lock()
	r := svc.runners["nosession"]
	svc.mu.Unlock()
	<-r.Done() // the runner gives up at once: there is nothing to connect with

	var ready api.Health
	fixture.GetJSON(t, base+"/readyz", &ready)
	want := "no session for account nosession: sign in with `safetyd login --account nosession`"
	if ready.Status != "ready" || ready.NotMonitored["nosession"] != want || len(ready.NotMonitored) != 1 {
		t.Fatalf("/readyz: %+v, want ready with nosession not monitored: %q", ready, want)
	}
	for _, path := range []string{"/", "/accounts/nosession"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "not monitored: no session for account nosession: sign in with") {
			t.Errorf("%s does not say nosession is not monitored and why", path)
		}
	}
}
