package testserver

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/monitor/bearer"
	"github.com/tgsafety/tgsafety/monitor/jsonbody"
)

// The HTTP control API: the Go control API as JSON over HTTP, so that a
// scenario written in another language (or a shell script with curl) can
// drive a server started by `scenario-run serve`. It adds no behaviour of
// its own; every endpoint is a thin, strictly validated wrapper around one
// Server method, so the two APIs cannot drift apart.

// controlPrefix is where every control endpoint lives. The version is in
// the path so that an incompatible change can live next to the old one.
const controlPrefix = "/control/v1/"

// maxControlBody bounds request bodies: the largest legitimate body is a few
// hundred bytes, and the handler may be reachable by other local processes.
const maxControlBody = 64 << 10

// errNoAccountHTTP is ErrNoAccount as a client sees it. It deliberately
// names no phone number: responses end up in CI logs.
const errNoAccountHTTP = "no account with that phone number"

// ControlHandler returns an http.Handler serving the control API under
// /control/v1/, for processes that cannot call the Go methods (scenario-run
// serve mounts it on --control-addr). When token is not empty every request
// must carry "Authorization: Bearer <token>".
//
// Requests are JSON objects (at most 64 KiB; unknown fields and trailing
// data are refused); durations are Go durations ("90s", "15m", "24h"),
// times RFC 3339. Every answer is a JSON object; errors are
// {"error": "..."} with 400 for bad input, 401 for a missing or wrong
// token, 403 for a request carrying an Origin header (a web page), 404 for an unknown account or endpoint, 405 for a wrong method and
// 413 for an oversized body. Answers never repeat a phone number, and an
// error never quotes the value it rejects (a value in the wrong field may
// be a phone number or a secret): it names the field and what is wrong.
//
//	GET  /control/v1/time                  -> {"now"}
//	POST /control/v1/advance               {"duration"} (> 0) -> {"now"}
//	POST /control/v1/accounts              {"phone", "first_name", "last_name", "username",
//	                                        "age", "lang", "premium", "mutual_contacts"} -> {"user_id"}
//	POST /control/v1/accounts/session      {"phone"} -> {"dc", "addr", "auth_key", "auth_key_id"} (keys base64)
//	GET  /control/v1/accounts/status?phone=P -> {"user_id", "lang", "limited", "limited_until",
//	                                        "permanent", "restrictions", "banned", "frozen",
//	                                        "frozen_until", "reports", "sessions"} (zero times omitted)
//	POST /control/v1/accounts/limit        {"phone", "duration"} ("" or "0": permanent) -> {"ok"}
//	POST /control/v1/accounts/release      {"phone"} -> {"ok"}
//	POST /control/v1/accounts/ban          {"phone"} -> {"ok"}
//	POST /control/v1/accounts/unban        {"phone"} -> {"ok"}
//	POST /control/v1/accounts/freeze       {"phone", "until"} (optional, in the future) -> {"ok"}
//	POST /control/v1/accounts/unfreeze     {"phone"} -> {"ok"}
//	POST /control/v1/accounts/revoke       {"phone"} -> {"revoked"}
//	POST /control/v1/accounts/fault        {"phone", "method", "times", "error_code", "error_message",
//	                                        "drop", "delay"} -> the fault as injected
//	POST /control/v1/connections/drop      (no body, or {}) -> {"dropped"}
//
// A fault sets exactly one of error_message (with error_code, default
// Telegram's code for the message: ErrorCode),
// drop or delay (virtual time), as Fault does. The session endpoint hands
// out auth keys: it is for local tests only, which is why the listener of
// scenario-run serve binds to loopback by default and takes a token.
func (s *Server) ControlHandler(token string) http.Handler {
	c := &controlAPI{s: s, token: token}
	c.routes = map[string]endpoint{
		"time":              {http.MethodGet, c.now},
		"advance":           {http.MethodPost, c.advance},
		"accounts":          {http.MethodPost, c.createAccount},
		"accounts/session":  {http.MethodPost, c.session},
		"accounts/status":   {http.MethodGet, c.status},
		"accounts/limit":    {http.MethodPost, c.limit},
		"accounts/release":  {http.MethodPost, c.phoneOnly(s.Release)},
		"accounts/ban":      {http.MethodPost, c.phoneOnly(s.Ban)},
		"accounts/unban":    {http.MethodPost, c.phoneOnly(s.Unban)},
		"accounts/freeze":   {http.MethodPost, c.freeze},
		"accounts/unfreeze": {http.MethodPost, c.phoneOnly(s.Unfreeze)},
		"accounts/revoke":   {http.MethodPost, c.revoke},
		"accounts/fault":    {http.MethodPost, c.fault},
		"connections/drop":  {http.MethodPost, c.drop},
	}
	return c
}

// controlAPI is the handler ControlHandler returns.
type controlAPI struct {
	s      *Server
	token  string
	routes map[string]endpoint
}

// endpoint is one route: the only method it accepts and its handler. A
// handler returns the value to send as JSON, or an error; errors that are
// not *httpError are answered as 500.
type endpoint struct {
	method string
	fn     func(r *http.Request) (any, error)
}

// httpError is an error with the status it is answered with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// okResponse answers actions that have nothing to report, so that every
// success is still a JSON object a client can decode.
type okResponse struct {
	OK bool `json:"ok"`
}

// ServeHTTP authenticates, routes and answers one control request.
func (c *controlAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// The session endpoint returns auth keys: nothing may be cached.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")

	// Browsers send Origin; this API's clients are programs. Refusing it
	// keeps a web page from posting to a loopback control API.
	if r.Header.Get("Origin") != "" {
		writeJSON(w, http.StatusForbidden, errorBody{"requests from web pages are not accepted"})
		return
	}
	// Authentication comes before routing so that an unauthenticated
	// caller learns nothing, not even which endpoints exist.
	if c.token != "" {
		if msg := bearer.Check(r, c.token); msg != "" {
			h.Set("WWW-Authenticate", `Bearer realm="testserver control"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{msg})
			return
		}
	}
	name, ok := strings.CutPrefix(r.URL.Path, controlPrefix)
	ep, found := c.routes[name]
	if !ok || !found {
		writeJSON(w, http.StatusNotFound, errorBody{"no such control endpoint"})
		return
	}
	if r.Method != ep.method {
		h.Set("Allow", ep.method)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{fmt.Sprintf("method %s not allowed; use %s", r.Method, ep.method)})
		return
	}
	if r.Method == http.MethodPost {
		// Always bounded, even for endpoints that read no body.
		r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
		if r.URL.RawQuery != "" {
			// Parameters go in the body: query strings (with phone
			// numbers) end up in proxy and access logs.
			writeJSON(w, http.StatusBadRequest, errorBody{"unexpected query string; send parameters in the JSON body"})
			return
		}
	}
	res, err := ep.fn(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) { jsonbody.Write(w, status, v) }

// writeError maps an error to its status. Errors of the Go control API
// carry a "testserver: " prefix meant for Go callers; it is dropped here.
func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		writeJSON(w, he.status, errorBody{he.msg})
	case errors.Is(err, ErrNoAccount):
		writeJSON(w, http.StatusNotFound, errorBody{errNoAccountHTTP})
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)})
	default:
		writeJSON(w, http.StatusInternalServerError, errorBody{"internal error: " + strings.TrimPrefix(err.Error(), "testserver: ")})
	}
}

// invalid wraps an input error of the Go control API as a 400, keeping
// ErrNoAccount a 404.
func invalid(err error) error {
	if err == nil || errors.Is(err, ErrNoAccount) {
		return err
	}
	return &httpError{status: http.StatusBadRequest, msg: strings.TrimPrefix(err.Error(), "testserver: ")}
}

// decodeBody reads exactly one JSON object into v (jsonbody.Decode: no
// unknown fields, no trailing data), answering problems as 400s.
func decodeBody(r *http.Request, v any) error { return asBadRequest(jsonbody.Decode(r.Body, v, false)) }

// asBadRequest gives a jsonbody problem this API's 400; an oversized body
// stays a *http.MaxBytesError (413).
func asBadRequest(err error) error {
	var br *jsonbody.BadRequest
	if errors.As(err, &br) {
		return badRequest("%s", br.Msg)
	}
	return err
}

// noBody accepts an empty body or an empty JSON object, for endpoints that
// take no parameters; anything else is an error, as elsewhere.
func noBody(r *http.Request) error {
	return asBadRequest(jsonbody.Decode(r.Body, &struct{}{}, true))
}

// parseDuration reads an optional Go duration ("" is zero) for field.
func parseDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, badRequest("%s: invalid duration; use a Go duration such as 90s, 15m or 24h", field)
	}
	return d, nil
}

func requirePhone(phone string) error {
	if strings.TrimSpace(phone) == "" {
		return badRequest("phone is required")
	}
	return nil
}

type timeResponse struct {
	Now time.Time `json:"now"`
}

func (c *controlAPI) now(r *http.Request) (any, error) {
	if r.URL.RawQuery != "" {
		return nil, badRequest("unexpected query string")
	}
	return timeResponse{c.s.clock.Now().UTC()}, nil
}

func (c *controlAPI) advance(r *http.Request) (any, error) {
	var req struct {
		Duration string `json:"duration"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Duration == "" {
		return nil, badRequest("duration is required (a Go duration such as 90m)")
	}
	d, err := parseDuration("duration", req.Duration)
	if err != nil {
		return nil, err
	}
	if d <= 0 {
		return nil, badRequest("duration must be positive: virtual time never goes backwards")
	}
	return timeResponse{c.s.Advance(d).UTC()}, nil
}

func (c *controlAPI) createAccount(r *http.Request) (any, error) {
	var req struct {
		Phone          string `json:"phone"`
		FirstName      string `json:"first_name"`
		LastName       string `json:"last_name"`
		Username       string `json:"username"`
		Age            string `json:"age"`
		Lang           string `json:"lang"`
		Premium        bool   `json:"premium"`
		MutualContacts int    `json:"mutual_contacts"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := requirePhone(req.Phone); err != nil {
		return nil, err
	}
	age, err := parseDuration("age", req.Age)
	if err != nil {
		return nil, err
	}
	if age < 0 {
		return nil, badRequest("age must not be negative")
	}
	if req.MutualContacts < 0 {
		return nil, badRequest("mutual_contacts must not be negative")
	}
	id, err := c.s.CreateAccount(AccountSpec{
		Phone: req.Phone, FirstName: req.FirstName, LastName: req.LastName, Username: req.Username,
		Age: age, Lang: req.Lang, Premium: req.Premium, MutualContacts: req.MutualContacts,
	})
	if err != nil {
		return nil, invalid(err)
	}
	return struct {
		UserID int64 `json:"user_id"`
	}{id}, nil
}

type phoneRequest struct {
	Phone string `json:"phone"`
}

func decodePhone(r *http.Request) (string, error) {
	var req phoneRequest
	if err := decodeBody(r, &req); err != nil {
		return "", err
	}
	return req.Phone, requirePhone(req.Phone)
}

// sessionResponse is session.Data with JSON names: gotd's struct has no
// tags, and its Config and Salt are learnt by the client on connect.
type sessionResponse struct {
	DC        int    `json:"dc"`
	Addr      string `json:"addr"`
	AuthKey   []byte `json:"auth_key"`
	AuthKeyID []byte `json:"auth_key_id"`
}

func (c *controlAPI) session(r *http.Request) (any, error) {
	phone, err := decodePhone(r)
	if err != nil {
		return nil, err
	}
	d, err := c.s.Session(phone)
	if err != nil {
		// Anything but ErrNoAccount is the server's fault (entropy,
		// tgtest layout), not the caller's: it stays a 500.
		return nil, err
	}
	return sessionResponse{DC: d.DC, Addr: d.Addr, AuthKey: d.AuthKey, AuthKeyID: d.AuthKeyID}, nil
}

// statusResponse is AccountStatus with snake_case names. Zero times are
// omitted: "not limited" and "permanently limited" have no end date.
type statusResponse struct {
	UserID       int64     `json:"user_id"`
	Lang         string    `json:"lang"`
	Limited      bool      `json:"limited"`
	LimitedUntil time.Time `json:"limited_until,omitzero"`
	Permanent    bool      `json:"permanent"`
	Restrictions int       `json:"restrictions"`
	Banned       bool      `json:"banned"`
	Frozen       bool      `json:"frozen"`
	FrozenUntil  time.Time `json:"frozen_until,omitzero"`
	Reports      int       `json:"reports"`
	Sessions     int       `json:"sessions"`
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func (c *controlAPI) status(r *http.Request) (any, error) {
	q := r.URL.Query()
	for k := range q {
		if k != "phone" {
			return nil, badRequest("unknown query parameter; only phone is accepted")
		}
	}
	if len(q["phone"]) > 1 {
		return nil, badRequest("phone is given more than once")
	}
	phone := q.Get("phone")
	if err := requirePhone(phone); err != nil {
		return nil, err
	}
	st, err := c.s.Status(phone)
	if err != nil {
		return nil, err
	}
	return statusResponse{
		UserID: st.UserID, Lang: st.Lang, Limited: st.Limited, LimitedUntil: utc(st.LimitedUntil),
		Permanent: st.Permanent, Restrictions: st.Restrictions, Banned: st.Banned, Frozen: st.Frozen,
		FrozenUntil: utc(st.FrozenUntil), Reports: st.Reports, Sessions: st.Sessions,
	}, nil
}

func (c *controlAPI) limit(r *http.Request) (any, error) {
	var req struct {
		Phone    string `json:"phone"`
		Duration string `json:"duration"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := requirePhone(req.Phone); err != nil {
		return nil, err
	}
	d := time.Duration(0) // "" and "0": permanent
	if req.Duration != "0" {
		var err error
		if d, err = parseDuration("duration", req.Duration); err != nil {
			return nil, err
		}
	}
	if d < 0 {
		// Limit would read a negative duration as permanent; a sign slip
		// must not silently become the harshest restriction.
		return nil, badRequest("duration must not be negative; use \"\" or \"0\" for a permanent limit")
	}
	if err := c.s.Limit(req.Phone, d); err != nil {
		return nil, err
	}
	return okResponse{true}, nil
}

// phoneOnly adapts a control method that takes just a phone number.
func (c *controlAPI) phoneOnly(fn func(phone string) error) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		phone, err := decodePhone(r)
		if err != nil {
			return nil, err
		}
		if err := fn(phone); err != nil {
			return nil, err
		}
		return okResponse{true}, nil
	}
}

func (c *controlAPI) freeze(r *http.Request) (any, error) {
	var req struct {
		Phone string `json:"phone"`
		Until string `json:"until"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := requirePhone(req.Phone); err != nil {
		return nil, err
	}
	var until time.Time
	if req.Until != "" {
		var err error
		if until, err = time.Parse(time.RFC3339, req.Until); err != nil {
			return nil, badRequest("until: invalid time; use RFC 3339 such as 2026-02-01T09:00:00Z")
		}
		if now := c.s.clock.Now(); !until.After(now) {
			return nil, badRequest("until must be after the current virtual time %s", now.UTC().Format(time.RFC3339))
		}
	}
	if err := c.s.Freeze(req.Phone, until); err != nil {
		return nil, err
	}
	return okResponse{true}, nil
}

func (c *controlAPI) revoke(r *http.Request) (any, error) {
	phone, err := decodePhone(r)
	if err != nil {
		return nil, err
	}
	n, err := c.s.RevokeSessions(phone)
	if err != nil {
		return nil, err
	}
	return struct {
		Revoked int `json:"revoked"`
	}{n}, nil
}

// faultRequest is Fault in JSON. The response echoes it with the defaults
// applied, so a client can see what was injected.
type faultRequest struct {
	Phone        string `json:"phone,omitempty"`
	Method       string `json:"method"`
	Times        int    `json:"times"`
	ErrorCode    int    `json:"error_code,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
	Drop         bool   `json:"drop,omitempty"`
	Delay        string `json:"delay,omitempty"`
}

func (c *controlAPI) fault(r *http.Request) (any, error) {
	var req faultRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := requirePhone(req.Phone); err != nil {
		return nil, err
	}
	// Validated here as well as in Inject so that the messages use the
	// JSON field names, not the Go ones.
	if req.Times < 1 {
		return nil, badRequest("times must be at least 1")
	}
	delay, err := parseDuration("delay", req.Delay)
	if err != nil {
		return nil, err
	}
	if req.Delay != "" && delay <= 0 {
		return nil, badRequest("delay must be positive")
	}
	if req.ErrorCode != 0 && req.ErrorMessage == "" {
		return nil, badRequest("error_code is set but error_message is empty")
	}
	if req.ErrorMessage != "" && !isRPCErrorMessage(req.ErrorMessage) {
		return nil, badRequest("error_message is not an RPC error such as FLOOD_WAIT_30 (A-Z, 0-9 and _)")
	}
	kinds := 0
	for _, set := range []bool{req.ErrorMessage != "", req.Drop, delay > 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, badRequest("set exactly one of error_message, drop, delay")
	}
	f := Fault{Method: req.Method, Times: req.Times, Drop: req.Drop, Delay: delay}
	if req.ErrorMessage != "" {
		if req.ErrorCode == 0 {
			req.ErrorCode = ErrorCode(req.ErrorMessage)
		}
		f.Error = tgerr.New(req.ErrorCode, req.ErrorMessage)
	}
	if err := c.s.Inject(req.Phone, f); err != nil {
		return nil, invalid(err)
	}
	req.Phone = ""
	if delay > 0 {
		req.Delay = delay.String()
	}
	return req, nil
}

// isRPCErrorMessage reports whether s looks like a Telegram error message;
// gotd's tgerr matches on the upper-case type, so a typo in case would
// inject an error no client code recognises.
func isRPCErrorMessage(s string) bool {
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return s != ""
}

func (c *controlAPI) drop(r *http.Request) (any, error) {
	if err := noBody(r); err != nil {
		return nil, err
	}
	return struct {
		Dropped int `json:"dropped"`
	}{c.s.DropConnections()}, nil
}
