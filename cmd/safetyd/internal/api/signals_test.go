package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/store"
)

func TestAPISignals(t *testing.T) {
	f := newAPIFixture(t, nil)
	res := f.post("/api/v1/signals", `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`)
	expect(t, res, 202, `"accepted":1`)
	// Committed before the answer: the store has it now.
	stored := fixture.StoredSignals(t, f.st, "alpha")
	if len(stored) != 1 || stored[0].Signal.Kind != signal.PeerFlood || stored[0].Method != "messages.sendMessage" || !stored[0].Time.Equal(fixture.Epoch) {
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
		fixture.Epoch.Format(time.RFC3339), f.clk.Now().Add(4*time.Minute).Format(time.RFC3339))
	expect(t, f.post("/api/v1/signals", batch), 202, `"accepted":2`)
	if s := fixture.StoredSignals(t, f.st, "bravo"); len(s) != 1 || s[0].Signal.Kind != signal.FloodWait || s[0].Signal.Wait != time.Hour || !s[0].Time.Equal(fixture.Epoch) {
		t.Fatalf("bravo stored %+v", s)
	}
	if s := fixture.StoredSignals(t, f.st, "charlie"); len(s) != 1 || s[0].Signal.Kind != signal.Restricted {
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
		if s := fixture.StoredSignals(t, f.st, n); len(s) != 1 {
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
	f := newAPIFixture(t, func(d *Deps) { d.Writer = nil; d.Store = nil })
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
	future := fixture.Epoch.Add(6 * time.Minute).Format(time.RFC3339)
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
		{"body too large", `{"account":"` + strings.Repeat("a", maxBody) + `"}`, 413, "larger than"},
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
	if s := fixture.StoredSignals(t, f.st, "alpha"); len(s) != 0 {
		t.Fatalf("a refused request stored %+v", s)
	}
}

// A signal dated before the store's retention would be applied, then
// deleted by retention within the hour: the history would not explain
// the state. Such times are refused.
func TestAPISignalsRefuseTimesOlderThanRetention(t *testing.T) {
	f := newAPIFixture(t, func(d *Deps) { d.Retention = 30 * 24 * time.Hour })
	body := func(ts string) string {
		return `{"account":"alpha","method":"messages.sendMessage","code":420,"message":"FLOOD_WAIT_5","time":"` + ts + `"}`
	}
	for _, ts := range []string{
		"0001-01-01T00:00:00Z",
		"1970-01-01T00:00:00Z",
		fixture.Epoch.Add(-30*24*time.Hour - time.Second).Format(time.RFC3339),
	} {
		expect(t, f.post("/api/v1/signals", body(ts)), 400, "time: older than the store keeps events (30d")
	}
	alpha, _ := f.mon.Lookup("alpha")
	if s := alpha.Snapshot(); s.State != monitor.Unknown || s.LastSignal != nil {
		t.Fatalf("a refused signal was applied: %+v", s)
	}
	expect(t, f.post("/api/v1/signals", body(fixture.Epoch.Add(-29*24*time.Hour).Format(time.RFC3339))), 202)

	// Without a configured retention the store's default applies.
	g := newAPIFixture(t, nil)
	expect(t, g.post("/api/v1/signals", body(fixture.Epoch.Add(-store.DefaultRetention-time.Hour).Format(time.RFC3339))), 400, "older than")
	expect(t, g.post("/api/v1/signals", body(fixture.Epoch.Add(-store.DefaultRetention+time.Hour).Format(time.RFC3339))), 202)
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
	alpha.ObserveSpamBot(fixture.Epoch, spambot.Result{State: spambot.Unknown, Reason: "reply not understood: some text"})
	res := f.get("/api/v1/accounts/alpha")
	expect(t, res, 200)
	got := decode[struct {
		SpamBot map[string]any `json:"spambot"`
	}](t, res)
	if len(got.SpamBot) != 2 || got.SpamBot["state"] != "unknown" || got.SpamBot["at"] != fixture.Epoch.Format(time.RFC3339) {
		t.Fatalf("spambot %v, want exactly state and at", got.SpamBot)
	}
}
