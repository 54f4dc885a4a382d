package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/daemon"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/store"
)

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
	// acct is nil for an account another replica runs (name).
	acct   *monitor.Account
	name   string
	t      time.Time
	method string
	sig    signal.Signal
}

func (a *handler) checkSignal(in signalInput, field string, now time.Time) (validSignal, error) {
	var v validSignal
	at := func(name string) string {
		if field == "" {
			return name
		}
		return field + "." + name
	}
	if in.Account == "" {
		return v, badRequest("%s: required", at("account"))
	}
	acct, err := a.lookup(in.Account, at("account"))
	if err != nil && !errors.Is(err, errRemote) {
		return v, err
	}
	switch {
	case in.Method == "":
		return v, badRequest("%s: required (the TL method name, e.g. messages.sendMessage)", at("method"))
	case len(in.Method) > maxMethodLength || !tlMethod.MatchString(in.Method):
		return v, badRequest("%s: must be a TL method name such as messages.sendMessage (at most %d bytes)", at("method"), maxMethodLength)
	case in.Code == 0:
		return v, badRequest("%s: required and not zero (the RPC error code, e.g. 420)", at("code"))
	case in.Code < -999 || in.Code > 999:
		return v, badRequest("%s: must be an RPC error code between -999 and 999", at("code"))
	case in.Message == "":
		return v, badRequest("%s: required (the RPC error message, e.g. FLOOD_WAIT_30)", at("message"))
	case len(in.Message) > maxMessageLength || !isRPCMessage(in.Message):
		return v, badRequest("%s: must be an RPC error message of A-Z, 0-9 and _ (at most %d bytes)", at("message"), maxMessageLength)
	}
	t := now
	if in.Time != "" {
		t, err = time.Parse(time.RFC3339Nano, in.Time)
		if err != nil {
			return v, badRequest("%s: invalid time; use RFC 3339, e.g. 2026-01-02T15:04:05Z", at("time"))
		}
		if t.After(now.Add(maxSignalSkew)) {
			return v, badRequest("%s: more than %s in the future", at("time"), maxSignalSkew)
		}
		if keep := a.retention(); t.Before(now.Add(-keep)) {
			return v, badRequest("%s: older than the store keeps events (%s, store.retention); it would be deleted within the hour", at("time"), config.DurText(limits.Duration(keep)))
		}
	}
	s := signal.Parse(in.Code, in.Message)
	if s.Kind == signal.None {
		return v, badRequest("%s: not an RPC error", at("message"))
	}
	return validSignal{acct: acct, name: in.Account, t: t, method: in.Method, sig: s}, nil
}

// retention is Retention with its default.
func (a *handler) retention() time.Duration {
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
func (a *handler) countIngest(result string, n int) {
	if a.d.Ingest != nil && n > 0 {
		a.d.Ingest.WithLabelValues(result).Add(float64(n))
	}
}

func (a *handler) signals(r *http.Request) (int, any, error) {
	status, body, n, err := a.ingest(r)
	var he *httpError
	switch {
	case err == nil:
		a.countIngest(daemon.IngestAccepted, n)
	case errors.As(err, &he) && he.status == http.StatusServiceUnavailable:
		a.countIngest(daemon.IngestFailed, max(n, 1))
	case errors.As(err, new(*httpError)) || errors.As(err, new(*http.MaxBytesError)):
		a.countIngest(daemon.IngestRejected, max(n, 1))
	default:
		a.countIngest(daemon.IngestFailed, max(n, 1))
	}
	return status, body, err
}

// ingest is POST /api/v1/signals; n is how many signals the request
// carried, once that is known.
func (a *handler) ingest(r *http.Request) (status int, body any, n int, err error) {
	var req signalsRequest
	if err := decodeBody(r, &req, false); err != nil {
		return 0, nil, 0, err
	}
	one := signalInput{Account: req.Account, Method: req.Method, Code: req.Code, Message: req.Message, Time: req.Time}
	single := one != (signalInput{})
	var inputs []signalInput
	field := func(i int) string { return "" }
	switch {
	case req.Signals != nil && single:
		return 0, nil, 1, badRequest("send either one signal's fields or \"signals\", not both")
	case req.Signals != nil:
		if len(req.Signals) == 0 {
			return 0, nil, 0, badRequest("signals: empty")
		}
		if len(req.Signals) > maxSignalBatch {
			return 0, nil, len(req.Signals), badRequest("signals: %d signals, at most %d per request", len(req.Signals), maxSignalBatch)
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
			return 0, nil, len(inputs), errorf(http.StatusServiceUnavailable, "not ready (%v); retry later", err)
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
	var remote []monitor.Event // for the replicas that run their accounts
	for _, v := range valid {
		if v.acct == nil {
			remote = append(remote, v.report())
			continue
		}
		if a.d.Dedup != nil && a.d.Writer != nil {
			a.d.Dedup.Expect(v.acct.Name(), v.t, v.method, v.sig)
		}
		// The event as emitted, with its place in the account's order
		// (Seq), which a restart replays by.
		ev, _ := v.acct.ObserveSignal(v.t, v.method, v.sig)
		evs = append(evs, ev)
	}
	release() // applied: a restore may follow; the commit need not hold it off
	if a.d.Writer != nil && len(evs) > 0 {
		err := a.d.Writer.Commit(r.Context(), evs)
		var fenced *store.FencedError
		if errors.As(err, &fenced) && a.d.Fleet != nil {
			// The lease of some accounts moved while this replica applied
			// their reports: their new holder applies them instead.
			moved := map[string]bool{}
			for _, name := range fenced.Accounts {
				moved[name] = true
			}
			for _, v := range valid {
				if v.acct != nil && moved[v.name] {
					remote = append(remote, v.report())
				}
			}
			err = nil
		}
		if err != nil {
			return 0, nil, len(valid), fmt.Errorf("store signals: %w", err)
		}
	}
	if len(remote) > 0 {
		if err := a.d.Fleet.Enqueue(r.Context(), remote); err != nil {
			return 0, nil, len(valid), fmt.Errorf("store signals for other replicas: %w", err)
		}
	}
	return http.StatusAccepted, signalsResponse{Accepted: len(valid)}, len(valid), nil
}

// report is the signal as the inbox carries it to the account's holder,
// which applies it.
func (v validSignal) report() monitor.Event {
	return monitor.Event{Account: v.name, Type: monitor.EventSignal, Time: v.t, Method: v.method, Signal: v.sig}
}
