package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
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
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

var tlFrom = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const tlDay = 24 * time.Hour

// The page writes durations in their two largest units
// (limits.FormatDuration, tested there), relative to now.
func TestStatusWhen(t *testing.T) {
	now := tlFrom
	if got := statusWhen(now, now.Add(-3*time.Hour)); got.Rel != "3h ago" || got.Abs != "2026-02-28 21:00:00 UTC" {
		t.Errorf("past: %+v", got)
	}
	if got := statusWhen(now, now.Add(90*time.Second)); got.Rel != "in 1m30s" {
		t.Errorf("future: %+v", got)
	}
	if got := statusWhen(now, time.Time{}); got != (statusTime{}) {
		t.Errorf("zero: %+v", got)
	}
}

// Pages, on a real monitor, clock and SQLite store (the API's fixture).

type statusResult struct {
	code   int
	header http.Header
	body   string
}

func newStatusFor(f *fixture.World, mutate func(*statusDeps)) *statusPage {
	d := statusDeps{Monitor: f.Monitor, Store: f.Store, Now: f.Clock.Now, Version: "test-version"}
	if mutate != nil {
		mutate(&d)
	}
	return newStatusPage(d).(*statusPage)
}

func statusDo(t *testing.T, h http.Handler, method, path string) statusResult {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := statusResult{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
	if ct := res.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("%s %s: CSP %q", method, path, csp)
	}
	if method != http.MethodHead {
		checkWellFormed(t, res.body)
	}
	return res
}

func statusGet(t *testing.T, h http.Handler, path string, code int) *html.Node {
	t.Helper()
	res := statusDo(t, h, http.MethodGet, path)
	if res.code != code {
		t.Fatalf("GET %s: status %d, want %d; body %s", path, res.code, code, res.body)
	}
	doc, err := html.Parse(strings.NewReader(res.body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// htmlVoid are the elements that have no end tag.
var htmlVoid = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true,
	"img": true, "input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}

// checkWellFormed checks that every element the page opens is closed, in
// order, and that it has no script and no external reference: html.Parse
// alone would repair a broken page silently.
func checkWellFormed(t *testing.T, body string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(body))
	var stack []string
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("tokenize: %v", z.Err())
			}
			if len(stack) != 0 {
				t.Fatalf("unclosed elements %v", stack)
			}
			return
		case html.StartTagToken:
			tok := z.Token()
			if tok.Data == "script" || tok.Data == "iframe" || tok.Data == "object" {
				t.Fatalf("page has a <%s>", tok.Data)
			}
			for _, a := range tok.Attr {
				if strings.HasPrefix(a.Key, "on") || (a.Key == "src" || a.Key == "href") && strings.Contains(a.Val, "//") && !(a.Key == "href" && strings.HasPrefix(a.Val, dashboards.RunbookURL+"#")) {
					t.Fatalf("<%s %s=%q>", tok.Data, a.Key, a.Val)
				}
			}
			if !htmlVoid[tok.Data] {
				stack = append(stack, tok.Data)
			}
		case html.EndTagToken:
			tok := z.Token()
			if len(stack) == 0 || stack[len(stack)-1] != tok.Data {
				t.Fatalf("</%s> closes %v", tok.Data, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func byAttr(key string) func(*html.Node) bool {
	return func(n *html.Node) bool { return attr(n, key) != "" }
}

func byID(id string) func(*html.Node) bool {
	return func(n *html.Node) bool { return attr(n, "id") == id }
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

func lookupAccount(t *testing.T, f *fixture.World, name string) *monitor.Account {
	t.Helper()
	a, err := f.Monitor.Account(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestStatusFleet(t *testing.T) {
	f := fixture.NewWorld(t) // alpha, bravo, charlie
	alpha := lookupAccount(t, f, "alpha")
	alpha.ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(400, "PEER_FLOOD"))
	alpha.ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(400, "PEER_FLOOD"))
	lookupAccount(t, f, "bravo").ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(420, "FLOOD_WAIT_30"))
	lookupAccount(t, f, "delta").ObserveSpamBot(fixture.Epoch, spambot.Result{State: spambot.Free})
	lookupAccount(t, f, "echo").ObserveSignal(fixture.Epoch, "users.getUsers", fixture.Classify(401, "USER_DEACTIVATED_BAN"))
	lookupAccount(t, f, "foxtrot").ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(400, "PEER_FLOOD"))
	f.Clock.Advance(10 * time.Second)
	p := newStatusFor(f, nil)

	doc := statusGet(t, p, "/", http.StatusOK)
	rows := findAll(doc, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-account") != "" })
	var order []string
	for _, r := range rows {
		name := attr(r, "data-account")
		order = append(order, name)
		s := lookupAccount(t, f, name).Snapshot()
		if got := attr(r, "data-state"); got != s.State.String() {
			t.Errorf("%s: row says %s, snapshot %s", name, got, s.State)
		}
		if risk := findAll(r, byAttr("data-risk")); len(risk) != 1 || attr(risk[0], "data-risk") != strconv.FormatFloat(s.Risk, 'f', 1, 64) {
			t.Errorf("%s: risk cell does not show %v", name, s.Risk)
		}
		// The account's page, and for a state that asks something of
		// the operator the runbook section behind the next step.
		links := findAll(r, func(n *html.Node) bool { return n.Data == "a" })
		if len(links) == 0 || attr(links[0], "href") != "./accounts/"+name {
			t.Errorf("%s: links %v", name, links)
		}
		next, hasNext := dashboards.NextStepFor(s.State, name)
		if hasNext && (len(links) != 2 || attr(links[1], "href") != next.Runbook() || !strings.Contains(statusDo(t, p, http.MethodGet, "/").body, template.HTMLEscapeString(next.Text))) {
			t.Errorf("%s (%s): no next step %q with link %s", name, s.State, next.Text, next.Runbook())
		}
		if !hasNext && len(links) != 1 {
			t.Errorf("%s (%s): links %v", name, s.State, links)
		}
	}
	// Severity, then risk (alpha has two PEER_FLOODs, foxtrot one), then
	// name; unknown ranks above ok.
	if want := []string{"echo", "alpha", "foxtrot", "bravo", "charlie", "delta"}; !slices.Equal(order, want) {
		t.Fatalf("rows %v, want %v", order, want)
	}
	counts := map[string]string{}
	for _, n := range findAll(doc, byAttr("data-count")) {
		counts[attr(n, "data-state")] = attr(n, "data-count")
	}
	want := map[string]string{"banned": "1", "dead": "0", "frozen": "0", "limited": "2", "throttled": "1", "watch": "0", "unknown": "1", "ok": "1", "all": "6"}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	body := statusDo(t, p, http.MethodGet, "/").body
	for _, s := range []string{"FLOOD_WAIT (30s) on messages.sendMessage", "free", "USER_DEACTIVATED_BAN on users.getUsers", "test-version", `http-equiv="refresh"`} {
		if !strings.Contains(body, s) {
			t.Errorf("fleet page lacks %q", s)
		}
	}

	// The state filter.
	doc = statusGet(t, p, "/?state=limited", http.StatusOK)
	order = nil
	for _, r := range findAll(doc, byAttr("data-account")) {
		order = append(order, attr(r, "data-account"))
	}
	if !slices.Equal(order, []string{"alpha", "foxtrot"}) {
		t.Errorf("?state=limited shows %v", order)
	}
	statusGet(t, p, "/?state=nope", http.StatusBadRequest)
	// A row's link leads to its account page.
	statusGet(t, p, "/accounts/echo", http.StatusOK)
}

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
	p := newStatusFor(f, nil)
	doc := statusGet(t, p, "/accounts/alpha", http.StatusOK)
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
	body := statusDo(t, p, http.MethodGet, "/accounts/alpha").body
	for _, want := range []string{"PEER_FLOOD on messages.sendMessage", "(assumed: PEER_FLOOD does not say)", ">UTC</text>", "history from store"} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}

	// A shorter window starts after the unknown spell; the last hour is
	// all limited.
	doc = statusGet(t, p, "/accounts/alpha?window=6h", http.StatusOK)
	if got, want := svgStates(t, doc), []string{"ok", "throttled", "ok", "limited"}; !slices.Equal(got, want) {
		t.Errorf("6h band %v, want %v", got, want)
	}
	doc = statusGet(t, p, "/accounts/alpha?window=1h", http.StatusOK)
	if got, want := svgStates(t, doc), []string{"limited"}; !slices.Equal(got, want) {
		t.Errorf("1h band %v, want %v", got, want)
	}
	statusGet(t, p, "/accounts/alpha?window=5y", http.StatusBadRequest)

	// An account with no history is one segment in its current state.
	doc = statusGet(t, p, "/accounts/charlie", http.StatusOK)
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

	doc := statusGet(t, newStatusFor(f, nil), "/accounts/alpha", http.StatusOK)
	// Before its first signal alpha was not monitored: no band there.
	if got, want := svgStates(t, doc), []string{"throttled", "ok"}; !slices.Equal(got, want) {
		t.Errorf("with the store: band %v, want %v", got, want)
	}
	doc = statusGet(t, newStatusFor(f, func(d *statusDeps) { d.Store = nil }), "/accounts/alpha", http.StatusOK)
	if got, want := svgStates(t, doc), []string{"ok"}; !slices.Equal(got, want) {
		t.Errorf("from memory: band %v, want %v", got, want)
	}

	// A store query cut by its limit, followed by a ring that starts
	// later: the span between is shaded, not drawn as quiet.
	p := newStatusFor(f, nil)
	p.historyLimit = 5
	res := statusDo(t, p, http.MethodGet, "/accounts/alpha")
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
	p := newStatusFor(f, func(d *statusDeps) { d.Store = empty })
	doc := statusGet(t, p, "/accounts/alpha", http.StatusOK)
	if got := svgStates(t, doc); !slices.Equal(got, []string{"limited"}) {
		t.Errorf("band %v", got)
	}
	if rows := findAll(doc, byAttr("data-type")); len(rows) != len(alpha.Events()) {
		t.Errorf("%d event rows, want the ring's %d", len(rows), len(alpha.Events()))
	}
}

// failingStore is a store whose history cannot be read.
type failingStore struct{ store.Store }

func (failingStore) Events(context.Context, string, time.Time, int) ([]monitor.Event, error) {
	return nil, errors.New("disk on fire")
}

func TestStatusStoreErrorDegrades(t *testing.T) {
	f := fixture.NewWorld(t)
	alpha := lookupAccount(t, f, "alpha")
	alpha.ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(400, "PEER_FLOOD"))
	f.Clock.Advance(time.Hour)
	p := newStatusFor(f, func(d *statusDeps) { d.Store = failingStore{f.Store} })
	doc := statusGet(t, p, "/accounts/alpha", http.StatusOK)
	if got := svgStates(t, doc); !slices.Equal(got, []string{"limited"}) {
		t.Errorf("band %v", got)
	}
	if !strings.Contains(text(doc), "disk on fire") {
		t.Error("the store error is not shown")
	}
}

func TestStatusEscaping(t *testing.T) {
	f := fixture.NewWorld(t)
	const hostileMethod = `<script>alert("m")</script>`
	lookupAccount(t, f, "alpha").ObserveSignal(fixture.Epoch, hostileMethod, fixture.Classify(400, "PEER_FLOOD"))
	lookupAccount(t, f, "bravo").ObserveFreeze(fixture.Epoch, monitor.FreezeStatus{Known: true, Frozen: true,
		Since: fixture.Epoch, DeletionDate: fixture.Epoch.Add(14 * tlDay), AppealURL: `javascript:alert("a")`})
	lookupAccount(t, f, "charlie").ObserveSpamBot(fixture.Epoch, spambot.Result{State: spambot.Unknown, Reason: `<img src=x onerror=alert(1)>" '`})
	p := newStatusFor(f, nil)

	for _, path := range []string{"/", "/accounts/alpha", "/accounts/bravo", "/accounts/charlie", "/accounts/%3Cscript%3E", "/%3Cb%3Ex"} {
		res := statusDo(t, p, http.MethodGet, path) // checks no <script>, no on* attribute
		for _, bad := range []string{"<script", "<img", "javascript:"} {
			if strings.Contains(res.body, bad) {
				t.Errorf("%s: %q unescaped", path, bad)
			}
		}
	}
	if body := statusDo(t, p, http.MethodGet, "/").body; !strings.Contains(body, "on &lt;script&gt;alert(&#34;m&#34;)&lt;/script&gt;") {
		t.Errorf("fleet page does not show the hostile method escaped:\n%s", body)
	}
	if body := statusDo(t, p, http.MethodGet, "/accounts/charlie").body; !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;&#34; &#39;") {
		t.Errorf("SpamBot reason not shown escaped:\n%s", body)
	}
	doc := statusGet(t, p, "/accounts/bravo", http.StatusOK)
	links := findAll(doc, func(n *html.Node) bool { return n.Data == "a" && text(n) == "appeal" })
	if len(links) != 1 || attr(links[0], "href") != "#ZgotmplZ" {
		t.Errorf("appeal link %v not neutralised", links)
	}
}

func TestStatusErrors(t *testing.T) {
	f := fixture.NewWorld(t)
	p := newStatusFor(f, nil)
	doc := statusGet(t, p, "/accounts/zulu", http.StatusNotFound)
	if !strings.Contains(text(doc), `No account "zulu"`) {
		t.Errorf("404 does not name the account: %s", text(doc))
	}
	res := statusDo(t, p, http.MethodGet, "/accounts/%2B79161234567")
	if res.code != http.StatusNotFound || strings.Contains(res.body, "9161234567") {
		t.Errorf("phone-like name: %d, echoed: %v", res.code, strings.Contains(res.body, "9161234567"))
	}
	// The 404 page links back to the fleet relative to where it is.
	for path, back := range map[string]string{"/nope": "./", "/accounts/": "../", "/accounts/alpha/": "../../", "/accounts/alpha/events": "../../", "/index.html": "./"} {
		doc := statusGet(t, p, path, http.StatusNotFound)
		links := findAll(doc, func(n *html.Node) bool { return n.Data == "a" && text(n) == "Back to the fleet" })
		if len(links) != 1 || attr(links[0], "href") != back {
			t.Errorf("%s: back link %v, want %q", path, links, back)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, path := range []string{"/", "/accounts/alpha", "/nope"} {
			res := statusDo(t, p, m, path)
			if res.code != http.StatusMethodNotAllowed || res.header.Get("Allow") != "GET, HEAD" || !strings.Contains(res.body, "Method not allowed") {
				t.Errorf("%s %s: %d Allow %q", m, path, res.code, res.header.Get("Allow"))
			}
		}
	}
	for _, path := range []string{"/", "/accounts/alpha"} {
		if res := statusDo(t, p, http.MethodHead, path); res.code != http.StatusOK {
			t.Errorf("HEAD %s: %d", path, res.code)
		}
	}
}

func TestStatusNeedsClock(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic without Now")
		}
	}()
	newStatusPage(statusDeps{Monitor: fixture.NewWorld(t).Monitor})
}

// manyAccounts adds n accounts to mon, a tenth of them limited and a
// tenth throttled.
func manyAccounts(tb testing.TB, mon *monitor.Monitor, n int) {
	for i := range n {
		a, err := mon.Account(fmt.Sprintf("acct-%04d", i))
		if err != nil {
			tb.Fatal(err)
		}
		switch i % 10 {
		case 0:
			a.ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(400, "PEER_FLOOD"))
		case 1:
			a.ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(420, "FLOOD_WAIT_600"))
		default:
			a.ObserveSpamBot(fixture.Epoch, spambot.Result{State: spambot.Free})
		}
	}
}

func TestStatusFleetThousand(t *testing.T) {
	f := fixture.NewWorld(t)
	manyAccounts(t, f.Monitor, 1000)
	p := newStatusFor(f, nil)
	doc := statusGet(t, p, "/", http.StatusOK)
	rows := findAll(doc, byAttr("data-account"))
	if len(rows) != 1003 || attr(rows[0], "data-state") != "limited" {
		t.Fatalf("%d rows, first %s", len(rows), attr(rows[0], "data-state"))
	}
	counts := map[string]string{}
	for _, n := range findAll(doc, byAttr("data-count")) {
		counts[attr(n, "data-state")] = attr(n, "data-count")
	}
	if counts["limited"] != "100" || counts["throttled"] != "100" || counts["ok"] != "800" || counts["unknown"] != "3" {
		t.Errorf("counts %v", counts)
	}
}

// BenchmarkStatusFleet renders the fleet page of 1,000 accounts.
func BenchmarkStatusFleet(b *testing.B) {
	clk := vclock.New(fixture.Epoch)
	mon, err := monitor.New(monitor.Options{Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	manyAccounts(b, mon, 1000)
	clk.Advance(time.Minute)
	p := newStatusPage(statusDeps{Monitor: mon, Now: clk.Now})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
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
	p := newStatusFor(f, nil)
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
		doc := statusGet(t, p, "/accounts/"+name, http.StatusOK)
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
	doc := statusGet(t, p, "/accounts/next-frozen", http.StatusOK)
	if body := text(doc); !strings.Contains(body, "deletion") {
		t.Errorf("frozen account page does not label the deletion date: %s", body)
	}
	row := statusGet(t, p, "/?state=frozen", http.StatusOK)
	if !strings.Contains(text(row), "deletion") {
		t.Error("fleet row of a frozen account does not label the deletion date")
	}
	lookupAccount(t, f, "next-limited").ObserveSpamBot(now, spambot.Result{State: spambot.LimitedTemporary, Until: now.Add(48 * time.Hour)})
	limited := statusGet(t, p, "/accounts/next-limited", http.StatusOK)
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
	p := newStatusFor(f, nil)
	doc := statusGet(t, p, "/accounts/alpha", http.StatusOK)
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
	doc = statusGet(t, p, "/accounts/alpha?type=state", http.StatusOK)
	for _, r := range findAll(doc, byAttr("data-type")) {
		if attr(r, "data-type") != "state" {
			t.Errorf("?type=state shows a %s row", attr(r, "data-type"))
		}
	}
	statusGet(t, p, "/accounts/alpha?type=bogus", http.StatusBadRequest)
}
