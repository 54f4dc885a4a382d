package login

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture/fleet"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/sessionfile"
)

// noPrompt fails the test if login asks anything: these logins never
// reach Telegram.
type noPrompt struct{ t *testing.T }

func (p noPrompt) Code(context.Context) (string, error) {
	p.t.Error("asked for a login code")
	return "", errors.New("no code")
}

func (p noPrompt) Password(context.Context) (string, error) {
	p.t.Error("asked for a password")
	return "", errors.New("no password")
}

// unreachableLogin is a login job whose only DC is a closed port on
// 127.0.0.1: nothing answers, as with no network.
func unreachableLogin(t *testing.T, stdout, stderr *syncBuffer) Job {
	t.Helper()
	_, port, _ := net.SplitHostPort(fixture.FreePort(t))
	p, _ := strconv.Atoi(port)
	path := filepath.Join(t.TempDir(), "sessions", "alpha.session")
	return Job{
		Name: "alpha", Phone: fixture.PhoneA, SessionPath: path,
		Conn: runner.Connection{APIID: 1, APIHash: fixture.Hash, Options: telegram.Options{
			DCList:         dcs.List{Options: []tg.DCOption{{ID: 2, IPAddress: "127.0.0.1", Port: p}}},
			SessionStorage: sessionfile.File{Path: path},
		}},
		Prompt: noPrompt{t}, Stdout: stdout, Stderr: stderr,
	}
}

// syncBuffer is a bytes.Buffer for writers on several goroutines, which
// can call a function on each write (to act on progress lines).
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	onWrite func(s string)
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.b.Write(p)
	s := b.b.String()
	f := b.onWrite
	b.mu.Unlock()
	if f != nil {
		f(s)
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Ctrl-C before Telegram answered is a failed login: exit 1, "interrupted",
// and no claim of a session that was never written.
func TestLoginInterruptedBeforeConnectingFails(t *testing.T) {
	var stdout, stderr syncBuffer
	j := unreachableLogin(t, &stdout, &stderr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code := Run(ctx, j)
	if code == 0 || strings.Contains(stdout.String(), "signed in") || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s\nwant a non-zero exit saying it was interrupted", code, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(j.SessionPath); err == nil {
		t.Errorf("a session file was written")
	}
}

// While it cannot connect, login says so (and why) instead of printing
// nothing; interrupted then, it fails.
func TestLoginReportsConnectionProgress(t *testing.T) {
	var stdout, stderr syncBuffer
	j := unreachableLogin(t, &stdout, &stderr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr.onWrite = func(s string) {
		if strings.Contains(s, "cannot connect") {
			cancel() // the operator presses Ctrl-C after seeing it
		}
	}
	code := Run(ctx, j)
	out := stderr.String()
	for _, want := range []string{"connecting to Telegram", "cannot connect to Telegram", "connection refused", "Ctrl-C", "interrupted"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if code == 0 || strings.Contains(stdout.String(), "signed in") {
		t.Errorf("exit %d, stdout %q", code, stdout.String())
	}
	if strings.Contains(out, "5550001111") {
		t.Errorf("the phone number was printed:\n%s", out)
	}
}

// A login that completes (here: an account already signed in, against the
// test server) exits 0 and names the session file it found on disk.
func TestLoginSucceedsWithSessionOnDisk(t *testing.T) {
	w := fleet.NewAccounts(t, "alpha")
	var stdout, stderr syncBuffer
	path := w.Cfg.SessionPath("alpha")
	opts := w.Srv.ClientOptions()
	opts.SessionStorage = sessionfile.File{Path: path}
	code := Run(context.Background(), Job{
		Name: "alpha", Phone: fixture.PhoneA, SessionPath: path,
		Conn:   runner.Connection{APIID: 1, APIHash: fixture.Hash, Options: opts},
		Prompt: noPrompt{t}, Stdout: &stdout, Stderr: &stderr,
	})
	if code != 0 || stdout.String() != "signed in; session stored in "+path+" (mode 0600)\n" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
}
