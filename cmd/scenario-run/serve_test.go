package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor/testbin"
	"github.com/tgsafety/tgsafety/testserver"
)

// guard bounds every wait on the child process. It is a failure guard
// only: nothing waits for it to pass.
const guard = 60 * time.Second

// build returns the scenario-run binary (built once, see monitor/testbin):
// the test runs the real binary so that flags, stdout, exit codes and
// signals are exercised as other processes see them.
func build(t *testing.T) string {
	t.Helper()
	return testbin.Path(t, "scenario-run")
}

// waitExit waits for the process to end, within the guard.
func waitExit(t *testing.T, cmd *exec.Cmd, done <-chan error, stderr fmt.Stringer) int {
	t.Helper()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("wait: %v", err)
		}
		return cmd.ProcessState.ExitCode()
	case <-time.After(guard):
		t.Fatalf("scenario-run did not exit within %s; stderr:\n%s", guard, stderr)
		return -1
	}
}

// child is a running `scenario-run serve`.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *testbin.Buffer
	done   chan error  // cmd.Wait's result
	rest   chan string // stdout after the ready line
	exited bool
}

// startServe starts the binary and returns it with its ready line. The
// child is killed at the end of the test unless it has exited.
func startServe(t *testing.T, bin string, args ...string) (*child, string) {
	t.Helper()
	c := &child{t: t, cmd: exec.Command(bin, append([]string{"serve"}, args...)...), stderr: &testbin.Buffer{},
		done: make(chan error, 1), rest: make(chan string, 1)}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait only after stdout has been read to the end (os/exec's rule for
	// StdoutPipe), so the reader calls it.
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		more, _ := io.ReadAll(r)
		c.rest <- string(more)
		c.done <- c.cmd.Wait()
	}()
	t.Cleanup(func() {
		if !c.exited {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("scenario-run stderr:\n%s", c.stderr)
		}
	})
	select {
	case line := <-lines:
		return c, line
	case <-time.After(guard):
		t.Fatalf("no ready line within %s", guard)
		return nil, ""
	}
}

// stop sends SIGTERM and checks for a clean exit with nothing more on
// stdout.
func (c *child) stop() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	code := waitExit(c.t, c.cmd, c.done, c.stderr)
	c.exited = true
	if code != 0 {
		c.t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if more := <-c.rest; more != "" {
		c.t.Fatalf("stdout had more than the ready line: %q", more)
	}
}

func TestServe(t *testing.T) {
	bin := build(t)
	keyPath := filepath.Join(t.TempDir(), "key.pem")
	// A stale, world-readable key from an earlier run is replaced, mode
	// and all.
	if err := os.WriteFile(keyPath, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, line := startServe(t, bin, "--addr", "127.0.0.1:0", "--key-out", keyPath)
	var ready struct {
		Addr      string   `json:"addr"`
		DC        int      `json:"dc"`
		PublicKey string   `json:"public_key"`
		LoginCode string   `json:"login_code"`
		Usernames []string `json:"usernames"`
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields() // no control_addr without --control-addr
	if err := dec.Decode(&ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	host, portText, err := net.SplitHostPort(ready.Addr)
	if err != nil {
		t.Fatalf("addr %q: %v", ready.Addr, err)
	}
	port, err := strconv.Atoi(portText)
	if host != "127.0.0.1" || err != nil || port == 0 {
		t.Fatalf("addr %q: want 127.0.0.1 and a bound port", ready.Addr)
	}
	if ready.DC != 2 || ready.PublicKey != keyPath || ready.LoginCode != "22222" || len(ready.Usernames) < 100 {
		t.Fatalf("ready line %q", line)
	}

	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	reply, err := askSpamBot(t, line, "9996629999")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(reply, "Good news") {
		t.Fatalf("SpamBot said %q", reply)
	}

	srv.stop()
}

// askSpamBot connects a real gotd client over TCP with nothing but what
// the ready line and the key file say, signs up phone, sends /start to
// SpamBot and returns its reply.
func askSpamBot(t *testing.T, line, phone string) (string, error) {
	t.Helper()
	var ready struct {
		Addr      string `json:"addr"`
		DC        int    `json:"dc"`
		PublicKey string `json:"public_key"`
		LoginCode string `json:"login_code"`
	}
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	host, portText, err := net.SplitHostPort(ready.Addr)
	if err != nil {
		t.Fatalf("addr %q: %v", ready.Addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatalf("addr %q: %v", ready.Addr, err)
	}
	pemBytes, err := os.ReadFile(ready.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// gotd v0.161.0 has no telegram.ParsePublicKeys; crypto's parser reads
	// the same PEM.
	keys, err := crypto.ParseRSAPublicKeys(pemBytes)
	if err != nil || len(keys) != 1 {
		t.Fatalf("public key: %d keys, %v", len(keys), err)
	}
	opts := telegram.Options{
		PublicKeys: []telegram.PublicKey{{RSA: keys[0]}},
		DC:         ready.DC,
		DCList:     dcs.List{Options: []tg.DCOption{{ID: ready.DC, IPAddress: host, Port: port}}},
		Resolver:   dcs.Plain(dcs.PlainOptions{}),
		NoUpdates:  true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	var reply string
	client := telegram.NewClient(17349, "not-a-real-hash", opts)
	err = client.Run(ctx, func(ctx context.Context) error {
		flow := auth.NewFlow(testserver.Authenticator{PhoneNumber: phone, LoginCode: ready.LoginCode}, auth.SendCodeOptions{})
		if err := client.Auth().IfNecessary(ctx, flow); err != nil {
			return fmt.Errorf("sign up: %w", err)
		}
		api := client.API()
		r, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: "SpamBot"})
		if err != nil {
			return fmt.Errorf("resolve @SpamBot: %w", err)
		}
		if len(r.Users) != 1 {
			return fmt.Errorf("resolve @SpamBot: %d users", len(r.Users))
		}
		bot, ok := r.Users[0].(*tg.User)
		if !ok {
			return fmt.Errorf("resolve @SpamBot: %T", r.Users[0])
		}
		peer := &tg.InputPeerUser{UserID: bot.ID, AccessHash: bot.AccessHash}
		if _, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
			Peer: peer, Message: "/start", RandomID: time.Now().UnixNano(),
		}); err != nil {
			return fmt.Errorf("/start: %w", err)
		}
		h, err := api.MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{Peer: peer, Limit: 1})
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
		msgs, ok := h.(*tg.MessagesMessages)
		if !ok || len(msgs.Messages) != 1 {
			return fmt.Errorf("history: %T, want one message", h)
		}
		m, ok := msgs.Messages[0].(*tg.Message)
		if !ok || m.Out {
			return fmt.Errorf("the newest message in the SpamBot chat is not an incoming message: %+v", msgs.Messages[0])
		}
		reply = m.Message
		return nil
	})
	return reply, err
}

// TestServeKeepsAcceptingAfterIdleAndProbeConnections: a connection that
// sends nothing (an idle client, a half-open socket) must not hold up
// other clients, and one that closes without a byte (a port probe, nc -z)
// must not stop the server accepting.
func TestServeKeepsAcceptingAfterIdleAndProbeConnections(t *testing.T) {
	bin := build(t)
	srv, line := startServe(t, bin, "--addr", "127.0.0.1:0", "--key-out", filepath.Join(t.TempDir(), "key.pem"))
	var ready struct {
		Addr string `json:"addr"`
	}
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", ready.Addr, guard)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// nc -z: connect and close without sending anything.
	_ = dial().Close()
	// An idle connection stays open while a real client connects.
	idle := dial()
	if reply, err := askSpamBot(t, line, "9996629001"); err != nil || !strings.HasPrefix(reply, "Good news") {
		t.Fatalf("client while an idle connection is open: %q, %v", reply, err)
	}
	// It closes without a byte; the next client still gets in.
	_ = idle.Close()
	if reply, err := askSpamBot(t, line, "9996629002"); err != nil || !strings.HasPrefix(reply, "Good news") {
		t.Fatalf("client after the idle connection closed: %q, %v", reply, err)
	}
	if strings.Contains(srv.stderr.String(), "Serve stopped") {
		t.Fatalf("the accept loop stopped:\n%s", srv.stderr)
	}
	srv.stop()
}

// TestServeControlAPI checks the wiring of --control-addr and
// --control-token; the API itself is tested in package testserver.
func TestServeControlAPI(t *testing.T) {
	bin := build(t)
	srv, line := startServe(t, bin, "--key-out", filepath.Join(t.TempDir(), "key.pem"),
		"--control-addr", "127.0.0.1:0", "--control-token", "tok", "--users", "100", "--seed", "7")
	var ready struct {
		ControlAddr string   `json:"control_addr"`
		Usernames   []string `json:"usernames"`
	}
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	host, _, err := net.SplitHostPort(ready.ControlAddr)
	if err != nil || host != "127.0.0.1" || len(ready.Usernames) != 100 {
		t.Fatalf("ready line %q", line)
	}
	get := func(token string) (int, string) {
		req, err := http.NewRequest("GET", "http://"+ready.ControlAddr+"/control/v1/time", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{Timeout: guard}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("tok"); code != http.StatusOK || !strings.Contains(body, `"now":"2026-01-05T09:00:00Z"`) {
		t.Fatalf("with token: %d %s", code, body)
	}
	if code, body := get(""); code != http.StatusUnauthorized {
		t.Fatalf("without token: %d %s", code, body)
	}
	srv.stop()
}

func TestServeUsageErrors(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "--key-out is required"},
		{[]string{"serve", "--addr", "127.0.0.1:0"}, "key-out"},
		{[]string{"serve", "--key-out", key, "--profile", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
		{[]string{"serve", "--key-out", key, "--no-such-flag"}, "no-such-flag"},
		{[]string{"serve", "--key-out", key, "--addr", "localhost"}, "--addr"},
		{[]string{"serve", "--key-out", key, "--users", "10"}, "--users"},
		{[]string{"serve", "--key-out", key, "--control-token", "t"}, "--control-addr"},
		// The control API hands out auth keys: off loopback only with a token.
		{[]string{"serve", "--key-out", key, "--control-addr", "0.0.0.0:0"}, "--control-addr 0.0.0.0:0 is not a loopback address: it needs --control-token"},
		{[]string{"serve", "--key-out", key, "--control-addr", "[::]:0"}, "needs --control-token"},
		{[]string{"serve", "--key-out", key, "--control-addr", "example.com:0"}, "needs --control-token"},
		{[]string{"serve", "--key-out", key, "extra"}, `unexpected argument "extra"`},
		{[]string{"serve", "--key-out", filepath.Join(dir, "no", "such", "dir", "key.pem")}, "key.pem"},
		{[]string{"frobnicate"}, "usage: scenario-run"},
		{nil, "usage: scenario-run"},
	} {
		cmd := exec.Command(bin, tc.args...)
		var stdout bytes.Buffer
		stderr := &testbin.Buffer{}
		cmd.Stdout, cmd.Stderr = &stdout, stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		code := waitExit(t, cmd, done, stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("scenario-run %q: exit %d, stdout %q, stderr %q; want exit 2 and stderr mentioning %q",
				tc.args, code, stdout.String(), stderr.String(), tc.want)
		}
	}
	if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed start left a key file: %v", err)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "scenario-run ") {
		t.Errorf("version: %q %v", out, err)
	}
}

// TestServeKeyFileKeepsTheKey: --key creates the private key file on the
// first run and serves the same key on the next, so clients keep the
// public key between runs; a bad key file is a usage error naming it.
func TestServeKeyFileKeepsTheKey(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	priv := filepath.Join(dir, "server.pem")
	var pubs []string
	for run := range 2 {
		pub := filepath.Join(dir, fmt.Sprintf("public-%d.pem", run))
		srv, _ := startServe(t, bin, "--key", priv, "--key-out", pub, "--users", "100")
		srv.stop()
		b, err := os.ReadFile(pub)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, string(b))
		if !strings.Contains(srv.stderr.String(), "fingerprint") {
			t.Errorf("run %d: the Serving line does not show the fingerprint:\n%s", run, srv.stderr)
		}
		if !strings.Contains(srv.stderr.String(), `"layers": [144, `) || !strings.Contains(srv.stderr.String(), " 227, 228]") {
			t.Errorf("run %d: the Serving line does not list the layers served:\n%s", run, srv.stderr)
		}
	}
	if pubs[0] != pubs[1] {
		t.Fatal("the second run served another key")
	}
	key, err := testserver.ParsePrivateKeyPEM(must(os.ReadFile(priv)))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypto.ParseRSAPublicKeys([]byte(pubs[0]))
	if err != nil || len(keys) != 1 || !key.PublicKey.Equal(keys[0]) {
		t.Fatalf("--key-out does not hold the public half of --key: %v", err)
	}
	if !testserver.FingerprintUsable(&key.PublicKey) {
		t.Fatalf("generated key fingerprint %s", testserver.Fingerprint(&key.PublicKey))
	}

	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--key", bad, "--key-out", filepath.Join(dir, "p.pem")}, "bad.pem"},
		{[]string{"serve", "--key", priv, "--key-out", priv}, "same file"},
	} {
		cmd := exec.Command(bin, tc.args...)
		stderr := &testbin.Buffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if code := waitExit(t, cmd, done, stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
