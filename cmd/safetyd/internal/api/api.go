package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/dedup"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/bearer"
	"github.com/tgsafety/tgsafety/monitor/jsonbody"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// The daemon's HTTP API (docs/api.md): account states and histories for
// dashboards and scripts, probe requests, and the ingest endpoint through
// which applications report RPC errors the middleware did not see. Every
// answer is JSON; /metrics is mounted next to this handler by the daemon.

// Limits of the API.
const (
	// maxBody bounds request bodies: a full batch of signals is about
	// 150 KiB.
	maxBody = 1 << 20
	// maxSignalBatch is how many signals one POST /api/v1/signals carries.
	maxSignalBatch = 1000
	// defaultEventsLimit and maxEventsLimit bound GET .../events.
	defaultEventsLimit = 100
	maxEventsLimit     = 1000
	// defaultEventsWindow is how far back GET .../events looks by default.
	defaultEventsWindow = 24 * time.Hour
	// maxSignalSkew is how far in the future a reported signal may be
	// dated (clock skew between the reporter and the daemon).
	maxSignalSkew = 5 * time.Minute
	// maxMethodLength and maxMessageLength bound the strings of a signal:
	// the method is a metric label value.
	maxMethodLength  = 64
	maxMessageLength = 128
)

// Deps is what the API needs from the running daemon; tests fill it with
// real monitor/store objects.
type Deps struct {
	Monitor *monitor.Monitor
	// Store serves GET .../events; nil means the events come from each
	// account's in-memory ring (Account.Events).
	Store store.Store
	// Writer commits the signals reported to POST /api/v1/signals before
	// the API acknowledges them. Nil means they are applied to the account
	// only and acknowledged at once, without any durability; the daemon
	// always sets it.
	Writer *store.Writer
	// Scheduler returns an account's probe scheduler; nil, or nil for an
	// account, means the account has none (POST .../probe answers 409).
	Scheduler func(account string) *probe.Scheduler
	// Token is the bearer token of the mutating endpoints. Empty means
	// they answer 403: the API never accepts writes without a token.
	Token string
	// Now is the monitor's clock.
	Now func() time.Time
	// Retention is how long the store keeps events (store.retention);
	// reported signals older than that are refused. Zero means
	// store.DefaultRetention, as for the store's pruning.
	Retention time.Duration
	// Ready reports why the daemon is not ready (nil: ready).
	Ready func() error
	// Hold, when set, is taken before reported signals are looked up and
	// applied to their accounts, and released once they are. It fails
	// (503) while accounts are being restored from the store (start-up, a
	// reload adding one back): a signal applied to an account before its
	// restore would be acknowledged and then overwritten by it. Ingest
	// waits for it, not for Ready, because a report is how a store that
	// failed gets its next, succeeding, commit.
	Hold func() (release func(), err error)
	// NotMonitored lists the accounts whose client stopped for good, with
	// why (/readyz shows them; nil: none).
	NotMonitored func() map[string]string
	// Version is reported by /healthz.
	Version string
	// Dedup, when set, is the monitor's Sink (wrapping the Writer): the
	// API tells it which signal events it commits itself, so that the
	// copy ObserveSignal emits is not written a second time. Without it,
	// and with the Writer as the monitor's Sink, reported signals are
	// stored twice.
	Dedup *dedup.Sink
	// Fleet, on a PostgreSQL fleet, answers for the configured accounts
	// other replicas run (nil: every account is in Monitor).
	Fleet Fleet
	// Ingest counts reported signals by result
	// (tgsafety_ingest_signals_total); nil counts nothing.
	Ingest *prometheus.CounterVec
}

// Fleet is what a replica of a PostgreSQL fleet knows of the accounts
// it does not run.
type Fleet interface {
	// Configured reports whether name is one of the fleet's accounts.
	Configured(name string) bool
	// Remote returns the stored state of every configured account, each
	// with the replica holding its lease; the API shows it for those this
	// replica does not run.
	Remote(ctx context.Context) ([]Remote, error)
	// Enqueue stores reported signal events for the replica that runs
	// their account; it returns once they are durable.
	Enqueue(ctx context.Context, events []monitor.Event) error
}

// Remote is an account another replica runs, as the store has it.
type Remote struct {
	Snapshot monitor.Snapshot
	// Replica holds the account's lease ("" while nobody does).
	Replica string
}

// handler is the handler New returns.
type handler struct {
	d   Deps
	mux *http.ServeMux
}

// New returns the daemon's API handler (everything but /metrics).
func New(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	a := &handler{d: d, mux: http.NewServeMux()}
	routes := []struct {
		method, path string
		mutating     bool
		fn           func(r *http.Request) (int, any, error)
	}{
		{http.MethodGet, "/healthz", false, a.healthz},
		{http.MethodGet, "/readyz", false, a.readyz},
		{http.MethodGet, "/api/v1/accounts", false, a.accounts},
		{http.MethodGet, "/api/v1/accounts/{name}", false, a.account},
		{http.MethodGet, "/api/v1/accounts/{name}/events", false, a.events},
		{http.MethodPost, "/api/v1/accounts/{name}/probe", true, a.probe},
		{http.MethodPost, "/api/v1/signals", true, a.signals},
	}
	for _, rt := range routes {
		a.mux.Handle(rt.method+" "+rt.path, a.wrap(rt.mutating, rt.fn))
		// The same path without a method catches every other method.
		allow := rt.method
		if rt.method == http.MethodGet {
			allow = "GET, HEAD"
		}
		a.mux.HandleFunc(rt.path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{fmt.Sprintf("method %s not allowed; use %s", r.Method, rt.method)})
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{"no such endpoint"})
	})
	return a
}

// ServeHTTP sets the headers every answer carries and routes.
func (a *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// wrap turns an endpoint function into a handler, checking the origin and
// the token of mutating endpoints first, so that an unauthenticated caller
// learns nothing about accounts.
func (a *handler) wrap(mutating bool, fn func(r *http.Request) (int, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mutating {
			// Browsers send Origin; this API's clients are programs.
			// Refusing it keeps a web page from posting to a loopback API.
			if r.Header.Get("Origin") != "" {
				writeJSON(w, http.StatusForbidden, errorBody{"requests from web pages are not accepted"})
				return
			}
			if a.d.Token == "" {
				writeJSON(w, http.StatusForbidden, errorBody{"API token not configured; set http.token_env or http.token_file to enable this endpoint"})
				return
			}
			if msg := bearer.Check(r, a.d.Token); msg != "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="safetyd"`)
				writeJSON(w, http.StatusUnauthorized, errorBody{msg})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		status, v, err := fn(r)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, status, v)
	})
}

// errorBody is every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// httpError is an error with the status it is answered with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return errorf(http.StatusBadRequest, format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) { jsonbody.Write(w, status, v) }

func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		writeJSON(w, he.status, errorBody{he.msg})
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)})
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"not stored: " + err.Error()})
	default:
		// The cause (a driver's text such as "database or disk is full")
		// is logged where it happened; the body stays plain.
		writeJSON(w, http.StatusInternalServerError, errorBody{"internal error: not stored; see the daemon's log"})
	}
}

// decodeBody reads exactly one JSON object into v (jsonbody.Decode: no
// unknown fields, no trailing data); an empty body is allowed when
// emptyOK. Problems are answered as 400s, an oversized body as 413.
func decodeBody(r *http.Request, v any, emptyOK bool) error {
	err := jsonbody.Decode(r.Body, v, emptyOK)
	var br *jsonbody.BadRequest
	if errors.As(err, &br) {
		return badRequest("%s", br.Msg)
	}
	return err
}

// errRemote is lookup's answer for an account another replica runs.
var errRemote = errors.New("the account is run by another replica")

// lookup finds a monitored account. A name that is not a valid account
// name is refused without repeating it (it may be a phone number); a valid
// one is not secret and is named in the 404.
func (a *handler) lookup(name, field string) (*monitor.Account, error) {
	if err := monitor.ValidateName(name); err != nil {
		if field == "" {
			return nil, badRequest("invalid account name (letters, digits, '.', '_', '-', '@', at most %d bytes, not a phone number)", monitor.MaxNameLength)
		}
		return nil, badRequest("%s: invalid account name (letters, digits, '.', '_', '-', '@', at most %d bytes, not a phone number)", field, monitor.MaxNameLength)
	}
	acct, ok := a.d.Monitor.Lookup(name)
	if !ok && a.d.Fleet != nil && a.d.Fleet.Configured(name) {
		return nil, errRemote
	}
	if !ok {
		if field == "" {
			return nil, errorf(http.StatusNotFound, "no account %q", name)
		}
		return nil, errorf(http.StatusNotFound, "%s: no account %q", field, name)
	}
	return acct, nil
}
