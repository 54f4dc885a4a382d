package testserver

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestHeadListenerDropsSilentConnectionsAndKeepsAccepting: a connection
// that never sends its transport tag is closed at its deadline, one that
// closes at once is dropped, neither reaches Accept nor stops it, and a
// client that sends its tag is accepted with those bytes intact.
func TestHeadListenerDropsSilentConnectionsAndKeepsAccepting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := newHeadListener(l, 50*time.Millisecond, zap.NewNop())
	defer func() { _ = h.Close() }()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	_ = dial().Close() // nc -z
	silent := dial()
	// The server closes the silent connection at its deadline: the read
	// ends with EOF (the deadline below is a failure guard only).
	_ = silent.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("silent connection: read %v, want EOF (closed by the server)", err)
	}
	// A client with a tag (intermediate: ee ee ee ee) gets through, and
	// what it sent is read back in full.
	client := dial()
	msg := []byte{0xee, 0xee, 0xee, 0xee, 1, 2, 3}
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := h.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	var c net.Conn
	select {
	case c = <-accepted:
	case <-time.After(time.Minute):
		t.Fatal("the client with a tag was not accepted")
	}
	defer func() { _ = c.Close() }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("read %x, %v; want %x", got, err, msg)
	}
	// Accept fails only once the listener is closed.
	_ = h.Close()
	if _, err := h.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}
