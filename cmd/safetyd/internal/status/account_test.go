package status

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/dashboards"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// svgStates returns the states of the timeline's band, left to right.
func svgStates(t *testing.T, doc *html.Node) []string {
	t.Helper()
	svgs := findAll(doc, byID("timeline"))
	if len(svgs) != 1 || svgs[0].Data != "svg" {
		t.Fatalf("no <svg id=timeline>: %v", svgs)
	}
	var out []string
	for _, r := range findAll(svgs[0], func(n *html.Node) bool { return n.Data == "rect" && attr(n, "data-state") != "" }) {
		out = append(out, attr(r, "data-state"))
	}
	return out
}

func TestStatusAccountTimeline(t *testing.T) {
	f := fixture.NewWorld(t)
	alpha := lookupAccount(t, f, "alpha")
	alpha.ObserveSpamBot(fixture.Epoch, spambot.Result{State: spambot.Free}) // unknown -> ok
	f.Clock.Advance(time.Hour)
	alpha.ObserveSignal(f.Clock.Now(), "messages.sendMessage", fixture.Classify(420, "FLOOD_WAIT_60")) // -> throttled
	f.Clock.Advance(2 * time.Minute)
	alpha.Refresh() // -> ok at +1h01m
	f.Clock.Advance(2 * time.Hour)
	alpha.ObserveSignal(f.Clock.Now(), "messages.sendMessage", fixture.Classify(400, "PEER_FLOOD")) // -> limited
	f.Clock.Advance(3 * time.Hour)
	// Everything the monitor recorded is in the store.
	if err := f.Writer.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := newPageFor(f, nil)
	doc := getPage(t, p, "/accounts/alpha", http.StatusOK)
	// The band starts when alpha was first seen (unknown -> ok), not
	// with an "unknown" spell before it.
	if got, want := svgStates(t, doc), []string{"ok", "throttled", "ok", "limited"}; !slices.Equal(got, want) {
		t.Errorf("band %v, want %v", got, want)
	}
	s := alpha.Snapshot()
	if st := findAll(doc, byID("state")); len(st) != 1 || text(st[0]) != "limited" {
		t.Errorf("state %v", st)
	}
	if r := findAll(doc, byID("risk")); len(r) != 1 || text(r[0]) != strconv.FormatFloat(s.Risk, 'f', 1, 64) {
		t.Errorf("risk does not show %v", s.Risk)
	}
	lines := findAll(doc, func(n *html.Node) bool { return n.Data == "polyline" })
	if len(lines) != 1 || len(strings.Fields(attr(lines[0], "points"))) < 3 {
		t.Errorf("risk line %v", lines)
	}
	evs := alpha.Events()
	rows := findAll(doc, byAttr("data-type"))
	if len(rows) != len(evs) || attr(rows[0], "data-type") != evs[len(evs)-1].Type.String() {
		t.Errorf("%d event rows, %d events; newest first", len(rows), len(evs))
	}
	body := doRequest(t, p, http.MethodGet, "/accounts/alpha").body
	for _, want := range []string{"PEER_FLOOD on messages.sendMessage", "(assumed: PEER_FLOOD does not say)", ">UTC</text>", "history from store"} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}

	// A shorter window starts after the unknown spell; the last hour is
	// all limited.
	doc = getPage(t, p, "/accounts/alpha?window=6h", http.StatusOK)
	if got, want := svgStates(t, doc), []string{"ok", "throttled", "ok", "limited"}; !slices.Equal(got, want) {
		t.Errorf("6h band %v, want %v", got, want)
	}
	doc = getPage(t, p, "/accounts/alpha?window=1h", http.StatusOK)
	if got, want := svgStates(t, doc), []string{"limited"}; !slices.Equal(got, want) {
		t.Errorf("1h band %v, want %v", got, want)
	}
	getPage(t, p, "/accounts/alpha?window=5y", http.StatusBadRequest)

	// An account with no history is one segment in its current state.
	doc = getPage(t, p, "/accounts/charlie", http.StatusOK)
	if got := svgStates(t, doc); !slices.Equal(got, []string{"unknown"}) {
		t.Errorf("charlie band %v", got)
	}
}

// TestStatusHistoryFromStore shows the page reads the store: the ring (256
// events) no longer holds the throttled spell, the store does.
func TestStatusHistoryFromStore(t *testing.T) {
	f := fixture.NewWorld(t)
	alpha := lookupAccount(t, f, "alpha")
	alpha.ObserveSignal(f.Clock.Now(), "messages.sendMessage", fixture.Classify(420, "FLOOD_WAIT_60"))
	f.Clock.Advance(2 * time.Minute)
	alpha.Refresh()
	for range 300 {
		f.Clock.Advance(10 * time.Second)
		alpha.ObserveSignal(f.Clock.Now(), "messages.getHistory", fixture.Classify(500, "RPC_CALL_FAIL")) // transient: no state change
	}
	if err := f.Writer.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if evs := alpha.Events(); evs[0].Type != monitor.EventSignal || evs[0].Signal.Kind != signal.Transient {
		t.Fatalf("the ring still holds the start: %+v", evs[0])
	}

	doc := getPage(t, newPageFor(f, nil), "/accounts/alpha", http.StatusOK)
	// Before its first signal alpha was not monitored: no band there.
	if got, want := svgStates(t, doc), []string{"throttled", "ok"}; !slices.Equal(got, want) {
		t.Errorf("with the store: band %v, want %v", got, want)
	}
	doc = getPage(t, newPageFor(f, func(d *Deps) { d.Store = nil }), "/accounts/alpha", http.StatusOK)
	if got, want := svgStates(t, doc), []string{"ok"}; !slices.Equal(got, want) {
		t.Errorf("from memory: band %v, want %v", got, want)
	}

	// A store query cut by its limit, followed by a ring that starts
	// later: the span between is shaded, not drawn as quiet.
	p := newPageFor(f, nil)
	p.historyLimit = 5
	res := doRequest(t, p, http.MethodGet, "/accounts/alpha")
	if res.code != http.StatusOK || !strings.Contains(res.body, `class="missing"`) || !strings.Contains(res.body, "the window&#39;s first 5 events") {
		t.Errorf("truncated history not marked: %d %s", res.code, res.body)
	}
	h := p.history(context.Background(), alpha, fixture.Epoch.Add(-time.Hour))
	if ring := alpha.Events(); !h.MissingFrom.Before(h.MissingTo) || !h.MissingTo.Equal(ring[0].Time) || h.InWindow != 5+len(ring) {
		t.Errorf("history %+v", h)
	}
}

// TestStatusHistoryCompletedFromRing shows events the writer has not
// stored yet still reach the page: here the store holds none of them.
func TestStatusHistoryCompletedFromRing(t *testing.T) {
	f := fixture.NewWorld(t)
	empty, err := store.OpenSQLite(filepath.Join(t.TempDir(), "empty.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = empty.Close() })
	alpha := lookupAccount(t, f, "alpha")
	alpha.ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(400, "PEER_FLOOD"))
	f.Clock.Advance(time.Hour)
	p := newPageFor(f, func(d *Deps) { d.Store = empty })
	doc := getPage(t, p, "/accounts/alpha", http.StatusOK)
	if got := svgStates(t, doc); !slices.Equal(got, []string{"limited"}) {
		t.Errorf("band %v", got)
	}
	if rows := findAll(doc, byAttr("data-type")); len(rows) != len(alpha.Events()) {
		t.Errorf("%d event rows, want the ring's %d", len(rows), len(alpha.Events()))
	}
}

// failingStore is a store whose history cannot be read.
type failingStore struct{ store.Store }

func TestStatusStoreErrorDegrades(t *testing.T) {
	f := fixture.NewWorld(t)
	alpha := lookupAccount(t, f, "alpha")
	alpha.ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(400, "PEER_FLOOD"))
	f.Clock.Advance(time.Hour)
	p := newPageFor(f, func(d *Deps) { d.Store = failingStore{f.Store} })
	doc := getPage(t, p, "/accounts/alpha", http.StatusOK)
	if got := svgStates(t, doc); !slices.Equal(got, []string{"limited"}) {
		t.Errorf("band %v", got)
	}
	if !strings.Contains(text(doc), "disk on fire") {
		t.Error("the store error is not shown")
	}
}

// Every state that asks something of the operator says what to do now on
// the account page, with a link to the runbook section; ok says nothing.
// Frozen's "until" is labelled as the deletion date; a lost account shows
// no risk bar; reasons show dates as people read them.
func TestStatusAccountNextStepForEveryState(t *testing.T) {
	f := fixture.NewWorld(t)
	now := f.Clock.Now()
	signals := map[monitor.State]signal.Signal{
		monitor.Banned:    fixture.Classify(401, "USER_DEACTIVATED_BAN"),
		monitor.Dead:      fixture.Classify(401, "SESSION_REVOKED"),
		monitor.Frozen:    fixture.Classify(420, "FROZEN_METHOD_INVALID"),
		monitor.Limited:   fixture.Classify(400, "PEER_FLOOD"),
		monitor.Throttled: fixture.Classify(420, "FLOOD_WAIT_60"),
		monitor.Watch:     {Kind: signal.LoginFlood, Code: 420, Type: "PHONE_PASSWORD_FLOOD"},
	}
	p := newPageFor(f, nil)
	for _, st := range monitor.States() {
		name := "next-" + st.String()
		acct, err := f.Monitor.Account(name)
		if err != nil {
			t.Fatal(err)
		}
		switch st {
		case monitor.OK:
			acct.ObserveSpamBot(now, spambot.Result{State: spambot.Free})
		case monitor.Unknown:
		default:
			acct.ObserveSignal(now, "messages.sendMessage", signals[st])
		}
		if got := acct.Snapshot().State; got != st {
			t.Fatalf("%s: set-up reached %s", name, got)
		}
		doc := getPage(t, p, "/accounts/"+name, http.StatusOK)
		next := findAll(doc, byID("next"))
		want, ok := dashboards.NextStepFor(st, name)
		if !ok {
			if len(next) != 0 {
				t.Errorf("%s: an ok account has a next step: %s", name, text(next[0]))
			}
			continue
		}
		if len(next) != 1 || !strings.Contains(text(next[0]), want.Text) {
			t.Errorf("%s: next step %v, want %q", name, next, want.Text)
			continue
		}
		links := findAll(next[0], func(n *html.Node) bool { return n.Data == "a" })
		if len(links) != 1 || attr(links[0], "href") != want.Runbook() {
			t.Errorf("%s: runbook link %v, want %s", name, links, want.Runbook())
		}
		body := text(doc)
		if (st == monitor.Banned || st == monitor.Dead) != strings.Contains(body, "account lost") {
			t.Errorf("%s: risk shown as lost? %v", name, strings.Contains(body, "account lost"))
		}
	}
	frozen := lookupAccount(t, f, "next-frozen")
	frozen.ObserveFreeze(now, monitor.FreezeStatus{Known: true, Frozen: true, Since: now, DeletionDate: now.Add(13 * 24 * time.Hour)})
	doc := getPage(t, p, "/accounts/next-frozen", http.StatusOK)
	if body := text(doc); !strings.Contains(body, "deletion") {
		t.Errorf("frozen account page does not label the deletion date: %s", body)
	}
	row := getPage(t, p, "/?state=frozen", http.StatusOK)
	if !strings.Contains(text(row), "deletion") {
		t.Error("fleet row of a frozen account does not label the deletion date")
	}
	lookupAccount(t, f, "next-limited").ObserveSpamBot(now, spambot.Result{State: spambot.LimitedTemporary, Until: now.Add(48 * time.Hour)})
	limited := getPage(t, p, "/accounts/next-limited", http.StatusOK)
	if body := text(limited); strings.Contains(body, "limited_temporary") || rfc3339InText.MatchString(body) {
		t.Errorf("limited account page shows raw labels or RFC 3339 dates: %s", body)
	}
	if rfc3339InText.MatchString(text(doc)) {
		t.Errorf("page shows RFC 3339 dates: %s", rfc3339InText.FindString(text(doc)))
	}
}

// Repeated look-alike events are one row with a count, and ?type= shows
// one kind of event only.
func TestStatusEventsGroupedAndFiltered(t *testing.T) {
	f := fixture.NewWorld(t)
	alpha := lookupAccount(t, f, "alpha")
	alpha.ObserveSignal(f.Clock.Now(), "channels.joinChannel", fixture.Classify(420, "FROZEN_METHOD_INVALID"))
	for range 30 {
		f.Clock.Advance(5 * time.Minute)
		alpha.ObserveSignal(f.Clock.Now(), "channels.joinChannel", fixture.Classify(420, "FROZEN_METHOD_INVALID"))
	}
	p := newPageFor(f, nil)
	doc := getPage(t, p, "/accounts/alpha", http.StatusOK)
	rows := findAll(doc, byAttr("data-type"))
	// The first signal froze the account (unknown -> frozen); the 30
	// after it are alike.
	var counts []int
	for _, r := range rows {
		if attr(r, "data-type") == "signal" {
			n, _ := strconv.Atoi(attr(r, "data-count"))
			counts = append(counts, n)
		}
	}
	if !slices.Equal(counts, []int{30, 1}) {
		t.Errorf("signal rows of %v events, want [30 1]", counts)
	}
	doc = getPage(t, p, "/accounts/alpha?type=state", http.StatusOK)
	for _, r := range findAll(doc, byAttr("data-type")) {
		if attr(r, "data-type") != "state" {
			t.Errorf("?type=state shows a %s row", attr(r, "data-type"))
		}
	}
	getPage(t, p, "/accounts/alpha?type=bogus", http.StatusBadRequest)
}
