package httpserver

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"go.uber.org/zap"
)

// The HTTP server's limits (docs/api.md, "Connections"). The API's
// requests are small (bodies of at most 1 MiB) and quick; its clients are
// a Prometheus scraper, dashboards, a few reporters and a person with a
// browser. Without these, idle keep-alive connections were held for ever
// and a few thousand of them used up the process's file descriptors, so
// that /healthz, the status page and ingest stopped answering.
const (
	// httpReadHeaderTimeout bounds reading a request's headers.
	httpReadHeaderTimeout = 10 * time.Second
	// httpReadTimeout bounds reading a whole request, a 1 MiB batch of
	// signals included.
	httpReadTimeout = 30 * time.Second
	// httpWriteTimeout bounds a request from the end of its headers to the
	// end of its answer. The slowest answers (a 30-day status page, a
	// batch waiting for its commit) take well under a second.
	httpWriteTimeout = 60 * time.Second
	// httpIdleTimeout closes keep-alive connections idle this long;
	// scrapers reconnect at no cost.
	httpIdleTimeout = 60 * time.Second
)

// New returns the daemon's HTTP server for h, with the timeouts
// above, the Host check (hostCheck) and ln wrapped in the connection cap
// (connCap); serve it with srv.Serve(ln).
func New(cfg config.HTTPConfig, ln net.Listener, h http.Handler, log *zap.Logger) (*http.Server, net.Listener) {
	limit := cfg.MaxConnections
	if limit <= 0 {
		limit = config.DefaultMaxConnections
	}
	lc := &connCap{Listener: ln, max: limit, conns: map[net.Conn]connEntry{}, log: log.Named("http")}
	srv := &http.Server{
		Handler:           hostCheck(allowedHosts(cfg), h),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         lc.connState,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	return srv, lc
}

// connCap is a listener that keeps at most max connections open. When a
// new connection would exceed it, the connection idle the longest (no
// request in flight: kept alive, or opened and silent) is closed to make
// room, so that idle connections, however many, cannot keep a health
// check or an ingest request out. Only when every connection has a
// request in flight is the new one closed at once. (netutil.LimitListener
// would instead make the new connection wait until an idle one times out.)
type connCap struct {
	net.Listener
	max int
	log *zap.Logger

	mu      sync.Mutex
	conns   map[net.Conn]connEntry
	seq     uint64 // orders state changes: lower is idle longer
	refused bool   // the last connection was refused (logged once per episode)
}

type connEntry struct {
	busy bool   // a request is in flight
	seq  uint64 // when the entry last changed state
}

// Accept implements net.Listener.
func (l *connCap) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if len(l.conns) >= l.max {
			victim := l.idlestLocked()
			if victim == nil {
				first := !l.refused
				l.refused = true
				l.mu.Unlock()
				_ = c.Close()
				if first {
					l.log.Warn("HTTP connection cap reached with a request in flight on every connection; refusing new connections", zap.Int("max_connections", l.max))
				}
				continue
			}
			delete(l.conns, victim)
			_ = victim.Close()
		}
		l.refused = false
		l.seq++
		l.conns[c] = connEntry{seq: l.seq}
		l.mu.Unlock()
		return c, nil
	}
}

// idlestLocked returns the connection without a request in flight that
// has been so the longest, or nil.
func (l *connCap) idlestLocked() net.Conn {
	var best net.Conn
	var bestSeq uint64
	for c, e := range l.conns {
		if !e.busy && (best == nil || e.seq < bestSeq) {
			best, bestSeq = c, e.seq
		}
	}
	return best
}

// connState is the server's ConnState hook: it tracks which connections
// are busy and forgets closed ones. A connection closed by Accept is
// already forgotten and stays so.
func (l *connCap) connState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.conns[c]
	switch {
	case st == http.StateClosed || st == http.StateHijacked:
		delete(l.conns, c)
	case ok:
		l.seq++
		l.conns[c] = connEntry{busy: st == http.StateActive, seq: l.seq}
	}
}

// allowedHosts returns the host names the daemon answers to besides IP
// addresses: loopback names, the host of http.listen when it is a name,
// and http.allowed_hosts; all lower case without a final dot.
func allowedHosts(cfg config.HTTPConfig) map[string]bool {
	out := map[string]bool{"localhost": true}
	if host, _, err := net.SplitHostPort(cfg.Listen); err == nil && host != "" {
		out[normalHost(host)] = true
	}
	for _, h := range cfg.AllowedHosts {
		out[normalHost(h)] = true
	}
	return out
}

func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// hostCheck refuses requests whose Host header names a host the daemon
// does not answer to, with 421 and a plain-text body. A web page can
// rebind its own name to 127.0.0.1 (DNS rebinding) and then read the GET
// endpoints, the status page and /metrics as same-origin; its requests
// still carry its own name in Host. An IP address in Host cannot come
// from such a page, so every IP address is accepted, as are localhost and
// *.localhost (browsers resolve those to loopback themselves) and the
// configured names. A request without Host (HTTP/1.0) is not from a
// browser and is accepted.
func hostCheck(allowed map[string]bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = normalHost(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		if host == "" || allowed[host] || host == "localhost" || strings.HasSuffix(host, ".localhost") {
			next.ServeHTTP(w, r)
			return
		}
		if _, err := netip.ParseAddr(host); err == nil {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusMisdirectedRequest)
		// The name is not repeated: it is the caller's, and may be anything.
		_, _ = w.Write([]byte("421 misdirected request: this daemon does not answer to the host name in the Host header; " +
			"use an IP address or localhost, or add the name to http.allowed_hosts (docs/configuration.md)\n"))
	})
}
