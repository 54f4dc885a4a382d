package testbin

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// NotifySocket listens where a daemon process started with env (add it to
// the command's environment) sends its readiness (safetyd sends it), and
// returns a channel closed at READY=1: tests wait for the daemon's own word
// instead of polling /readyz.
func NotifySocket(t testing.TB) (env string, ready <-chan struct{}) {
	t.Helper()
	// A short directory: unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				close(ch)
				return
			}
		}
	}()
	return "NOTIFY_SOCKET=" + path, ch
}
