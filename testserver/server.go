package testserver

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

// Epoch is the virtual time a server starts at unless told otherwise.
var Epoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Options configures a Server. The zero value is usable.
type Options struct {
	// DC is the data centre number the server plays. Defaults to 2. The
	// login code is this number repeated five times, as on Telegram's
	// test DCs.
	DC int
	// Clock is the simulation's virtual clock: policy windows, message
	// dates, limits and freezes. MTProto itself stays on the system clock
	// (see docs/testserver.md). Defaults to vclock.New(Epoch).
	Clock *vclock.Clock
	// Profile drives the anti-abuse policy. Defaults to limits.Default().
	Profile *limits.Profile
	// Users is the size of the seeded population. Defaults to 1000.
	Users int
	// Groups adds this many public groups (sim_pub_000, ...) to the three
	// channels and three groups every world has, for scenarios that join
	// more than six. Defaults to 0.
	Groups int
	// Seed makes the population and the simulated spam reports
	// reproducible. Defaults to 1.
	Seed uint64
	// Key is the server's RSA key (2048 bits). Defaults to GenerateKey's,
	// whose fingerprint every supported client can match.
	Key *rsa.PrivateKey
	// Logger receives server-side events. Defaults to zap.NewNop.
	Logger *zap.Logger
	// ReadTimeout is tgtest's connection read timeout, in real time. gotd
	// pings every 60 s, so the tgtest default (30 s) drops idle clients;
	// defaults to 10 minutes.
	ReadTimeout time.Duration
	// Observer, when set, sees every call and connection (observe.go).
	Observer Observer
}

func (o *Options) setDefaults() error {
	if o.DC == 0 {
		o.DC = 2
	}
	if o.DC < 1 || o.DC > 5 {
		return fmt.Errorf("testserver: DC must be 1-5, got %d", o.DC)
	}
	if o.Clock == nil {
		o.Clock = vclock.New(Epoch)
	}
	if o.Profile == nil {
		o.Profile = limits.Default()
	}
	if err := o.Profile.Validate(); err != nil {
		return fmt.Errorf("testserver: profile %q: %w", o.Profile.Name, err)
	}
	if o.Users == 0 {
		o.Users = 1000
	}
	if o.Users < 0 {
		return fmt.Errorf("testserver: Users must not be negative, got %d", o.Users)
	}
	if o.Groups < 0 {
		return fmt.Errorf("testserver: Groups must not be negative, got %d", o.Groups)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Key == nil {
		k, err := GenerateKey()
		if err != nil {
			return err
		}
		o.Key = k
	}
	if n := o.Key.N.BitLen(); n != KeyBits {
		return fmt.Errorf("testserver: Key has %d bits, want %d", n, KeyBits)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 10 * time.Minute
	}
	return nil
}

// Server is a simulated Telegram: a real MTProto server (gotd's tgtest)
// whose methods answer like Telegram's anti-abuse system would.
type Server struct {
	opts    Options
	clock   *vclock.Clock
	profile *limits.Profile
	log     *zap.Logger
	srv     *tgtest.Server
	methods map[uint32]method
	obs     observation

	mem    *memListener
	wire   *wireState
	layers *layerState

	mu      sync.Mutex // guards w and tcpAddr
	w       *world
	tcpAddr *net.TCPAddr

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	trackMu sync.Mutex
	tracked []*connTracker
}

// New creates a server. Call Start to serve in memory, ListenTCP to serve
// on a port too, and Close when done.
func New(opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		opts: opts, clock: opts.Clock, profile: opts.Profile, log: opts.Logger,
		mem: newMemListener(), wire: newWireState(), layers: newLayerState(opts.Logger),
		w: newWorld(opts.Seed, opts.Users, opts.Groups, opts.Clock.Now()),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.methods = s.routes()
	s.srv = tgtest.NewServer(tgtest.NewPrivateKey(opts.Key), tgtest.HandlerFunc(s.onWire), tgtest.ServerOptions{
		DC: opts.DC, ReadTimeout: opts.ReadTimeout,
	})
	return s, nil
}

// Start serves the in-memory transport in the background.
func (s *Server) Start() { s.serve(oldRSAListener{Listener: s.mem, key: s.opts.Key}) }

func (s *Server) serve(l net.Listener) {
	t := track(l)
	s.trackMu.Lock()
	s.tracked = append(s.tracked, t)
	s.trackMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// headListener: no single connection can hold up or stop accepting.
		if err := s.srv.Serve(s.ctx, s.transportListener(newHeadListener(t, headTimeout, s.log))); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("Serve stopped", zap.Error(err))
		}
	}()
}

// ListenTCP also serves on a TCP address (use "127.0.0.1:0" for any free
// port) and returns the address bound.
func (s *Server) ListenTCP(addr string) (*net.TCPAddr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testserver: listen %s: %w", addr, err)
	}
	a := l.Addr().(*net.TCPAddr)
	s.mu.Lock()
	s.tcpAddr = a
	s.mu.Unlock()
	s.serve(oldRSAListener{Listener: l, key: s.opts.Key})
	return a, nil
}

// Close stops serving and waits for the connections to end.
func (s *Server) Close() error {
	s.cancel()
	_ = s.mem.Close()
	s.DropConnections()
	s.wg.Wait()
	return nil
}

// DropConnections closes every client connection (a network fault); the
// clients reconnect with their sessions. It returns how many were open.
func (s *Server) DropConnections() int {
	s.trackMu.Lock()
	defer s.trackMu.Unlock()
	n := 0
	for _, t := range s.tracked {
		n += t.dropAll()
	}
	s.forgetConnections()
	return n
}

// Clock returns the simulation's virtual clock.
func (s *Server) Clock() *vclock.Clock { return s.clock }

// Profile returns the limits profile the policy applies.
func (s *Server) Profile() *limits.Profile { return s.profile }

// DC returns the data centre number the server plays.
func (s *Server) DC() int { return s.opts.DC }

// LoginCode is the code auth.signIn accepts: the DC number five times.
func (s *Server) LoginCode() string { return strings.Repeat(strconv.Itoa(s.opts.DC), 5) }

// PublicKey returns the server's RSA public key, which clients must trust.
func (s *Server) PublicKey() *rsa.PublicKey { return &s.opts.Key.PublicKey }

// PublicKeyPEM returns the public key as a PEM "RSA PUBLIC KEY" block, the
// form gotd's crypto.ParseRSAPublicKeys and Telegram clients read.
func (s *Server) PublicKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(s.PublicKey())})
}

func (s *Server) dcOptions() []tg.DCOption {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dcOptionsLocked()
}

// dcOptionsLocked is dcOptions for callers that hold s.mu. It advertises
// the TCP address bound (loopback when bound to all interfaces, which is
// the address that works on this machine), or a placeholder for the
// in-memory transport, whose dialer ignores it.
func (s *Server) dcOptionsLocked() []tg.DCOption {
	o := tg.DCOption{ID: s.opts.DC, IPAddress: "127.0.0.1", Port: 443}
	if a := s.tcpAddr; a != nil {
		o.Port = a.Port
		if !a.IP.IsUnspecified() {
			o.IPAddress = a.IP.String()
			o.Ipv6 = a.IP.To4() == nil
		}
	}
	return []tg.DCOption{o}
}

// ClientOptions returns gotd client options that reach this server over
// the in-memory transport. Add a SessionStorage (see Session) and
// middlewares as needed.
func (s *Server) ClientOptions() telegram.Options {
	o := s.baseOptions()
	o.Resolver = dcs.Plain(dcs.PlainOptions{Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return s.mem.Dial(ctx)
	}})
	return o
}

// TCPClientOptions returns gotd client options that reach this server over
// TCP; ListenTCP must have been called.
func (s *Server) TCPClientOptions() telegram.Options {
	o := s.baseOptions()
	o.Resolver = dcs.Plain(dcs.PlainOptions{})
	return o
}

func (s *Server) baseOptions() telegram.Options {
	return telegram.Options{
		PublicKeys: []telegram.PublicKey{{RSA: s.PublicKey()}},
		DC:         s.opts.DC,
		DCList:     dcs.List{Options: s.dcOptions()},
	}
}

// method is one RPC handler. It runs under s.mu and must not write to a
// connection: it returns the result and queues pushes on the call.
type method struct {
	name string
	// auth: the caller must be signed in.
	auth bool
	// write: refused with FROZEN_METHOD_INVALID while the account is frozen.
	write bool
	fn    func(c *call) (bin.Encoder, error)
}

// call is one RPC being handled.
type call struct {
	s      *Server
	req    *tgtest.Request
	buf    *bin.Buffer
	now    time.Time
	name   string
	key    [8]byte
	acct   *account // nil before sign-in
	pushes []push
	delay  time.Duration
}

type push struct {
	to  *account
	upd tg.UpdatesClass
}

// vector marks a Vector<T> result.
type vector []bin.Encoder

func (vector) Encode(*bin.Buffer) error { return errors.New("vector is sent with SendVector") }

// boolResult marks a Bool result.
type boolResult bool

func (boolResult) Encode(*bin.Buffer) error { return errors.New("bool is sent with SendBool") }

// onMessage is the tgtest handler: it unpacks the request, routes it and
// answers. Every failure becomes an RPC error: a non-RPC error would make
// tgtest close the connection and the client resend forever.
func (s *Server) onMessage(srv *tgtest.Server, req *tgtest.Request) error {
	info, err := unpack(req.Buf)
	if err != nil {
		return tgerr.New(400, "INPUT_REQUEST_INVALID")
	}
	id, err := req.Buf.PeekID()
	if err != nil {
		return tgerr.New(400, "INPUT_REQUEST_INVALID")
	}
	m, ok := s.methods[id]
	if !ok {
		return tgerr.New(400, "INPUT_METHOD_INVALID_"+strconv.FormatUint(uint64(id), 10))
	}
	c := &call{s: s, req: req, buf: req.Buf, name: m.name, key: req.Session.AuthKey.ID}

	s.mu.Lock()
	c.now = s.clock.Now()
	if info != nil {
		s.w.conns[c.key] = *info
	}
	result, rpcErr, drop := s.handle(c, m)
	s.mu.Unlock()

	if drop {
		return errors.New("testserver: connection dropped by fault injection")
	}
	if c.delay > 0 {
		select {
		case <-s.clock.Timer(c.delay).C():
		case <-s.ctx.Done():
			return nil
		}
	}
	if rpcErr != nil {
		return rpcErr
	}
	if err := s.answered(srv, req, s.send(srv, req, result)); err != nil {
		return err
	}
	s.deliver(c.pushes)
	return nil
}

// handle runs under s.mu.
func (s *Server) handle(c *call, m method) (bin.Encoder, *tgerr.Error, bool) {
	c.acct = s.w.keys[c.key]
	if a := c.acct; a != nil {
		sess := a.sessions[c.key]
		if sess != nil {
			live := c.req.Session
			sess.live, sess.active = &live, c.now
			if ci, ok := s.w.conns[c.key]; ok {
				sess.conn = ci
				if ci.langCode != "" {
					a.lang = ci.langCode
				}
			}
		}
		if f := a.takeFault(c.name); f != nil {
			switch {
			case f.drop:
				return nil, nil, true
			case f.err != nil:
				return nil, f.err, false
			case f.delay > 0:
				c.delay = f.delay
			}
		}
		if a.policy.banned && !strings.HasPrefix(c.name, "help.") {
			// Delivered like production: on the next call, which after a
			// reconnect is users.getUsers(self) (gotd's OnSelfError).
			return nil, tgerr.New(401, "USER_DEACTIVATED_BAN"), false
		}
		if m.write && a.policy.frozen() {
			return nil, errFrozen, false
		}
	} else if m.auth {
		if s.w.revoked(c.key) {
			return nil, tgerr.New(401, "SESSION_REVOKED"), false
		}
		return nil, tgerr.New(401, "AUTH_KEY_UNREGISTERED"), false
	}
	res, err := m.fn(c)
	if err != nil {
		var rpcErr *tgerr.Error
		if errors.As(err, &rpcErr) {
			return nil, rpcErr, false
		}
		s.log.Warn("Handler failed", zap.String("method", c.name), zap.Error(err))
		return nil, tgerr.New(500, "INTERNAL"), false
	}
	return res, nil, false
}

func (s *Server) send(srv *tgtest.Server, req *tgtest.Request, result bin.Encoder) error {
	if c := s.layers.conv(req.Session.AuthKey.ID); c != nil {
		return c.send(s, srv, req, result)
	}
	switch r := result.(type) {
	case vector:
		return srv.SendVector(req, r...)
	case boolResult:
		return srv.SendBool(req, bool(r))
	default:
		return srv.SendResult(req, r)
	}
}

// deliver pushes updates to every connected session of each recipient.
// Sessions whose connection is gone are forgotten (tgtest never cleans its
// own table).
func (s *Server) deliver(pushes []push) {
	for _, p := range pushes {
		s.mu.Lock()
		var targets []tgtest.Session
		for _, sess := range p.to.sessions {
			if sess.live != nil {
				targets = append(targets, *sess.live)
			}
		}
		s.mu.Unlock()
		for _, t := range targets {
			upd, ok := s.layers.push(s, t.AuthKey.ID, p.upd)
			if !ok {
				continue
			}
			if err := s.srv.Send(s.ctx, t, tgtest.MessageFromServer, upd); err != nil {
				s.srv.ForceDisconnect(t) // see answered
				s.mu.Lock()
				for _, sess := range p.to.sessions {
					if sess.live != nil && sess.live.ID == t.ID {
						sess.live = nil
					}
				}
				s.mu.Unlock()
			}
		}
	}
}

// unpack strips the invoke wrappers in place, returning what
// initConnection said when the request carried it.
func unpack(b *bin.Buffer) (*connInfo, error) {
	var info *connInfo
	for {
		id, err := b.PeekID()
		if err != nil {
			return nil, err
		}
		var obj peekID
		switch id {
		case tg.InvokeWithLayerRequestTypeID:
			r := tg.InvokeWithLayerRequest{Query: &obj}
			err = r.Decode(b)
		case tg.InitConnectionRequestTypeID:
			r := tg.InitConnectionRequest{Query: &obj}
			if err = r.Decode(b); err == nil {
				info = &connInfo{apiID: r.APIID, deviceModel: r.DeviceModel, systemVersion: r.SystemVersion,
					appVersion: r.AppVersion, langCode: r.LangCode}
			}
		case tg.InvokeWithoutUpdatesRequestTypeID:
			r := tg.InvokeWithoutUpdatesRequest{Query: &obj}
			err = r.Decode(b)
		case tg.InvokeAfterMsgRequestTypeID:
			r := tg.InvokeAfterMsgRequest{Query: &obj}
			err = r.Decode(b)
		default:
			return info, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// peekID decodes nothing: it leaves the buffer at the wrapped query.
type peekID struct{}

func (*peekID) Decode(b *bin.Buffer) error { _, err := b.PeekID(); return err }
func (*peekID) Encode(*bin.Buffer) error   { return errors.New("peekID is not encodable") }
