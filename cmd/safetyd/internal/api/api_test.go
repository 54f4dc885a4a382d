package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/store"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

// fakeProbe is a probe.Probe that counts its runs.
type fakeProbe struct {
	kind string
	runs atomic.Int32
}

func (p *fakeProbe) Kind() string { return p.kind }
func (p *fakeProbe) Run(context.Context) error {
	p.runs.Add(1)
	return nil
}

type apiFixture struct {
	t     *testing.T
	clk   *vclock.Clock
	mon   *monitor.Monitor
	st    *store.SQLite
	w     *store.Writer
	sched *probe.Scheduler
	h     http.Handler
	ready error
}

func newAPIFixture(t *testing.T, mutate func(*Deps)) *apiFixture {
	t.Helper()
	w := fixture.NewWorld(t)
	f := &apiFixture{t: t, clk: w.Clock, mon: w.Monitor, st: w.Store, w: w.Writer}
	dedup := w.Dedup
	alpha, _ := f.mon.Lookup("alpha")
	f.sched = probe.NewScheduler(alpha, probe.Options{Seed: 1})
	if err := f.sched.Add(&fakeProbe{kind: monitor.ProbeSpamBot}, probe.Schedule{Floor: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	st := w.Store
	d := Deps{
		Monitor: f.mon,
		Store:   st,
		Writer:  f.w,
		Scheduler: func(name string) *probe.Scheduler {
			if name == "alpha" {
				return f.sched
			}
			return nil
		},
		Token:   fixture.APIToken,
		Now:     f.clk.Now,
		Ready:   func() error { return f.ready },
		Version: "test",
		Dedup:   dedup,
	}
	if mutate != nil {
		mutate(&d)
	}
	f.h = New(d)
	return f
}

type apiResult struct {
	code   int
	header http.Header
	body   string
}

func (f *apiFixture) do(method, path, body string, hdr ...string) apiResult {
	f.t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	res := apiResult{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if !json.Valid([]byte(res.body)) {
		f.t.Errorf("%s %s: body is not JSON: %s", method, path, res.body)
	}
	return res
}

func (f *apiFixture) get(path string) apiResult { return f.do(http.MethodGet, path, "") }

func (f *apiFixture) post(path, body string) apiResult {
	return f.do(http.MethodPost, path, body, "Authorization", "Bearer "+fixture.APIToken)
}

func expect(t *testing.T, res apiResult, code int, contains ...string) {
	t.Helper()
	if res.code != code {
		t.Fatalf("status %d, want %d; body %s", res.code, code, res.body)
	}
	for _, c := range contains {
		if !strings.Contains(res.body, c) {
			t.Errorf("body %s does not contain %q", res.body, c)
		}
	}
}

func decode[T any](t *testing.T, res apiResult) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(res.body), &v); err != nil {
		t.Fatalf("decode %s: %v", res.body, err)
	}
	return v
}

func TestAPIHealth(t *testing.T) {
	f := newAPIFixture(t, nil)
	expect(t, f.get("/healthz"), 200, `"status":"ok"`, `"version":"test"`)
	expect(t, f.get("/readyz"), 200, `"status":"ready"`)
	f.ready = errors.New("store not open yet")
	expect(t, f.get("/readyz"), 503, `"status":"not ready"`, `"reason":"store not open yet"`)
}

func TestAPIRouting(t *testing.T) {
	f := newAPIFixture(t, nil)
	expect(t, f.get("/nope"), 404, `"error"`)
	expect(t, f.get("/api/v1/accounts/alpha/nope"), 404, `"error"`)
	res := f.do(http.MethodPost, "/api/v1/accounts", "")
	expect(t, res, 405, `"error"`)
	if a := res.header.Get("Allow"); !strings.Contains(a, "GET") {
		t.Errorf("Allow %q", a)
	}
	res = f.do(http.MethodGet, "/api/v1/signals", "")
	expect(t, res, 405)
	if a := res.header.Get("Allow"); a != "POST" {
		t.Errorf("Allow %q", a)
	}
	res = f.do(http.MethodDelete, "/api/v1/accounts/alpha", "")
	expect(t, res, 405)
	expect(t, f.do(http.MethodHead, "/healthz", ""), 200)
}

func TestAPIAccounts(t *testing.T) {
	f := newAPIFixture(t, nil)
	bravo, _ := f.mon.Lookup("bravo")
	bravo.ObserveSignal(fixture.Epoch, "messages.sendMessage", signal.Parse(420, "FLOOD_WAIT_30"))
	alpha, _ := f.mon.Lookup("alpha")
	alpha.ObserveSpamBot(fixture.Epoch, spambot.Result{State: spambot.LimitedTemporary, Until: fixture.Epoch.Add(48 * time.Hour)})

	res := f.get("/api/v1/accounts")
	expect(t, res, 200)
	if strings.Contains(res.body, "risk_inputs") || strings.Contains(res.body, "last_signal") {
		t.Errorf("list view shows detail fields: %s", res.body)
	}
	list := decode[struct {
		Accounts []struct {
			Name       string                 `json:"name"`
			State      string                 `json:"state"`
			Until      time.Time              `json:"until"`
			Risk       float64                `json:"risk"`
			FloodWaits []monitor.FloodWait    `json:"flood_waits"`
			Limit      monitor.Limit          `json:"limit"`
			SpamBot    *monitor.SpamBotStatus `json:"spambot"`
		} `json:"accounts"`
	}](t, res)
	if len(list.Accounts) != 3 || list.Accounts[0].Name != "alpha" || list.Accounts[1].Name != "bravo" || list.Accounts[2].Name != "charlie" {
		t.Fatalf("accounts not sorted by name: %+v", list.Accounts)
	}
	for _, v := range list.Accounts {
		acct, _ := f.mon.Lookup(v.Name)
		s := acct.Snapshot()
		if v.State != s.State.String() || v.Risk != s.Risk || !v.Until.Equal(s.Until) || len(v.FloodWaits) != len(s.FloodWaits) || v.Limit.Active != s.Limit.Active {
			t.Errorf("%s: API %+v disagrees with snapshot %+v", v.Name, v, s)
		}
	}
	if a := list.Accounts[0]; a.SpamBot == nil || a.SpamBot.State != spambot.LimitedTemporary || !a.SpamBot.At.Equal(fixture.Epoch) || a.State != "limited" {
		t.Errorf("alpha: %+v", a)
	}
	if b := list.Accounts[1]; b.SpamBot != nil || b.State != "throttled" || len(b.FloodWaits) != 1 || b.FloodWaits[0].Method != "messages.sendMessage" {
		t.Errorf("bravo: %+v", b)
	}
	if !strings.Contains(res.body, `"spambot":null`) {
		t.Errorf("no spambot answer is not null: %s", res.body)
	}

	res = f.get("/api/v1/accounts/bravo")
	expect(t, res, 200, `"name":"bravo"`, `"last_signal":{`, `"state":"throttled"`, `"risk_inputs":[`)
	det := decode[view.Detail](t, res)
	s := bravo.Snapshot()
	if det.LastSignal == nil || det.LastSignal.Signal != s.LastSignal.Signal || det.Risk != s.Risk || !det.At.Equal(s.At) || det.State != s.State {
		t.Errorf("detail %+v disagrees with snapshot %+v", det, s)
	}

	expect(t, f.get("/api/v1/accounts/zulu"), 404, `no account \"zulu\"`)
	res = f.get("/api/v1/accounts/%2B79161234567")
	expect(t, res, 400, "invalid account name")
	if strings.Contains(res.body, "9161234567") {
		t.Errorf("invalid name echoed: %s", res.body)
	}
	res = f.get("/api/v1/accounts/bad%20name")
	expect(t, res, 400)
	if strings.Contains(res.body, "bad name") {
		t.Errorf("invalid name echoed: %s", res.body)
	}
}

func TestAPIEventsFromRing(t *testing.T) {
	f := newAPIFixture(t, func(d *Deps) { d.Store = nil })
	alpha, _ := f.mon.Lookup("alpha")
	alpha.ObserveSignal(fixture.Epoch.Add(-48*time.Hour), "messages.sendMessage", signal.Parse(420, "FLOOD_WAIT_5"))
	for i := range 5 {
		f.clk.Advance(time.Minute)
		alpha.ObserveSignal(f.clk.Now(), fmt.Sprintf("messages.m%d", i), signal.Parse(420, "FLOOD_WAIT_5"))
	}
	all := alpha.Events()
	var recent []monitor.Event
	for _, e := range all {
		if !e.Time.Before(f.clk.Now().Add(-24 * time.Hour)) {
			recent = append(recent, e)
		}
	}
	got := decode[eventsResponse](t, f.get("/api/v1/accounts/alpha/events"))
	if len(got.Events) != len(recent) || len(recent) == len(all) {
		t.Fatalf("default window: got %d events, want %d of %d", len(got.Events), len(recent), len(all))
	}
	for i := 1; i < len(got.Events); i++ {
		if got.Events[i].Time.Before(got.Events[i-1].Time) {
			t.Fatalf("not oldest first: %+v", got.Events)
		}
	}
	got = decode[eventsResponse](t, f.get("/api/v1/accounts/alpha/events?limit=2&since="+fixture.Epoch.Add(-72*time.Hour).Format(time.RFC3339)))
	if len(got.Events) != 2 || !got.Events[0].Time.Equal(all[0].Time) {
		t.Fatalf("limit/since: %+v", got.Events)
	}
	got = decode[eventsResponse](t, f.get("/api/v1/accounts/charlie/events"))
	if got.Events == nil || len(got.Events) != 0 {
		t.Fatalf("charlie: %+v", got)
	}
}

func TestAPIEventsErrors(t *testing.T) {
	f := newAPIFixture(t, nil)
	for _, q := range []string{"since=yesterday", "since=2026-01-01"} {
		expect(t, f.get("/api/v1/accounts/alpha/events?"+q), 400, "since")
	}
	for _, q := range []string{"limit=x", "limit=0", "limit=-1", "limit=1001"} {
		expect(t, f.get("/api/v1/accounts/alpha/events?"+q), 400, "limit")
	}
	expect(t, f.get("/api/v1/accounts/alpha/events?limit=1000"), 200)
	expect(t, f.get("/api/v1/accounts/zulu/events"), 404)
	expect(t, f.get("/api/v1/accounts/a%21/events"), 400)
}

func TestAPIAuth(t *testing.T) {
	f := newAPIFixture(t, nil)
	body := `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`
	for _, path := range []string{"/api/v1/signals", "/api/v1/accounts/alpha/probe"} {
		res := f.do(http.MethodPost, path, body)
		expect(t, res, 401, "Authorization")
		if res.header.Get("WWW-Authenticate") == "" {
			t.Error("no WWW-Authenticate")
		}
		expect(t, f.do(http.MethodPost, path, body, "Authorization", "Bearer wrong"), 401, "invalid bearer token")
		expect(t, f.do(http.MethodPost, path, body, "Authorization", "Basic "+fixture.APIToken), 401, "Bearer")
		expect(t, f.do(http.MethodPost, path, body, "Authorization", "Bearer "+fixture.APIToken, "Origin", "https://evil.example"), 403, "web pages")
	}
	// Nothing was applied.
	alpha, _ := f.mon.Lookup("alpha")
	if s := alpha.Snapshot(); s.State != monitor.Unknown {
		t.Fatalf("unauthenticated request changed the state: %v", s.State)
	}
	// GET is open, with or without a token.
	expect(t, f.get("/api/v1/accounts"), 200)

	g := newAPIFixture(t, func(d *Deps) { d.Token = "" })
	expect(t, g.post("/api/v1/signals", body), 403, "API token not configured")
	expect(t, g.post("/api/v1/accounts/alpha/probe", ""), 403, "API token not configured")
}

func TestAPIProbe(t *testing.T) {
	f := newAPIFixture(t, nil)
	res := f.post("/api/v1/accounts/alpha/probe", "")
	expect(t, res, 202, `"probe":"spambot"`)
	got := decode[probeResponse](t, res)
	if !got.RunsAt.Equal(fixture.Epoch) {
		t.Errorf("runs_at %v, want now %v", got.RunsAt, fixture.Epoch)
	}
	// The floor applies after a run.
	g := newAPIFixture(t, nil)
	last := fixture.Epoch.Add(-10 * time.Minute)
	if err := g.sched.SetLast(monitor.ProbeSpamBot, last); err != nil {
		t.Fatal(err)
	}
	got = decode[probeResponse](t, g.post("/api/v1/accounts/alpha/probe", `{"probe":"spambot"}`))
	if !got.RunsAt.Equal(last.Add(30 * time.Minute)) {
		t.Errorf("runs_at %v, want the floor %v", got.RunsAt, last.Add(30*time.Minute))
	}
	if want := g.sched.Next()[monitor.ProbeSpamBot]; !got.RunsAt.Equal(want) {
		t.Errorf("runs_at %v, scheduler says %v", got.RunsAt, want)
	}
	expect(t, f.post("/api/v1/accounts/alpha/probe", `{}`), 202)
	expect(t, f.post("/api/v1/accounts/alpha/probe", `{"probe":"freeze"}`), 400, "unknown probe kind")
	expect(t, f.post("/api/v1/accounts/alpha/probe", `{"probe":"NOT A KIND"}`), 400, "unknown probe kind")
	expect(t, f.post("/api/v1/accounts/alpha/probe", `{"kind":"spambot"}`), 400, "unknown field")
	expect(t, f.post("/api/v1/accounts/alpha/probe", `{"probe":1}`), 400, `probe`, "must be a string")
	expect(t, f.post("/api/v1/accounts/bravo/probe", ""), 409, "no probe scheduler")
	expect(t, f.post("/api/v1/accounts/zulu/probe", ""), 404)
	expect(t, f.post("/api/v1/accounts/a%20b/probe", ""), 400)

	n := newAPIFixture(t, func(d *Deps) { d.Scheduler = nil })
	expect(t, n.post("/api/v1/accounts/alpha/probe", ""), 409)
}

// A probe request for an account whose client has stopped for good
// (banned, dead) would be answered with a runs_at that never comes.
func TestAPIProbeRefusesStoppedAccount(t *testing.T) {
	f := newAPIFixture(t, nil)
	alpha, _ := f.mon.Lookup("alpha")
	alpha.ObserveSignal(fixture.Epoch, "users.getUsers", signal.Parse(401, "USER_DEACTIVATED_BAN"))
	if s := alpha.Snapshot(); s.State != monitor.Banned {
		t.Fatalf("alpha is %s, want banned", s.State)
	}
	res := f.post("/api/v1/accounts/alpha/probe", "")
	expect(t, res, 409, "banned")
	if strings.Contains(res.body, "runs_at") {
		t.Errorf("a probe that never runs was promised: %s", res.body)
	}
}
