package demo

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
)

// The demo, in-process, through the daemon's own wiring: after a
// simulated day and a bit, every account state of the demo set has been
// reached (as recorded in the history the API serves), and the API and
// /metrics agree on each account's state and risk.
func TestDemoReachesEveryStateAndAPIAgreesWithMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for a simulated day")
	}
	var (
		checked bool
		visited = map[string]map[monitor.State]bool{}
		// first is each account's first state change after the first
		// (which is the connection: unknown -> ok).
		first = map[string]monitor.Event{}
		// connected is when each account was first seen.
		connected = map[string]time.Time{}
	)
	o := Options{
		Listen: "127.0.0.1:0", Accounts: 12, Speed: 20000, For: 25 * time.Hour, Traffic: true, Quiet: true, Seed: 1, stepped: true,
		Store: filepath.Join(t.TempDir(), "history.db"),
	}
	o.atEnd = func(addr string) {
		checked = true
		base := "http://" + addr
		var list struct {
			Accounts []view.Account `json:"accounts"`
		}
		fixture.GetJSON(t, base+"/api/v1/accounts", &list)
		if len(list.Accounts) != 12 {
			t.Errorf("API lists %d accounts, want 12", len(list.Accounts))
		}
		samples := fixture.Scrape(t, base+"/metrics")
		for _, a := range list.Accounts {
			if v, ok := samples[[3]string{"tgsafety_account_state", a.Name, a.State.String()}]; !ok || v != 1 {
				t.Errorf("%s: API says %s, metrics have %v (present %v)", a.Name, a.State, v, ok)
			}
			if v, ok := samples[[3]string{"tgsafety_account_risk_score", a.Name, ""}]; !ok || v != a.Risk {
				t.Errorf("%s: API risk %v, metrics %v (present %v)", a.Name, a.Risk, v, ok)
			}
			var evs struct {
				Events []monitor.Event `json:"events"`
			}
			fixture.GetJSON(t, base+"/api/v1/accounts/"+a.Name+"/events?since=2000-01-01T00:00:00Z&limit=1000", &evs)
			visited[a.Name] = map[monitor.State]bool{}
			for _, e := range evs.Events {
				if e.Type != monitor.EventState {
					continue
				}
				visited[a.Name][e.State] = true
				if _, ok := connected[a.Name]; !ok {
					connected[a.Name] = e.Time
				} else if _, ok := first[a.Name]; !ok {
					first[a.Name] = e
				}
			}
		}
		// The status page renders the whole fleet.
		resp, err := http.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "demo-12-spammer") {
			t.Errorf("status page: %s", resp.Status)
		}
	}
	if err := Run(context.Background(), o, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("the demo ended before --for")
	}
	all := map[monitor.State]bool{}
	for _, v := range visited {
		for st := range v {
			all[st] = true
		}
	}
	for _, st := range []monitor.State{monitor.OK, monitor.Watch, monitor.Throttled, monitor.Limited, monitor.Frozen, monitor.Banned, monitor.Dead} {
		if !all[st] {
			t.Errorf("no demo account reached %s; visited: %v", st, visited)
		}
	}
	// The behaviours that promise an outcome deliver it.
	for name, want := range map[string]monitor.State{
		"demo-04-banned": monitor.Banned, "demo-06-frozen": monitor.Frozen, "demo-11-revoked": monitor.Dead,
		"demo-02-cold-dms": monitor.Limited, "demo-03-resolver": monitor.Throttled,
	} {
		if !visited[name][want] {
			t.Errorf("%s never %s: %v", name, want, visited[name])
		}
	}
	// What the legend promises for the server-side events: the account is
	// fine until Telegram acts, then in the promised state at once.
	for _, b := range behaviours() {
		if b.Server == nil {
			continue
		}
		var name string
		for n := range visited {
			if strings.HasSuffix(n, "-"+b.Name) {
				name = n
			}
		}
		e, ok := first[name]
		if !ok {
			t.Errorf("%s: no state change after connecting", name)
			continue
		}
		if at := e.Time.Sub(connected[name]); at < b.Server.At {
			t.Errorf("%s: %s -> %s after %v, before the server event at %v (%q): the legend says otherwise", name, e.From, e.State, at, b.Server.At, b.What)
		}
	}
	for _, name := range []string{"demo-01-careful", "demo-05-idle", "demo-07-steady"} {
		for st := range visited[name] {
			if st != monitor.OK {
				t.Errorf("%s (a careful account) reached %s", name, st)
			}
		}
	}
}

// The live demo's clock follows the wall clock: a tick that ran long is
// made up by the ticks after it, a few steps at a time, and a machine too
// slow to keep up is forgiven its debt rather than chased for ever.
func TestScheduleMakesUpForLongTicks(t *testing.T) {
	wall0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	virt0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := schedule{wall: wall0, virt: virt0, speed: 500}
	step := 10 * time.Second // one 20 ms tick at 500x
	at := func(ms int) time.Time { return wall0.Add(time.Duration(ms) * time.Millisecond) }

	// On time: one step per tick.
	if got := s.limit(virt0, at(20)).Sub(virt0); got != step {
		t.Fatalf("first tick moves %v, want %v", got, step)
	}
	// A tick's work took 200 ms: the clock stands at +10 s at wall +220 ms,
	// 100 s behind; the next ticks move 5 steps each until caught up.
	now := virt0.Add(step)
	var moves []time.Duration
	for ms := 240; ms <= 400; ms += 20 {
		limit := s.limit(now, at(ms))
		moves = append(moves, limit.Sub(now))
		now = limit
	}
	want := []time.Duration{50 * time.Second, 50 * time.Second, 30 * time.Second, 10 * time.Second}
	for i, w := range want {
		if moves[i] != w {
			t.Fatalf("ticks after a long one moved %v, want %v first", moves, want)
		}
	}
	if d := now.Sub(virt0); d != 200*time.Second {
		t.Fatalf("at wall +400 ms the clock is at +%v, want +200s (500x)", d)
	}
	// Ahead of the wall clock (a tick came early): no move.
	if got := s.limit(now, at(399)); !got.Equal(now) {
		t.Fatalf("a tick ahead of schedule moved the clock to %v", got.Sub(virt0))
	}
	// 20 s of real time behind (more than maxDebt): forgiven, one step,
	// and the schedule restarts from here.
	if got := s.limit(now, at(20400)).Sub(now); got != step {
		t.Fatalf("far behind: moved %v, want one step", got)
	}
	if got := s.limit(now.Add(step), at(20420)).Sub(now.Add(step)); got != step {
		t.Fatalf("after forgiving: moved %v, want one step", got)
	}
}
