package testserver

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gotd/td/proto/codec"
	"go.uber.org/zap"
)

// headTimeout bounds, in real time, how long a new connection may take to
// send its MTProto transport tag. gotd clients send it with their first
// packet, right after connecting.
const headTimeout = 30 * time.Second

// headListener accepts connections in its own loop and hands a connection
// to Accept only once its transport tag has arrived, read in a goroutine
// per connection with a deadline.
//
// gotd's transport.Listener detects the codec inside Accept, reading from
// the new connection without a deadline, and tgtest stops serving at the
// first Accept error. Behind it directly, one idle connection blocks every
// later client, and one that closes without a byte (a port probe, nc -z)
// stops the server for good. Here a connection that sends nothing is
// closed after its deadline, one that closes early is dropped, and
// neither is seen by Accept; Accept fails only once the listener is
// closed. detectCodec then finds its bytes already read and cannot block.
type headListener struct {
	net.Listener
	timeout time.Duration
	log     *zap.Logger
	ready   chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func newHeadListener(l net.Listener, timeout time.Duration, log *zap.Logger) *headListener {
	h := &headListener{Listener: l, timeout: timeout, log: log, ready: make(chan net.Conn), done: make(chan struct{})}
	go h.acceptLoop()
	return h
}

// Accept returns the next connection whose transport tag has arrived.
func (h *headListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ready:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections still sending their tag are closed
// by their deadline or by the server's DropConnections.
func (h *headListener) Close() error {
	h.once.Do(func() { close(h.done) })
	return h.Listener.Close()
}

// acceptLoop accepts until the listener is closed. An error of the
// listener itself (out of file descriptors, an aborted handshake) is
// logged and retried after a short pause, as net/http does.
func (h *headListener) acceptLoop() {
	var pause time.Duration
	for {
		c, err := h.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				_ = h.Close()
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			h.log.Warn("Accept failed; retrying", zap.Error(err), zap.Duration("pause", pause))
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-h.done:
				t.Stop()
				return
			}
			continue
		}
		pause = 0
		go h.readHead(c)
	}
}

// readHead reads the transport tag gotd's detectCodec looks at (one byte
// for the abridged codec, else four) and passes the connection on with
// those bytes kept for it.
func (h *headListener) readHead(c net.Conn) {
	var buf [4]byte
	n := 1
	_ = c.SetReadDeadline(time.Now().Add(h.timeout))
	_, err := io.ReadFull(c, buf[:1])
	if err == nil && buf[0] != codec.AbridgedClientStart[0] {
		_, err = io.ReadFull(c, buf[1:4])
		n = 4
	}
	if err == nil {
		err = c.SetReadDeadline(time.Time{})
	}
	if err != nil {
		h.log.Debug("Connection dropped before its transport header", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
		_ = c.Close()
		return
	}
	select {
	case h.ready <- &headConn{Conn: c, head: buf[:n]}:
	case <-h.done:
		_ = c.Close()
	}
}

// headConn replays the bytes readHead consumed before reading on.
type headConn struct {
	net.Conn
	head []byte
}

func (c *headConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
