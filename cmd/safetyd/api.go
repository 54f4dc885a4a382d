package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/dedup"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/bearer"
	"github.com/tgsafety/tgsafety/monitor/daemon"
	"github.com/tgsafety/tgsafety/monitor/jsonbody"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// The daemon's HTTP API (docs/api.md): account states and histories for
// dashboards and scripts, probe requests, and the ingest endpoint through
// which applications report RPC errors the middleware did not see. Every
// answer is JSON; /metrics is mounted next to this handler by the daemon.

// Limits of the API.
const (
	// maxAPIBody bounds request bodies: a full batch of signals is about
	// 150 KiB.
	maxAPIBody = 1 << 20
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

// apiDeps is what the API needs from the running daemon; tests fill it with
// real monitor/store objects.
type apiDeps struct {
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
	// Ingest counts reported signals by result
	// (tgsafety_ingest_signals_total); nil counts nothing.
	Ingest *prometheus.CounterVec
}

// api is the handler newAPI returns.
type api struct {
	d   apiDeps
	mux *http.ServeMux
}

// newAPI returns the daemon's API handler (everything but /metrics).
func newAPI(d apiDeps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	a := &api{d: d, mux: http.NewServeMux()}
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
			writeAPIJSON(w, http.StatusMethodNotAllowed, apiError{fmt.Sprintf("method %s not allowed; use %s", r.Method, rt.method)})
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIJSON(w, http.StatusNotFound, apiError{"no such endpoint"})
	})
	return a
}

// ServeHTTP sets the headers every answer carries and routes.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// wrap turns an endpoint function into a handler, checking the origin and
// the token of mutating endpoints first, so that an unauthenticated caller
// learns nothing about accounts.
func (a *api) wrap(mutating bool, fn func(r *http.Request) (int, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mutating {
			// Browsers send Origin; this API's clients are programs.
			// Refusing it keeps a web page from posting to a loopback API.
			if r.Header.Get("Origin") != "" {
				writeAPIJSON(w, http.StatusForbidden, apiError{"requests from web pages are not accepted"})
				return
			}
			if a.d.Token == "" {
				writeAPIJSON(w, http.StatusForbidden, apiError{"API token not configured; set http.token_env or http.token_file to enable this endpoint"})
				return
			}
			if msg := bearer.Check(r, a.d.Token); msg != "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="safetyd"`)
				writeAPIJSON(w, http.StatusUnauthorized, apiError{msg})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		}
		status, v, err := fn(r)
		if err != nil {
			writeAPIError(w, err)
			return
		}
		writeAPIJSON(w, status, v)
	})
}

// apiError is every error answer.
type apiError struct {
	Error string `json:"error"`
}

// apiHTTPError is an error with the status it is answered with.
type apiHTTPError struct {
	status int
	msg    string
}

func (e *apiHTTPError) Error() string { return e.msg }

func apiErrorf(status int, format string, args ...any) error {
	return &apiHTTPError{status: status, msg: fmt.Sprintf(format, args...)}
}

func apiBadRequest(format string, args ...any) error {
	return apiErrorf(http.StatusBadRequest, format, args...)
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) { jsonbody.Write(w, status, v) }

func writeAPIError(w http.ResponseWriter, err error) {
	var he *apiHTTPError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		writeAPIJSON(w, he.status, apiError{he.msg})
	case errors.As(err, &tooBig):
		writeAPIJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)})
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeAPIJSON(w, http.StatusServiceUnavailable, apiError{"not stored: " + err.Error()})
	default:
		// The cause (a driver's text such as "database or disk is full")
		// is logged where it happened; the body stays plain.
		writeAPIJSON(w, http.StatusInternalServerError, apiError{"internal error: not stored; see the daemon's log"})
	}
}

// decodeAPIBody reads exactly one JSON object into v (jsonbody.Decode: no
// unknown fields, no trailing data); an empty body is allowed when
// emptyOK. Problems are answered as 400s, an oversized body as 413.
func decodeAPIBody(r *http.Request, v any, emptyOK bool) error {
	err := jsonbody.Decode(r.Body, v, emptyOK)
	var br *jsonbody.BadRequest
	if errors.As(err, &br) {
		return apiBadRequest("%s", br.Msg)
	}
	return err
}

// lookup finds a monitored account. A name that is not a valid account
// name is refused without repeating it (it may be a phone number); a valid
// one is not secret and is named in the 404.
func (a *api) lookup(name, field string) (*monitor.Account, error) {
	if err := monitor.ValidateName(name); err != nil {
		if field == "" {
			return nil, apiBadRequest("invalid account name (letters, digits, '.', '_', '-', '@', at most %d bytes, not a phone number)", monitor.MaxNameLength)
		}
		return nil, apiBadRequest("%s: invalid account name (letters, digits, '.', '_', '-', '@', at most %d bytes, not a phone number)", field, monitor.MaxNameLength)
	}
	acct, ok := a.d.Monitor.Lookup(name)
	if !ok {
		if field == "" {
			return nil, apiErrorf(http.StatusNotFound, "no account %q", name)
		}
		return nil, apiErrorf(http.StatusNotFound, "%s: no account %q", field, name)
	}
	return acct, nil
}

// Health.

type statusResponse struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// NotMonitored are the configured accounts nobody watches (their
	// client stopped for good), with why and what to do. The daemon is
	// still ready: it serves the others.
	NotMonitored map[string]string `json:"not_monitored,omitempty"`
}

func (a *api) healthz(*http.Request) (int, any, error) {
	return http.StatusOK, statusResponse{Status: "ok", Version: a.d.Version}, nil
}

func (a *api) readyz(*http.Request) (int, any, error) {
	if a.d.Ready != nil {
		if err := a.d.Ready(); err != nil {
			return http.StatusServiceUnavailable, statusResponse{Status: "not ready", Reason: err.Error()}, nil
		}
	}
	resp := statusResponse{Status: "ready"}
	if a.d.NotMonitored != nil {
		resp.NotMonitored = a.d.NotMonitored()
	}
	return http.StatusOK, resp, nil
}

// Accounts.

type accountsResponse struct {
	Accounts []view.Account `json:"accounts"`
}

func (a *api) accounts(*http.Request) (int, any, error) {
	accts := a.d.Monitor.Accounts() // sorted by name
	out := accountsResponse{Accounts: make([]view.Account, 0, len(accts))}
	for _, acct := range accts {
		out.Accounts = append(out.Accounts, view.Of(acct.Snapshot()))
	}
	return http.StatusOK, out, nil
}

func (a *api) account(r *http.Request) (int, any, error) {
	acct, err := a.lookup(r.PathValue("name"), "")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view.DetailOf(acct.Snapshot()), nil
}

type eventsResponse struct {
	Events []monitor.Event `json:"events"`
}

func (a *api) events(r *http.Request) (int, any, error) {
	acct, err := a.lookup(r.PathValue("name"), "")
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	since := a.d.Now().Add(-defaultEventsWindow)
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, nil, apiBadRequest("since: invalid time; use RFC 3339, e.g. 2026-01-02T15:04:05Z")
		}
		since = t
	}
	limit := defaultEventsLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEventsLimit {
			return 0, nil, apiBadRequest("limit: must be an integer from 1 to %d", maxEventsLimit)
		}
		limit = n
	}
	var evs []monitor.Event
	if a.d.Store != nil {
		evs, err = a.d.Store.Events(r.Context(), acct.Name(), since, limit)
		if err != nil {
			return 0, nil, fmt.Errorf("read events: %w", err)
		}
	} else {
		for _, e := range acct.Events() {
			if !e.Time.Before(since) && len(evs) < limit {
				evs = append(evs, e)
			}
		}
	}
	if evs == nil {
		evs = []monitor.Event{}
	}
	return http.StatusOK, eventsResponse{Events: evs}, nil
}

// Probes.

type probeRequest struct {
	Probe string `json:"probe"`
}

type probeResponse struct {
	Probe  string    `json:"probe"`
	RunsAt time.Time `json:"runs_at"`
}

var probeKindRE = regexp.MustCompile(`^[a-z][a-z_]{0,31}$`) // no digits: a kind is echoed in errors

func (a *api) probe(r *http.Request) (int, any, error) {
	acct, err := a.lookup(r.PathValue("name"), "")
	if err != nil {
		return 0, nil, err
	}
	var req probeRequest
	if err := decodeAPIBody(r, &req, true); err != nil {
		return 0, nil, err
	}
	kind := req.Probe
	if kind == "" {
		kind = monitor.ProbeSpamBot
	}
	if !probeKindRE.MatchString(kind) {
		return 0, nil, apiBadRequest("probe: unknown probe kind")
	}
	// A banned or dead account's client stops for good (runner.loop),
	// and so does its scheduler: a runs_at would be a promise never
	// kept. The state is checked too because the runner notices a
	// little after the account does.
	if st := acct.Snapshot().State; st == monitor.Banned || st == monitor.Dead {
		return 0, nil, apiErrorf(http.StatusConflict, "account %q is %s: its client has stopped and probes do not run", acct.Name(), st)
	}
	var s *probe.Scheduler
	if a.d.Scheduler != nil {
		s = a.d.Scheduler(acct.Name())
	}
	if s == nil {
		return 0, nil, apiErrorf(http.StatusConflict, "account %q has no probe scheduler: its client is not running (not signed in, or stopped; see the daemon's log)", acct.Name())
	}
	at, err := s.Request(kind)
	if errors.Is(err, probe.ErrUnknownProbe) {
		return 0, nil, apiBadRequest("probe: unknown probe kind %q for account %q", kind, acct.Name())
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, probeResponse{Probe: kind, RunsAt: at}, nil
}

// Signals.

// signalInput is one reported RPC error.
type signalInput struct {
	Account string `json:"account"`
	Method  string `json:"method"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Time    string `json:"time"`
}

// signalsRequest is one signal or a batch of them.
// (The fields are repeated rather than embedded so that decoding errors
// name them plainly.)
type signalsRequest struct {
	Account string        `json:"account"`
	Method  string        `json:"method"`
	Code    int           `json:"code"`
	Message string        `json:"message"`
	Time    string        `json:"time"`
	Signals []signalInput `json:"signals"`
}

type signalsResponse struct {
	Accepted int `json:"accepted"`
}

// tlMethod is a TL method name: namespace.method.
var tlMethod = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*$`)

// validSignal is a checked signal, ready to apply.
type validSignal struct {
	acct   *monitor.Account
	t      time.Time
	method string
	sig    signal.Signal
}

func (a *api) checkSignal(in signalInput, field string, now time.Time) (validSignal, error) {
	var v validSignal
	at := func(name string) string {
		if field == "" {
			return name
		}
		return field + "." + name
	}
	if in.Account == "" {
		return v, apiBadRequest("%s: required", at("account"))
	}
	acct, err := a.lookup(in.Account, at("account"))
	if err != nil {
		return v, err
	}
	switch {
	case in.Method == "":
		return v, apiBadRequest("%s: required (the TL method name, e.g. messages.sendMessage)", at("method"))
	case len(in.Method) > maxMethodLength || !tlMethod.MatchString(in.Method):
		return v, apiBadRequest("%s: must be a TL method name such as messages.sendMessage (at most %d bytes)", at("method"), maxMethodLength)
	case in.Code == 0:
		return v, apiBadRequest("%s: required and not zero (the RPC error code, e.g. 420)", at("code"))
	case in.Code < -999 || in.Code > 999:
		return v, apiBadRequest("%s: must be an RPC error code between -999 and 999", at("code"))
	case in.Message == "":
		return v, apiBadRequest("%s: required (the RPC error message, e.g. FLOOD_WAIT_30)", at("message"))
	case len(in.Message) > maxMessageLength || !isRPCMessage(in.Message):
		return v, apiBadRequest("%s: must be an RPC error message of A-Z, 0-9 and _ (at most %d bytes)", at("message"), maxMessageLength)
	}
	t := now
	if in.Time != "" {
		t, err = time.Parse(time.RFC3339Nano, in.Time)
		if err != nil {
			return v, apiBadRequest("%s: invalid time; use RFC 3339, e.g. 2026-01-02T15:04:05Z", at("time"))
		}
		if t.After(now.Add(maxSignalSkew)) {
			return v, apiBadRequest("%s: more than %s in the future", at("time"), maxSignalSkew)
		}
		if keep := a.retention(); t.Before(now.Add(-keep)) {
			return v, apiBadRequest("%s: older than the store keeps events (%s, store.retention); it would be deleted within the hour", at("time"), config.DurText(limits.Duration(keep)))
		}
	}
	s := signal.Parse(in.Code, in.Message)
	if s.Kind == signal.None {
		return v, apiBadRequest("%s: not an RPC error", at("message"))
	}
	return validSignal{acct: acct, t: t, method: in.Method, sig: s}, nil
}

// retention is Retention with its default.
func (a *api) retention() time.Duration {
	if a.d.Retention > 0 {
		return a.d.Retention
	}
	return store.DefaultRetention
}

func isRPCMessage(s string) bool {
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return s != ""
}

// signals validates every reported signal, applies them to their accounts
// and, with a Writer, answers only once their events are committed.
// countIngest adds n signals with the given result to the ingest counter.
func (a *api) countIngest(result string, n int) {
	if a.d.Ingest != nil && n > 0 {
		a.d.Ingest.WithLabelValues(result).Add(float64(n))
	}
}

func (a *api) signals(r *http.Request) (int, any, error) {
	status, body, n, err := a.ingest(r)
	var he *apiHTTPError
	switch {
	case err == nil:
		a.countIngest(daemon.IngestAccepted, n)
	case errors.As(err, &he) && he.status == http.StatusServiceUnavailable:
		a.countIngest(daemon.IngestFailed, max(n, 1))
	case errors.As(err, new(*apiHTTPError)) || errors.As(err, new(*http.MaxBytesError)):
		a.countIngest(daemon.IngestRejected, max(n, 1))
	default:
		a.countIngest(daemon.IngestFailed, max(n, 1))
	}
	return status, body, err
}

// ingest is POST /api/v1/signals; n is how many signals the request
// carried, once that is known.
func (a *api) ingest(r *http.Request) (status int, body any, n int, err error) {
	var req signalsRequest
	if err := decodeAPIBody(r, &req, false); err != nil {
		return 0, nil, 0, err
	}
	one := signalInput{Account: req.Account, Method: req.Method, Code: req.Code, Message: req.Message, Time: req.Time}
	single := one != (signalInput{})
	var inputs []signalInput
	field := func(i int) string { return "" }
	switch {
	case req.Signals != nil && single:
		return 0, nil, 1, apiBadRequest("send either one signal's fields or \"signals\", not both")
	case req.Signals != nil:
		if len(req.Signals) == 0 {
			return 0, nil, 0, apiBadRequest("signals: empty")
		}
		if len(req.Signals) > maxSignalBatch {
			return 0, nil, len(req.Signals), apiBadRequest("signals: %d signals, at most %d per request", len(req.Signals), maxSignalBatch)
		}
		inputs = req.Signals
		field = func(i int) string { return fmt.Sprintf("signals[%d]", i) }
	default:
		inputs = []signalInput{one}
	}
	// Until an account is restored from the store, a signal applied to it
	// would be answered 202 and then overwritten by the restore: refuse
	// it, so that the application retries.
	release := func() {}
	if a.d.Hold != nil {
		rel, err := a.d.Hold()
		if err != nil {
			return 0, nil, len(inputs), apiErrorf(http.StatusServiceUnavailable, "not ready (%v); retry later", err)
		}
		release = sync.OnceFunc(rel)
		defer release()
	}
	now := a.d.Now()
	valid := make([]validSignal, 0, len(inputs))
	for i, in := range inputs {
		v, err := a.checkSignal(in, field(i), now)
		if err != nil {
			return 0, nil, len(inputs), err
		}
		valid = append(valid, v)
	}

	evs := make([]monitor.Event, 0, len(valid))
	for _, v := range valid {
		if a.d.Dedup != nil && a.d.Writer != nil {
			a.d.Dedup.Expect(v.acct.Name(), v.t, v.method, v.sig)
		}
		// The event as emitted, with its place in the account's order
		// (Seq), which a restart replays by.
		ev, _ := v.acct.ObserveSignal(v.t, v.method, v.sig)
		evs = append(evs, ev)
	}
	release() // applied: a restore may follow; the commit need not hold it off
	if a.d.Writer != nil {
		if err := a.d.Writer.Commit(r.Context(), evs); err != nil {
			return 0, nil, len(evs), fmt.Errorf("store signals: %w", err)
		}
	}
	return http.StatusAccepted, signalsResponse{Accepted: len(evs)}, len(evs), nil
}
