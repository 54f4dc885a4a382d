package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
)

func TestNotifySendsTheStateToTheSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv(Env, path)
	if err := Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := ln.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

func TestNotifyWithoutSocketDoesNothing(t *testing.T) {
	t.Setenv(Env, "")
	if err := Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(Env, filepath.Join(t.TempDir(), "nobody-listens"))
	if err := Notify("READY=1"); err == nil {
		t.Error("no error for a socket nobody listens on")
	}
}
