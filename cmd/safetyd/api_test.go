package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/dedup"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/store"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

const apiToken = "0123456789abcdef-test-token"

var apiEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

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

func newAPIFixture(t *testing.T, mutate func(*apiDeps)) *apiFixture {
	t.Helper()
	f := &apiFixture{t: t, clk: vclock.New(apiEpoch)}
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "history.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.st = st
	f.w = store.NewWriter(st, store.WriterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = f.w.Close(context.Background())
		_ = st.Close()
	})
	dedup := dedup.New(f.w)
	f.mon, err = monitor.New(monitor.Options{Clock: f.clk, Sink: dedup})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"bravo", "alpha", "charlie"} {
		if _, err := f.mon.Account(n); err != nil {
			t.Fatal(err)
		}
	}
	alpha, _ := f.mon.Lookup("alpha")
	f.sched = probe.NewScheduler(alpha, probe.Options{Seed: 1})
	if err := f.sched.Add(&fakeProbe{kind: monitor.ProbeSpamBot}, probe.Schedule{Floor: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	d := apiDeps{
		Monitor: f.mon,
		Store:   st,
		Writer:  f.w,
		Scheduler: func(name string) *probe.Scheduler {
			if name == "alpha" {
				return f.sched
			}
			return nil
		},
		Token:   apiToken,
		Now:     f.clk.Now,
		Ready:   func() error { return f.ready },
		Version: "test",
		Dedup:   dedup,
	}
	if mutate != nil {
		mutate(&d)
	}
	f.h = newAPI(d)
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
	return f.do(http.MethodPost, path, body, "Authorization", "Bearer "+apiToken)
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
	bravo.ObserveSignal(apiEpoch, "messages.sendMessage", signal.Parse(420, "FLOOD_WAIT_30"))
	alpha, _ := f.mon.Lookup("alpha")
	alpha.ObserveSpamBot(apiEpoch, spambot.Result{State: spambot.LimitedTemporary, Until: apiEpoch.Add(48 * time.Hour)})

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
	if a := list.Accounts[0]; a.SpamBot == nil || a.SpamBot.State != spambot.LimitedTemporary || !a.SpamBot.At.Equal(apiEpoch) || a.State != "limited" {
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
	f := newAPIFixture(t, func(d *apiDeps) { d.Store = nil })
	alpha, _ := f.mon.Lookup("alpha")
	alpha.ObserveSignal(apiEpoch.Add(-48*time.Hour), "messages.sendMessage", signal.Parse(420, "FLOOD_WAIT_5"))
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
	got = decode[eventsResponse](t, f.get("/api/v1/accounts/alpha/events?limit=2&since="+apiEpoch.Add(-72*time.Hour).Format(time.RFC3339)))
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
		expect(t, f.do(http.MethodPost, path, body, "Authorization", "Basic "+apiToken), 401, "Bearer")
		expect(t, f.do(http.MethodPost, path, body, "Authorization", "Bearer "+apiToken, "Origin", "https://evil.example"), 403, "web pages")
	}
	// Nothing was applied.
	alpha, _ := f.mon.Lookup("alpha")
	if s := alpha.Snapshot(); s.State != monitor.Unknown {
		t.Fatalf("unauthenticated request changed the state: %v", s.State)
	}
	// GET is open, with or without a token.
	expect(t, f.get("/api/v1/accounts"), 200)

	g := newAPIFixture(t, func(d *apiDeps) { d.Token = "" })
	expect(t, g.post("/api/v1/signals", body), 403, "API token not configured")
	expect(t, g.post("/api/v1/accounts/alpha/probe", ""), 403, "API token not configured")
}

func TestAPIProbe(t *testing.T) {
	f := newAPIFixture(t, nil)
	res := f.post("/api/v1/accounts/alpha/probe", "")
	expect(t, res, 202, `"probe":"spambot"`)
	got := decode[probeResponse](t, res)
	if !got.RunsAt.Equal(apiEpoch) {
		t.Errorf("runs_at %v, want now %v", got.RunsAt, apiEpoch)
	}
	// The floor applies after a run.
	g := newAPIFixture(t, nil)
	last := apiEpoch.Add(-10 * time.Minute)
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

	n := newAPIFixture(t, func(d *apiDeps) { d.Scheduler = nil })
	expect(t, n.post("/api/v1/accounts/alpha/probe", ""), 409)
}

func storedSignals(t *testing.T, st store.Store, account string) []monitor.Event {
	t.Helper()
	evs, err := st.Events(context.Background(), account, time.Time{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []monitor.Event
	for _, e := range evs {
		if e.Type == monitor.EventSignal {
			out = append(out, e)
		}
	}
	return out
}

func TestAPISignals(t *testing.T) {
	f := newAPIFixture(t, nil)
	res := f.post("/api/v1/signals", `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`)
	expect(t, res, 202, `"accepted":1`)
	// Committed before the answer: the store has it now.
	stored := storedSignals(t, f.st, "alpha")
	if len(stored) != 1 || stored[0].Signal.Kind != signal.PeerFlood || stored[0].Method != "messages.sendMessage" || !stored[0].Time.Equal(apiEpoch) {
		t.Fatalf("stored %+v", stored)
	}
	if stored[0].State != monitor.Limited || stored[0].Risk != 60 {
		t.Errorf("stored event state %v risk %v, want limited at 60", stored[0].State, stored[0].Risk)
	}
	alpha, _ := f.mon.Lookup("alpha")
	if s := alpha.Snapshot(); s.State != monitor.Limited || !s.Limit.Active {
		t.Fatalf("alpha not limited: %+v", s)
	}
	expect(t, f.get("/api/v1/accounts/alpha"), 200, `"state":"limited"`, `"kind":"peer_flood"`)
	got := decode[eventsResponse](t, f.get("/api/v1/accounts/alpha/events"))
	found := false
	for _, e := range got.Events {
		found = found || e.Type == monitor.EventSignal && e.Signal.Kind == signal.PeerFlood
	}
	if !found {
		t.Fatalf("events do not show the signal: %+v", got.Events)
	}

	// A batch, with explicit times (one in the past, one slightly ahead).
	f.clk.Advance(time.Minute)
	batch := fmt.Sprintf(`{"signals":[
		{"account":"bravo","method":"messages.sendMessage","code":420,"message":"FLOOD_WAIT_3600","time":%q},
		{"account":"charlie","method":"channels.inviteToChannel","code":400,"message":"USER_RESTRICTED","time":%q}]}`,
		apiEpoch.Format(time.RFC3339), f.clk.Now().Add(4*time.Minute).Format(time.RFC3339))
	expect(t, f.post("/api/v1/signals", batch), 202, `"accepted":2`)
	if s := storedSignals(t, f.st, "bravo"); len(s) != 1 || s[0].Signal.Kind != signal.FloodWait || s[0].Signal.Wait != time.Hour || !s[0].Time.Equal(apiEpoch) {
		t.Fatalf("bravo stored %+v", s)
	}
	if s := storedSignals(t, f.st, "charlie"); len(s) != 1 || s[0].Signal.Kind != signal.Restricted {
		t.Fatalf("charlie stored %+v", s)
	}
	bravo, _ := f.mon.Lookup("bravo")
	if s := bravo.Snapshot(); s.State != monitor.Throttled {
		t.Errorf("bravo %v, want throttled", s.State)
	}

	// Once the writer has written everything the monitor recorded, each
	// reported signal is stored exactly once (the Dedup sink) and the
	// state changes are stored too.
	if err := f.w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alpha", "bravo", "charlie"} {
		if s := storedSignals(t, f.st, n); len(s) != 1 {
			t.Errorf("%s: %d signal events stored, want 1: %+v", n, len(s), s)
		}
	}
	evs, err := f.st.Events(context.Background(), "alpha", time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	states := 0
	for _, e := range evs {
		if e.Type == monitor.EventState && e.State == monitor.Limited {
			states++
		}
	}
	if states != 1 {
		t.Errorf("alpha: %d state events to limited stored: %+v", states, evs)
	}
	// After Close, Commit fails: the API must not acknowledge.
	expect(t, f.post("/api/v1/signals", `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`), 503, "not stored")
}

func TestAPISignalsWithoutWriter(t *testing.T) {
	f := newAPIFixture(t, func(d *apiDeps) { d.Writer = nil; d.Store = nil })
	expect(t, f.post("/api/v1/signals", `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`), 202, `"accepted":1`)
	alpha, _ := f.mon.Lookup("alpha")
	if s := alpha.Snapshot(); s.State != monitor.Limited {
		t.Fatalf("state %v", s.State)
	}
	got := decode[eventsResponse](t, f.get("/api/v1/accounts/alpha/events"))
	if len(got.Events) == 0 {
		t.Fatal("ring shows no events")
	}
}

func TestAPISignalsValidation(t *testing.T) {
	f := newAPIFixture(t, nil)
	future := apiEpoch.Add(6 * time.Minute).Format(time.RFC3339)
	ok := `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`
	many := `{"signals":[` + strings.TrimSuffix(strings.Repeat(ok+",", maxSignalBatch+1), ",") + `]}`
	cases := []struct {
		name, body string
		code       int
		want       string
	}{
		{"empty", ``, 400, "empty"},
		{"not object", `[1]`, 400, "JSON object"},
		{"truncated", `{"account":`, 400, "truncated"},
		{"unknown field", `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD","extra":1}`, 400, "unknown field"},
		{"trailing", ok + `{}`, 400, "unexpected data"},
		{"wrong type", `{"account":"alpha","method":"messages.sendMessage","code":"400","message":"PEER_FLOOD"}`, 400, `field \"code\" must be an integer`},
		{"no account", `{"method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`, 400, "account: required"},
		{"phone account", `{"account":"+79161234567","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`, 400, "account: invalid account name"},
		{"unknown account", `{"account":"zulu","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`, 404, `no account \"zulu\"`},
		{"no method", `{"account":"alpha","code":400,"message":"PEER_FLOOD"}`, 400, "method: required"},
		{"bad method", `{"account":"alpha","method":"sendMessage","code":400,"message":"PEER_FLOOD"}`, 400, "method: must be"},
		{"zero code", `{"account":"alpha","method":"messages.sendMessage","message":"PEER_FLOOD"}`, 400, "code: required"},
		{"huge code", `{"account":"alpha","method":"messages.sendMessage","code":4000,"message":"PEER_FLOOD"}`, 400, "code: must be"},
		{"no message", `{"account":"alpha","method":"messages.sendMessage","code":400}`, 400, "message: required"},
		{"lower message", `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"peer_flood"}`, 400, "message: must be"},
		{"bad time", `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD","time":"now"}`, 400, "time: invalid"},
		{"future time", `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD","time":"` + future + `"}`, 400, "time: more than 5m0s in the future"},
		{"both forms", `{"account":"alpha","signals":[]}`, 400, "not both"},
		{"empty batch", `{"signals":[]}`, 400, "signals: empty"},
		{"batch item", `{"signals":[` + ok + `,{"account":"alpha","method":"x.y","code":400,"message":"PEER FLOOD"}]}`, 400, "signals[1].message"},
		{"batch unknown account", `{"signals":[` + ok + `,{"account":"zulu","method":"x.y","code":400,"message":"PEER_FLOOD"}]}`, 404, "signals[1].account"},
		{"batch too large", many, 400, "at most 1000"},
		{"body too large", `{"account":"` + strings.Repeat("a", maxAPIBody) + `"}`, 413, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := f.post("/api/v1/signals", c.body)
			expect(t, res, c.code, c.want)
			if strings.Contains(res.body, "9161234567") {
				t.Errorf("phone number echoed: %s", res.body)
			}
		})
	}
	// Nothing was applied or stored: validation comes first, for the whole batch.
	alpha, _ := f.mon.Lookup("alpha")
	if s := alpha.Snapshot(); s.State != monitor.Unknown {
		t.Fatalf("a refused request changed the state: %v", s.State)
	}
	if s := storedSignals(t, f.st, "alpha"); len(s) != 0 {
		t.Fatalf("a refused request stored %+v", s)
	}
}

// A signal dated before the store's retention would be applied, then
// deleted by retention within the hour: the history would not explain
// the state. Such times are refused.
func TestAPISignalsRefuseTimesOlderThanRetention(t *testing.T) {
	f := newAPIFixture(t, func(d *apiDeps) { d.Retention = 30 * 24 * time.Hour })
	body := func(ts string) string {
		return `{"account":"alpha","method":"messages.sendMessage","code":420,"message":"FLOOD_WAIT_5","time":"` + ts + `"}`
	}
	for _, ts := range []string{
		"0001-01-01T00:00:00Z",
		"1970-01-01T00:00:00Z",
		apiEpoch.Add(-30*24*time.Hour - time.Second).Format(time.RFC3339),
	} {
		expect(t, f.post("/api/v1/signals", body(ts)), 400, "time: older than the store keeps events (30d")
	}
	alpha, _ := f.mon.Lookup("alpha")
	if s := alpha.Snapshot(); s.State != monitor.Unknown || s.LastSignal != nil {
		t.Fatalf("a refused signal was applied: %+v", s)
	}
	expect(t, f.post("/api/v1/signals", body(apiEpoch.Add(-29*24*time.Hour).Format(time.RFC3339))), 202)

	// Without a configured retention the store's default applies.
	g := newAPIFixture(t, nil)
	expect(t, g.post("/api/v1/signals", body(apiEpoch.Add(-store.DefaultRetention-time.Hour).Format(time.RFC3339))), 400, "older than")
	expect(t, g.post("/api/v1/signals", body(apiEpoch.Add(-store.DefaultRetention+time.Hour).Format(time.RFC3339))), 202)
}

// A probe request for an account whose client has stopped for good
// (banned, dead) would be answered with a runs_at that never comes.
func TestAPIProbeRefusesStoppedAccount(t *testing.T) {
	f := newAPIFixture(t, nil)
	alpha, _ := f.mon.Lookup("alpha")
	alpha.ObserveSignal(apiEpoch, "users.getUsers", signal.Parse(401, "USER_DEACTIVATED_BAN"))
	if s := alpha.Snapshot(); s.State != monitor.Banned {
		t.Fatalf("alpha is %s, want banned", s.State)
	}
	res := f.post("/api/v1/accounts/alpha/probe", "")
	expect(t, res, 409, "banned")
	if strings.Contains(res.body, "runs_at") {
		t.Errorf("a probe that never runs was promised: %s", res.body)
	}
}

// The same with the daemon's own wiring: an account without a session
// stops its runner at once, and the scheduler it leaves behind no longer
// runs anything.
func TestProbeRequestForAccountWithoutSessionIs409(t *testing.T) {
	w := newDaemonWorld(t, "alpha", "bravo")
	if err := os.Remove(w.cfg.SessionPath("alpha")); err != nil {
		t.Fatal(err)
	}
	base, svc, stop := w.start(t)
	defer stop()
	svc.mu.Lock()
	r := svc.runners["alpha"]
	svc.mu.Unlock()
	<-r.done // the runner gave up: no session
	code, body := postProbe(t, base, "alpha")
	if code != http.StatusConflict || !strings.Contains(body, "not running") {
		t.Fatalf("probe for a stopped account: %d %s, want 409", code, body)
	}
	if code, body := postProbe(t, base, "bravo"); code != http.StatusAccepted {
		t.Fatalf("probe for a running account: %d %s, want 202", code, body)
	}
}

func postProbe(t *testing.T, base, name string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/accounts/"+name+"/probe", nil)
	req.Header.Set("Authorization", "Bearer "+fixture.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The strict body rules reach the API's answers: a null body is not an
// object, names match exactly, a key counts once, and a phone number sent
// as a key is not repeated.
func TestAPIBodiesAreStrictAndDoNotEchoKeys(t *testing.T) {
	f := newAPIFixture(t, nil)
	for body, want := range map[string]string{
		`null`: "request body must be a JSON object, got null",
		`{"Account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`:                   `did you mean \"account\"`,
		`{"account":"alpha","account":"bravo","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`: `field \"account\" appears twice`,
		`{"+79991234567":1}`:               "unknown field (name not shown)",
		`{"signals":[{"+79991234567":1}]}`: "unknown field (name not shown) in signals[0]",
	} {
		res := f.post("/api/v1/signals", body)
		expect(t, res, 400, want)
		if strings.Contains(res.body, "9991234567") {
			t.Errorf("%s: phone number echoed: %s", body, res.body)
		}
	}
	res := f.post("/api/v1/accounts/alpha/probe", `{"+79991234567":"spambot"}`)
	expect(t, res, 400, "unknown field (name not shown)")
	alpha, _ := f.mon.Lookup("alpha")
	if s := alpha.Snapshot(); s.State != monitor.Unknown {
		t.Fatalf("a refused request changed the state: %v", s.State)
	}
}

// The API shows monitor.SpamBotStatus as it always showed its own copy:
// state, until and at, without the parser's reason for an unknown answer.
func TestAPISpamBotAnswerKeepsItsJSON(t *testing.T) {
	f := newAPIFixture(t, nil)
	alpha, _ := f.mon.Lookup("alpha")
	alpha.ObserveSpamBot(apiEpoch, spambot.Result{State: spambot.Unknown, Reason: "reply not understood: some text"})
	res := f.get("/api/v1/accounts/alpha")
	expect(t, res, 200)
	got := decode[struct {
		SpamBot map[string]any `json:"spambot"`
	}](t, res)
	if len(got.SpamBot) != 2 || got.SpamBot["state"] != "unknown" || got.SpamBot["at"] != apiEpoch.Format(time.RFC3339) {
		t.Fatalf("spambot %v, want exactly state and at", got.SpamBot)
	}
}
