package httpserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
)

// A configured http.listen host name is accepted without listing it.
func TestAllowedHostsIncludeListenName(t *testing.T) {
	got := allowedHosts(config.HTTPConfig{Listen: "Safetyd.Example:9464", AllowedHosts: []string{"b.example."}})
	for _, h := range []string{"localhost", "safetyd.example", "b.example"} {
		if !got[h] {
			t.Errorf("%s not allowed: %v", h, got)
		}
	}
}

// At the cap, a connection with a request in flight is never closed to
// make room: the new connection is refused instead. Once requests finish,
// their connections are idle and give way to new ones.
func TestConnectionCapNeverClosesBusyConnections(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "done")
	})
	srv, ln := New(config.HTTPConfig{Listen: "127.0.0.1:0", MaxConnections: 2}, inner, h, zap.NewNop())
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	addr := inner.Addr().String()
	send := func(path string) (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path)
		return c, bufio.NewReader(c)
	}
	read := func(r *bufio.Reader) (string, error) {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	_, r1 := send("/block")
	<-entered
	_, r2 := send("/block")
	<-entered
	_, r3 := send("/healthz")
	if body, err := read(r3); err == nil {
		t.Fatalf("a third connection was served (%q) with both others busy", body)
	}
	close(release)
	for i, r := range []*bufio.Reader{r1, r2} {
		if body, err := read(r); err != nil || body != "done" {
			t.Fatalf("busy connection %d: %q %v, want its answer", i+1, body, err)
		}
	}
	_, r4 := send("/healthz")
	if body, err := read(r4); err != nil || body != "done" {
		t.Fatalf("with the others idle, a new connection got %q %v", body, err)
	}
}
