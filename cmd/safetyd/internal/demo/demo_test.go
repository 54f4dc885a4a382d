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
