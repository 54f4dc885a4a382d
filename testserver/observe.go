package testserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/proto/codec"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/transport"

	"github.com/tgsafety/tgsafety/monitor/limits"
)

// Observer sees what reaches the server: every call of every account with
// its answer, and the life of every connection (opened, the auth keys it
// carries, closed). It is how `scenario-run audit` judges a client program
// by what it did rather than by what it says it did (docs/audit.md). Set
// Options.Observer; a server without one pays nothing.
//
// The server calls it on the connection's goroutine, outside its own
// lock, so an observer may use the control API: BeforeCall may Inject a
// fault or Ban the account so that the very call it is told of meets it.
// Calls from different connections arrive concurrently, and the
// connection waits for the observer: it must be quick.
type Observer interface {
	// BeforeCall is told of a call before the server handles it.
	// Answered, Err and Dropped are not set yet.
	BeforeCall(CallRecord)
	// AfterCall is told of the same call (same Seq) once it is answered.
	AfterCall(CallRecord)
	// ConnEvent is told when a connection opens, carries an auth key it
	// was not the latest carrier of, and closes.
	ConnEvent(ConnEvent)
}

// CallRecord is one RPC as the server saw it.
type CallRecord struct {
	// Seq numbers the server's calls from 1, in arrival order.
	Seq uint64
	// Method is the TL name (contacts.resolveUsername), or "#1a2b3c4d"
	// for a constructor gotd's schema does not know.
	Method string
	TypeID uint32
	// Body is the request without its invoke wrappers (invokeWithLayer,
	// initConnection, ...). It is valid only during the observer's call:
	// copy what must be kept.
	Body []byte
	// AuthKeyID identifies the auth key the call was encrypted with.
	AuthKeyID [8]byte
	// Session is the client's MTProto session id.
	Session int64
	// MsgID is the MTProto message id: its upper 32 bits are the
	// client's clock, in Unix seconds, when it sent the call, and its
	// lower bits the fraction of that second, as each library writes it
	// (nanoseconds in gotd, nanoseconds × 4 in Telethon and GramJS, a
	// 2^32 fraction in TDLib).
	MsgID int64
	// Conn is the connection that carried the call (ConnEvent.Conn): the
	// one that last carried a message under AuthKeyID.
	Conn uint64
	// Arrived is the real time the server began handling the call. The
	// simulation's clock is the server's Clock().
	Arrived time.Time
	// Answered is the real time the answer was sent (AfterCall only).
	Answered time.Time
	// Err is the RPC error answered, nil on success (AfterCall only).
	Err *tgerr.Error
	// Dropped: the connection was closed instead of answering (an
	// injected Drop, or the answer could not be written).
	Dropped bool

	srv *Server
}

// UserID returns the user id of the account the call's auth key is
// signed in to now (in AfterCall: after the call, so an auth.signIn's
// account), or 0 when it is signed in to none (before auth.signIn, after
// a revocation or logOut). It takes the server's lock: an observer that
// knows the key asks only after the calls that sign in.
func (r *CallRecord) UserID() int64 {
	if r.srv == nil {
		return 0
	}
	return r.srv.userOfKey(r.AuthKeyID)
}

// ConnEventKind says what happened to a connection.
type ConnEventKind uint8

// The connection events.
const (
	// ConnOpened: a client connected and sent its transport header.
	ConnOpened ConnEventKind = iota + 1
	// ConnKey: the connection carried a message under Key while it was
	// not the latest connection to do so (its first message under the
	// key, or another connection used the key in between). A zero Key is
	// an unencrypted message: a key exchange.
	ConnKey
	// ConnClosed: the connection ended, whichever side closed it.
	ConnClosed
)

// String names the kind for reports.
func (k ConnEventKind) String() string {
	switch k {
	case ConnOpened:
		return "opened"
	case ConnKey:
		return "key"
	case ConnClosed:
		return "closed"
	}
	return fmt.Sprintf("ConnEventKind(%d)", uint8(k))
}

// ConnEvent is one event in a connection's life.
type ConnEvent struct {
	Kind ConnEventKind
	// Conn numbers the server's connections from 1.
	Conn uint64
	// Key is the auth key id (ConnKey only; zero for a key exchange).
	Key [8]byte
	// Time is real time.
	Time time.Time
}

// observation is the server's side of an Observer: sequence numbers and
// which connection last carried each auth key.
type observation struct {
	seq   atomic.Uint64
	conns atomic.Uint64

	mu     sync.RWMutex
	owners map[[8]byte]*keyOwner
}

// keyOwner is the connection that last carried a message under one key.
type keyOwner struct{ conn atomic.Pointer[obsConn] }

func (o *observation) owner(key [8]byte) *keyOwner {
	o.mu.RLock()
	k := o.owners[key]
	o.mu.RUnlock()
	if k != nil {
		return k
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.owners == nil {
		o.owners = map[[8]byte]*keyOwner{}
	}
	if k = o.owners[key]; k == nil {
		k = &keyOwner{}
		o.owners[key] = k
	}
	return k
}

func (o *observation) connOf(key [8]byte) uint64 {
	o.mu.RLock()
	k := o.owners[key]
	o.mu.RUnlock()
	if k == nil {
		return 0
	}
	if c := k.conn.Load(); c != nil {
		return c.id
	}
	return 0
}

// call handles one RPC call once onWire has answered service messages and
// translated the request to the server's layer: onMessage, observed when
// an Observer is set (so the observer sees the method as layer 228 names
// it, whatever the client's layer).
func (s *Server) call(srv *tgtest.Server, req *tgtest.Request) error {
	if s.opts.Observer == nil {
		return s.onMessage(srv, req)
	}
	return s.observeMessage(srv, req)
}

// observeMessage tells the observer of a call before and after onMessage
// handles it.
func (s *Server) observeMessage(srv *tgtest.Server, req *tgtest.Request) error {
	o := s.opts.Observer
	rec := CallRecord{Seq: s.obs.seq.Add(1), AuthKeyID: req.Session.AuthKey.ID, Session: req.Session.ID,
		MsgID: req.MsgID, Arrived: time.Now(), srv: s}
	if body, ok := stripWrappers(req.Buf.Buf); ok {
		rec.Body = body
		if id, err := (&bin.Buffer{Buf: body}).PeekID(); err == nil {
			rec.TypeID, rec.Method = id, s.methodName(id)
		}
	}
	if rec.Method == "" {
		rec.Method = "(undecodable)"
	}
	rec.Conn = s.obs.connOf(rec.AuthKeyID)
	o.BeforeCall(rec)

	err := s.onMessage(srv, req)

	rec.Answered = time.Now()
	if err != nil {
		// onMessage returns RPC errors unwrapped: the type assertion
		// saves errors.As its reflection on every failed call.
		rpcErr, ok := err.(*tgerr.Error)
		if !ok && !errors.As(err, &rpcErr) {
			rec.Dropped = true
		}
		rec.Err = rpcErr
	}
	o.AfterCall(rec)
	return err
}

// stripWrappers returns the request inside its invoke wrappers without
// decoding it: the wrappers every call carries (invokeWithLayer,
// invokeWithoutUpdates, invokeAfterMsg) are skipped by their fixed
// sizes; initConnection, on a connection's first call, is decoded by
// unpack. b is not modified: onMessage reads the request again.
func stripWrappers(b []byte) ([]byte, bool) {
	for len(b) >= 4 {
		switch binary.LittleEndian.Uint32(b) {
		case tg.InvokeWithLayerRequestTypeID: // id, layer:int
			if len(b) < 8 {
				return nil, false
			}
			b = b[8:]
		case tg.InvokeWithoutUpdatesRequestTypeID: // id
			b = b[4:]
		case tg.InvokeAfterMsgRequestTypeID: // id, msg_id:long
			if len(b) < 12 {
				return nil, false
			}
			b = b[12:]
		case tg.InitConnectionRequestTypeID:
			buf := bin.Buffer{Buf: b}
			if _, err := unpack(&buf); err != nil {
				return nil, false
			}
			return buf.Buf, true
		default:
			return b, true
		}
	}
	return nil, false
}

func (s *Server) userOfKey(key [8]byte) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.w.keys[key]; a != nil {
		return a.u.id
	}
	return 0
}

// tlNames maps every constructor of gotd's schema to its TL name.
var tlNames = sync.OnceValue(func() map[uint32]string {
	m := tg.TypesMap()
	out := make(map[uint32]string, len(m))
	for id, name := range m {
		if i := strings.IndexByte(name, '#'); i > 0 {
			name = name[:i]
		}
		out[id] = name
	}
	return out
})

// methodName names a request: the server's own name for the methods it
// serves, gotd's schema for the others (auth.exportLoginToken is not
// served, and an audit must still see it).
func (s *Server) methodName(id uint32) string {
	if m, ok := s.methods[id]; ok {
		return m.name
	}
	if name, ok := tlNames()[id]; ok {
		return name
	}
	return fmt.Sprintf("#%08x", id)
}

// Methods returns the TL names of the methods the server serves, sorted;
// any other method is answered INPUT_METHOD_INVALID_<id>.
func (s *Server) Methods() []string {
	out := make([]string, 0, len(s.methods))
	for _, m := range s.methods {
		out = append(out, m.name)
	}
	sort.Strings(out)
	return out
}

// DMAction says what a private message from the account with user id
// from to the user with id to would spend in the policy: limits.DMContact
// when to has from's number in their contacts or wrote first (whom a
// limited account may still write to), limits.DMNonContact otherwise, and
// "" when it spends nothing or cannot be sent (SpamBot, a bot, an unknown
// user, from is not a simulated account). An audit tells cold DMs from
// others with it.
func (s *Server) DMAction(from, to int64) limits.Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, t := s.w.users[from], s.w.users[to]
	if f == nil || f.acct == nil || t == nil || t.bot {
		return ""
	}
	if t == f || knows(t, f.acct) {
		return limits.DMContact
	}
	return limits.DMNonContact
}

// transportListener is what tgtest serves: with an Observer, connections
// are numbered and their messages' auth keys watched.
func (s *Server) transportListener(l net.Listener) transport.Listener {
	if s.opts.Observer == nil {
		return transport.Listen(l)
	}
	return transport.ListenCodec(func() transport.Codec { return &obsCodec{s: s} }, &obsListener{Listener: l, s: s})
}

// obsListener numbers accepted connections and reports them opened.
type obsListener struct {
	net.Listener
	s *Server
}

func (l *obsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	oc := &obsConn{Conn: c, s: l.s, id: l.s.obs.conns.Add(1)}
	l.s.connEvent(ConnEvent{Kind: ConnOpened, Conn: oc.id})
	return oc, nil
}

func (s *Server) connEvent(e ConnEvent) {
	e.Time = time.Now()
	s.opts.Observer.ConnEvent(e)
}

// obsConn is an observed connection.
type obsConn struct {
	net.Conn
	s  *Server
	id uint64

	// Read side only (one reader per connection):
	seen  bool
	key   [8]byte
	owner *keyOwner

	closed sync.Once
}

// saw notes the auth key of a message read from the connection. The
// common case, the same key as the previous message with no other
// connection in between, is one atomic load.
func (c *obsConn) saw(key [8]byte) {
	if c.seen && key == c.key && (c.owner == nil || c.owner.conn.Load() == c) {
		return
	}
	c.seen, c.key, c.owner = true, key, nil
	if key != ([8]byte{}) {
		c.owner = c.s.obs.owner(key)
		c.owner.conn.Store(c)
	}
	c.s.connEvent(ConnEvent{Kind: ConnKey, Conn: c.id, Key: key})
}

func (c *obsConn) Close() error {
	c.closed.Do(func() { c.s.connEvent(ConnEvent{Kind: ConnClosed, Conn: c.id}) })
	return c.Conn.Close()
}

// obsCodec detects the client's transport codec as gotd's listener does,
// and watches the auth key id that starts every MTProto message.
type obsCodec struct {
	s     *Server
	conn  *obsConn
	inner transport.Codec
	// r replays bytes read while detecting the codec (the full codec has
	// no tag: its first bytes are the first message's).
	r io.Reader
}

func (c *obsCodec) ReadHeader(r io.Reader) error {
	c.conn, _ = r.(*obsConn)
	var buf [4]byte
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return fmt.Errorf("read first byte: %w", err)
	}
	if buf[0] == codec.AbridgedClientStart[0] {
		c.inner = transport.Abridged.Codec()
		return nil
	}
	if _, err := io.ReadFull(r, buf[1:]); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	switch buf {
	case codec.IntermediateClientStart:
		c.inner = transport.Intermediate.Codec()
	case codec.PaddedIntermediateClientStart:
		c.inner = transport.PaddedIntermediate.Codec()
	default:
		c.inner = transport.Full.Codec()
		c.r = io.MultiReader(bytes.NewReader(buf[:]), r)
	}
	return nil
}

func (c *obsCodec) WriteHeader(w io.Writer) error { return c.inner.WriteHeader(w) }

func (c *obsCodec) Write(w io.Writer, b *bin.Buffer) error { return c.inner.Write(w, b) }

func (c *obsCodec) Read(r io.Reader, b *bin.Buffer) error {
	if c.r != nil {
		r = c.r
	}
	if err := c.inner.Read(r, b); err != nil {
		return err
	}
	if c.conn != nil && len(b.Buf) >= 8 {
		c.conn.saw([8]byte(b.Buf[:8]))
	}
	return nil
}
