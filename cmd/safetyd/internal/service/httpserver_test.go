package service

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/monitor/testbin"
)

// Idle connections, however many, do not keep /healthz, the status page
// or ingest out: with the cap at 64 and 100 idle connections (half kept
// alive after a request, then half silent since connecting), a real
// daemon whose file descriptors are limited below what 100 connections
// need still answers, and holds no more connections than the cap.
// (Without the cap and the idle timeout, the kept-alive connections were
// held for ever and the silent ones until ReadHeaderTimeout.)
func TestIdleConnectionsDoNotStopHealthz(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	bin := testbin.Path(t, "safetyd")
	addr := fixture.FreePort(t)
	// The account has no session file: its runner stops at once and the
	// daemon makes no connection to Telegram.
	cfg := fixture.WriteFile(t, dir, "safetyd.yaml", fmt.Sprintf(`
telegram: {api_id: 1, api_hash_env: TGSAFETY_API_HASH}
accounts:
  - {name: alpha, phone: "%s", dc: test}
sessions_dir: sessions
store: {path: history.db}
http: {listen: "%s", token_env: TGSAFETY_API_TOKEN, max_connections: 64}
`, fixture.PhoneA, addr), 0o600)
	const idle, maxConns, fdLimit = 100, 64, 96
	// 96 descriptors: enough for the cap and the daemon's own files, not
	// for 100 idle connections.
	cmd := exec.Command("sh", "-c", `ulimit -n `+strconv.Itoa(fdLimit)+` && exec "$0" "$@"`, bin, "run", "--config", cfg)
	notify, ready := testbin.NotifySocket(t)
	cmd.Env = append(os.Environ(), "TGSAFETY_API_HASH="+fixture.Hash, "TGSAFETY_API_TOKEN="+fixture.Token, notify)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	base := "http://" + addr
	waitReady(t, ready, &stderr)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := range idle {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i < idle/2 {
			// Kept alive after one request.
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("request on connection %d: %v", i, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	do := func(method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fixture.Token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s with %d idle connections open: %v\n%s", method, path, idle, err, stderr.String())
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	for _, r := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/", "", 200},
		{"POST", "/api/v1/signals", `{"account":"alpha","method":"messages.sendMessage","code":420,"message":"FLOOD_WAIT_30"}`, 202},
		{"GET", "/metrics", "", 200},
	} {
		if got := do(r.method, r.path, r.body); got != r.want {
			t.Errorf("%s %s: %d, want %d", r.method, r.path, got, r.want)
		}
	}
	if runtime.GOOS == "linux" {
		// Evicted connections are closed before the new one is served,
		// so the count is exact now.
		sockets, fds := countSockets(t, cmd.Process.Pid)
		t.Logf("daemon: %d open sockets, %d file descriptors (limit %d)", sockets, fds, fdLimit)
		if sockets > maxConns+1 {
			t.Errorf("the daemon holds %d sockets, want at most %d connections and the listener", sockets, maxConns)
		}
	}
}

// countSockets counts a process's open sockets and file descriptors
// (Linux).
func countSockets(t *testing.T, pid int) (sockets, fds int) {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			sockets++
		}
	}
	return sockets, len(ents)
}

// A page that rebinds its own name to the daemon's address reads the GET
// endpoints as same-origin, but its requests carry its name in Host:
// those get 421 with a plain body. IP addresses, localhost and configured
// names are served.
func TestHostHeaderOfAnotherNameIsRefused(t *testing.T) {
	w := newDaemonWorld(t, "alpha")
	w.cfg.HTTP.AllowedHosts = []string{"Monitor.Internal."}
	base, _, stop := w.start(t)
	defer stop()
	get := func(path, host string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	port := strings.TrimPrefix(base, "http://127.0.0.1:")
	for _, path := range []string{"/healthz", "/api/v1/accounts", "/api/v1/accounts/alpha/events", "/", "/accounts/alpha", "/metrics"} {
		for _, host := range []string{"attacker.example:" + port, "attacker.example", "localhost.attacker.example:" + port, "127.0.0.1.nip.io:" + port} {
			code, h, body := get(path, host)
			if code != http.StatusMisdirectedRequest || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
				t.Errorf("GET %s with Host %s: %d %s, want 421 text/plain", path, host, code, h.Get("Content-Type"))
			}
			if strings.Contains(body, "alpha") || strings.Contains(body, "attacker") {
				t.Errorf("GET %s with Host %s answered %q", path, host, body)
			}
		}
		for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST", "app.localhost:" + port, "[::1]:" + port, "10.0.0.7", "monitor.internal:" + port, "MONITOR.internal."} {
			if code, _, body := get(path, host); code != http.StatusOK {
				t.Errorf("GET %s with Host %s: %d %s, want 200", path, host, code, body)
			}
		}
	}
}
