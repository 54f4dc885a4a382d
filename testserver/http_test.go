package testserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// controlClient calls a ControlHandler in-process: no ports, no sleeps.
type controlClient struct {
	t     testing.TB
	h     http.Handler
	token string
}

func newControl(t testing.TB, s *Server, token string) *controlClient {
	return &controlClient{t: t, h: s.ControlHandler(token), token: token}
}

// do sends a request and returns the status and the decoded JSON object.
func (c *controlClient) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	r := httptest.NewRequest(method, "http://control"+path, strings.NewReader(body))
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	return serve(c.t, c.h, r)
}

func serve(t testing.TB, h http.Handler, r *http.Request) (int, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", r.Method, r.URL.Path, ct)
	}
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %q", r.Method, r.URL.Path, w.Body.String())
	}
	return w.Code, out
}

// must is do for calls that have to succeed.
func (c *controlClient) must(method, path, body string) map[string]any {
	c.t.Helper()
	code, out := c.do(method, path, body)
	if code != http.StatusOK {
		c.t.Fatalf("%s %s %s: %d %v", method, path, body, code, out)
	}
	return out
}

func jsonTime(t testing.TB, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("not an RFC 3339 time: %v", v)
	}
	return tm
}

func TestControlTimeAndAdvance(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	c := newControl(t, s, "")
	if now := jsonTime(t, c.must("GET", "/control/v1/time", "")["now"]); !now.Equal(Epoch) {
		t.Fatalf("time = %s, want %s", now, Epoch)
	}
	got := jsonTime(t, c.must("POST", "/control/v1/advance", `{"duration":"90m"}`)["now"])
	want := Epoch.Add(90 * time.Minute)
	if !got.Equal(want) || !s.Clock().Now().Equal(want) {
		t.Fatalf("advance answered %s, clock %s, want %s", got, s.Clock().Now(), want)
	}
	if now := jsonTime(t, c.must("GET", "/control/v1/time", "")["now"]); !now.Equal(want) {
		t.Fatalf("time after advance = %s", now)
	}
}

func TestControlAccountLifecycle(t *testing.T) {
	s := newServer(t, Options{})
	c := newControl(t, s, "")
	const phone = "9996625001"
	out := c.must("POST", "/control/v1/accounts",
		`{"phone":"+999 662 5001","first_name":"Http","username":"http_acct","age":"720h","lang":"ru","premium":true,"mutual_contacts":3}`)
	id, ok := out["user_id"].(float64)
	if !ok || id <= 0 {
		t.Fatalf("create: %v", out)
	}
	st := c.must("GET", "/control/v1/accounts/status?phone="+phone, "")
	for _, k := range []string{"user_id", "lang", "limited", "permanent", "restrictions", "banned", "frozen", "reports", "sessions"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status has no %q: %v", k, st)
		}
	}
	if st["user_id"] != id || st["lang"] != "ru" || st["limited"] != false || st["sessions"] != 0.0 {
		t.Fatalf("status %v", st)
	}
	if _, ok := st["limited_until"]; ok {
		t.Fatalf("limited_until set while not limited: %v", st)
	}

	// A timed limit shows with its end, on virtual time.
	c.must("POST", "/control/v1/accounts/limit", `{"phone":"`+phone+`","duration":"24h"}`)
	st = c.must("GET", "/control/v1/accounts/status?phone="+phone, "")
	if st["limited"] != true || st["permanent"] != false ||
		!jsonTime(t, st["limited_until"]).Equal(Epoch.Add(24*time.Hour)) || st["restrictions"] != 1.0 {
		t.Fatalf("after limit: %v", st)
	}
	c.must("POST", "/control/v1/advance", `{"duration":"24h1s"}`)
	if st = c.must("GET", "/control/v1/accounts/status?phone="+phone, ""); st["limited"] != false {
		t.Fatalf("limit did not end on virtual time: %v", st)
	}
	// "" and "0" are permanent; release lifts it.
	for _, d := range []string{`""`, `"0"`} {
		c.must("POST", "/control/v1/accounts/limit", `{"phone":"`+phone+`","duration":`+d+`}`)
		if st = c.must("GET", "/control/v1/accounts/status?phone="+phone, ""); st["permanent"] != true || st["limited_until"] != nil {
			t.Fatalf("after limit %s: %v", d, st)
		}
		c.must("POST", "/control/v1/accounts/release", `{"phone":"`+phone+`"}`)
		if st = c.must("GET", "/control/v1/accounts/status?phone="+phone, ""); st["limited"] != false {
			t.Fatalf("after release: %v", st)
		}
	}

	c.must("POST", "/control/v1/accounts/ban", `{"phone":"`+phone+`"}`)
	if st = c.must("GET", "/control/v1/accounts/status?phone="+phone, ""); st["banned"] != true {
		t.Fatalf("after ban: %v", st)
	}
	c.must("POST", "/control/v1/accounts/unban", `{"phone":"`+phone+`"}`)

	until := s.Clock().Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	c.must("POST", "/control/v1/accounts/freeze", `{"phone":"`+phone+`","until":"`+until+`"}`)
	st = c.must("GET", "/control/v1/accounts/status?phone="+phone, "")
	if st["frozen"] != true || st["frozen_until"] != until || st["banned"] != false {
		t.Fatalf("after freeze: %v", st)
	}
	c.must("POST", "/control/v1/accounts/unfreeze", `{"phone":"`+phone+`"}`)
	// Without a date the profile's freeze_for applies.
	c.must("POST", "/control/v1/accounts/freeze", `{"phone":"`+phone+`"}`)
	if st = c.must("GET", "/control/v1/accounts/status?phone="+phone, ""); st["frozen"] != true {
		t.Fatalf("after freeze without until: %v", st)
	}
	c.must("POST", "/control/v1/accounts/unfreeze", `{"phone":"`+phone+`"}`)
	if st = c.must("GET", "/control/v1/accounts/status?phone="+phone, ""); st["frozen"] != false {
		t.Fatalf("after unfreeze: %v", st)
	}

	// A provisioned session shows up and is revoked.
	sess := c.must("POST", "/control/v1/accounts/session", `{"phone":"`+phone+`"}`)
	key, err1 := base64.StdEncoding.DecodeString(sess["auth_key"].(string))
	keyID, err2 := base64.StdEncoding.DecodeString(sess["auth_key_id"].(string))
	if err1 != nil || err2 != nil || len(key) != 256 || len(keyID) != 8 || sess["dc"] != 2.0 || sess["addr"] == "" {
		t.Fatalf("session %v", sess)
	}
	if st = c.must("GET", "/control/v1/accounts/status?phone="+phone, ""); st["sessions"] != 1.0 {
		t.Fatalf("after session: %v", st)
	}
	if out := c.must("POST", "/control/v1/accounts/revoke", `{"phone":"`+phone+`"}`); out["revoked"] != 1.0 {
		t.Fatalf("revoke: %v", out)
	}
	if out := c.must("POST", "/control/v1/connections/drop", ""); out["dropped"] != 0.0 {
		t.Fatalf("drop: %v", out)
	}
	c.must("POST", "/control/v1/connections/drop", "{}")
}

func TestControlFault(t *testing.T) {
	s := newServer(t, Options{})
	c := newControl(t, s, "")
	const phone = "9996625002"
	opts := provisioned(t, s, AccountSpec{Phone: phone, Age: adult})

	bad := []struct{ body, want string }{
		{`{"phone":"` + phone + `","method":"users.getUsers","times":1,"error_message":"X","drop":true}`, "exactly one of error_message, drop, delay"},
		{`{"phone":"` + phone + `","method":"users.getUsers","times":1}`, "exactly one of error_message, drop, delay"},
		{`{"phone":"` + phone + `","times":0,"drop":true}`, "times must be at least 1"},
		{`{"phone":"` + phone + `","times":1,"delay":"-5s"}`, "delay must be positive"},
		{`{"phone":"` + phone + `","times":1,"delay":"soon"}`, "delay: invalid duration"},
		{`{"phone":"` + phone + `","times":1,"error_code":420}`, "error_code is set but error_message is empty"},
		{`{"phone":"` + phone + `","times":1,"error_message":"flood wait"}`, "error_message"},
		{`{"phone":"` + phone + `","method":"getUsers","times":1,"drop":true}`, "method"},
		{`{"phone":"` + phone + `","times":"1","drop":true}`, `field "times" must be an integer`},
		{`{"times":1,"drop":true}`, "phone is required"},
	}
	for _, b := range bad {
		code, out := c.do("POST", "/control/v1/accounts/fault", b.body)
		if msg, _ := out["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, b.want) {
			t.Errorf("%s: %d %v, want 400 mentioning %q", b.body, code, out, b.want)
		}
	}

	// The response is the fault as injected, defaults applied.
	out := c.must("POST", "/control/v1/accounts/fault",
		`{"phone":"`+phone+`","method":"messages.getHistory","times":1,"error_code":420,"error_message":"FLOOD_WAIT_30"}`)
	want := map[string]any{"method": "messages.getHistory", "times": 1.0, "error_code": 420.0, "error_message": "FLOOD_WAIT_30"}
	if len(out) != len(want) {
		t.Fatalf("fault answer %v, want %v", out, want)
	}
	for k, v := range want {
		if out[k] != v {
			t.Fatalf("fault answer %v, want %v", out, want)
		}
	}
	out = c.must("POST", "/control/v1/accounts/fault", `{"phone":"`+phone+`","method":"messages.getHistory","times":1,"error_message":"PEER_FLOOD"}`)
	if out["error_code"] != 400.0 {
		t.Fatalf("default error_code: %v", out)
	}
	// Delay faults are echoed in Go's canonical form. (On another account:
	// a delay for any method would hold up the client below.)
	c.must("POST", "/control/v1/accounts", `{"phone":"9996625004"}`)
	out = c.must("POST", "/control/v1/accounts/fault", `{"phone":"9996625004","times":2,"delay":"90m"}`)
	if out["delay"] != "1h30m0s" || out["times"] != 2.0 || out["error_code"] != nil || out["method"] != "" {
		t.Fatalf("delay fault: %v", out)
	}

	// The injected faults reach a real client, in order, then stop.
	run(t, opts, func(ctx context.Context, cl *telegram.Client) error {
		req := &tg.MessagesGetHistoryRequest{Peer: &tg.InputPeerSelf{}, Limit: 1}
		if _, err := cl.API().MessagesGetHistory(ctx, req); !tgerr.IsCode(err, 420) || !tgerr.Is(err, "FLOOD_WAIT") {
			t.Fatalf("first call: %v, want 420 FLOOD_WAIT_30", err)
		}
		if _, err := cl.API().MessagesGetHistory(ctx, req); !tgerr.IsCode(err, 400) || !tgerr.Is(err, "PEER_FLOOD") {
			t.Fatalf("second call: %v, want 400 PEER_FLOOD", err)
		}
		return nil
	})
}

func TestControlBadInput(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	c := newControl(t, s, "")
	cases := []struct {
		path, body string
		code       int
		want       string
	}{
		{"/control/v1/advance", `{"duration":`, 400, "truncated JSON"},
		{"/control/v1/advance", `{"duration" "1m"}`, 400, "invalid JSON"},
		{"/control/v1/advance", ``, 400, "request body is empty"},
		{"/control/v1/advance", `[1]`, 400, "must be a JSON object"},
		{"/control/v1/advance", `{"duration":"1m","speed":2}`, 400, `unknown field "speed"`},
		{"/control/v1/advance", `{"duration":"1m"} {"duration":"1m"}`, 400, "unexpected data after the JSON object"},
		{"/control/v1/advance", `{"duration":"1m"} x`, 400, "unexpected data after the JSON object"},
		{"/control/v1/advance", `{"duration":60}`, 400, `field "duration" must be a string`},
		{"/control/v1/advance", `{"duration":"ninety minutes"}`, 400, "duration: invalid duration; use a Go duration"},
		{"/control/v1/advance", `{"duration":"0s"}`, 400, "duration must be positive"},
		{"/control/v1/advance", `{"duration":"-1h"}`, 400, "duration must be positive"},
		{"/control/v1/advance", `{}`, 400, "duration is required"},
		{"/control/v1/advance?duration=1m", `{"duration":"1m"}`, 400, "query string"},
		{"/control/v1/advance", `{"duration":"` + strings.Repeat("1", 70<<10) + `s"}`, 413, "larger than 65536 bytes"},
		{"/control/v1/accounts", `{"phone":"9996625003","age":"a month"}`, 400, `age: invalid duration`},
		{"/control/v1/accounts", `{"phone":"9996625003","age":"-1h"}`, 400, "age must not be negative"},
		{"/control/v1/accounts", `{"first_name":"X"}`, 400, "phone is required"},
		{"/control/v1/accounts", `{"phone":"9996625003","mutual_contacts":5}`, 400, "mutual contacts must be within"},
		{"/control/v1/accounts/limit", `{"phone":"9996625003","duration":"-1h"}`, 400, "duration must not be negative"},
		{"/control/v1/accounts/limit", `{"phone":"9996625003","duration":"a day"}`, 400, "duration: invalid duration"},
		{"/control/v1/accounts/freeze", `{"phone":"9996625003","until":"tomorrow"}`, 400, "until: invalid time"},
		{"/control/v1/accounts/freeze", `{"phone":"9996625003","until":"2020-01-01T00:00:00Z"}`, 400, "until must be after"},
		{"/control/v1/connections/drop", `{"all":true}`, 400, `unknown field "all"`},
	}
	for _, tc := range cases {
		code, out := c.do("POST", tc.path, tc.body)
		msg, _ := out["error"].(string)
		if code != tc.code || !strings.Contains(msg, tc.want) {
			t.Errorf("POST %s %.60s: %d %q, want %d mentioning %q", tc.path, tc.body, code, msg, tc.code, tc.want)
		}
	}
	if !s.Clock().Now().Equal(Epoch) {
		t.Fatalf("a refused advance moved the clock to %s", s.Clock().Now())
	}
	for _, q := range []string{"", "?phone=", "?phone=1&phone=2", "?phone=1&verbose=1"} {
		if code, out := c.do("GET", "/control/v1/accounts/status"+q, ""); code != 400 || out["error"] == "" {
			t.Errorf("status%s: %d %v", q, code, out)
		}
	}
}

func TestControlUnknownAccountIs404WithoutThePhone(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	c := newControl(t, s, "")
	const phone = "9996625099"
	calls := [][2]string{
		{"GET", "/control/v1/accounts/status?phone=" + phone},
		{"POST", "/control/v1/accounts/session"},
		{"POST", "/control/v1/accounts/limit"},
		{"POST", "/control/v1/accounts/release"},
		{"POST", "/control/v1/accounts/ban"},
		{"POST", "/control/v1/accounts/unban"},
		{"POST", "/control/v1/accounts/freeze"},
		{"POST", "/control/v1/accounts/unfreeze"},
		{"POST", "/control/v1/accounts/revoke"},
	}
	for _, call := range calls {
		body := ""
		if call[0] == "POST" {
			body = `{"phone":"` + phone + `"}`
		}
		code, out := c.do(call[0], call[1], body)
		if code != http.StatusNotFound || out["error"] != "no account with that phone number" {
			t.Errorf("%s %s: %d %v", call[0], call[1], code, out)
		}
	}
	code, out := c.do("POST", "/control/v1/accounts/fault", `{"phone":"`+phone+`","times":1,"drop":true}`)
	if code != http.StatusNotFound || strings.Contains(out["error"].(string), phone) {
		t.Errorf("fault: %d %v", code, out)
	}
	// A duplicate phone is bad input, and its error does not repeat it either.
	c.must("POST", "/control/v1/accounts", `{"phone":"`+phone+`"}`)
	code, out = c.do("POST", "/control/v1/accounts", `{"phone":"`+phone+`"}`)
	if msg := out["error"].(string); code != http.StatusBadRequest || strings.Contains(msg, phone) || !strings.Contains(msg, "already registered") {
		t.Errorf("duplicate: %d %v", code, out)
	}
	if code, out := c.do("GET", "/control/v1/nothing", ""); code != http.StatusNotFound || out["error"] != "no such control endpoint" {
		t.Errorf("unknown endpoint: %d %v", code, out)
	}
}

func TestControlToken(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	h := s.ControlHandler("s3cret")
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cre", "Basic s3cret", "s3cret"} {
		r := httptest.NewRequest("POST", "/control/v1/advance", strings.NewReader(`{"duration":"1h"}`))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		code, out := serve(t, h, r)
		if code != http.StatusUnauthorized || out["error"] == "" {
			t.Errorf("Authorization %q: %d %v", auth, code, out)
		}
	}
	// Unauthenticated callers do not learn which endpoints exist.
	if code, _ := serve(t, h, httptest.NewRequest("GET", "/control/v1/nothing", nil)); code != http.StatusUnauthorized {
		t.Errorf("unknown endpoint without token: %d", code)
	}
	if !s.Clock().Now().Equal(Epoch) {
		t.Fatal("an unauthorised advance moved the clock")
	}
	c := newControl(t, s, "s3cret")
	if got := jsonTime(t, c.must("POST", "/control/v1/advance", `{"duration":"1h"}`)["now"]); !got.Equal(Epoch.Add(time.Hour)) {
		t.Fatalf("advance with token: %s", got)
	}
	// The scheme is case-insensitive, as RFC 9110 says.
	r := httptest.NewRequest("GET", "/control/v1/time", nil)
	r.Header.Set("Authorization", "bearer s3cret")
	if code, out := serve(t, h, r); code != http.StatusOK {
		t.Fatalf("lower-case scheme: %d %v", code, out)
	}
}

func TestControlWrongMethod(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	c := newControl(t, s, "")
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/control/v1/time", "GET"},
		{"GET", "/control/v1/advance", "POST"},
		{"DELETE", "/control/v1/accounts", "POST"},
		{"POST", "/control/v1/accounts/status", "GET"},
		{"GET", "/control/v1/connections/drop", "POST"},
	} {
		w := httptest.NewRecorder()
		c.h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		var out map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != http.StatusMethodNotAllowed ||
			w.Header().Get("Allow") != tc.allow || !strings.Contains(out["error"], "use "+tc.allow) {
			t.Errorf("%s %s: %d Allow=%q %q", tc.method, tc.path, w.Code, w.Header().Get("Allow"), w.Body.String())
		}
	}
}

func TestControlRefusesWebPages(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	c := newControl(t, s, "")
	r := httptest.NewRequest("POST", "/control/v1/advance", strings.NewReader(`{"duration":"1h"}`))
	r.Header.Set("Origin", "http://evil.example")
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Fatalf("request with Origin: %d %s", w.Code, w.Body.String())
	}
	if !s.Clock().Now().Equal(Epoch) {
		t.Fatal("a refused request moved the clock")
	}
}
