package status

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/dashboards"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

var tlFrom = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const tlDay = 24 * time.Hour

// The page writes durations in their two largest units
// (limits.FormatDuration, tested there), relative to now.
func TestStatusWhen(t *testing.T) {
	now := tlFrom
	if got := whenOf(now, now.Add(-3*time.Hour)); got.Rel != "3h ago" || got.Abs != "2026-02-28 21:00:00 UTC" {
		t.Errorf("past: %+v", got)
	}
	if got := whenOf(now, now.Add(90*time.Second)); got.Rel != "in 1m30s" {
		t.Errorf("future: %+v", got)
	}
	if got := whenOf(now, time.Time{}); got != (timeText{}) {
		t.Errorf("zero: %+v", got)
	}
}

// Pages, on a real monitor, clock and SQLite store (the API's fixture).

type result struct {
	code   int
	header http.Header
	body   string
}

func newPageFor(f *fixture.World, mutate func(*Deps)) *page {
	d := Deps{Monitor: f.Monitor, Store: f.Store, Now: f.Clock.Now, Version: "test-version"}
	if mutate != nil {
		mutate(&d)
	}
	return New(d).(*page)
}

func doRequest(t *testing.T, h http.Handler, method, path string) result {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := result{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
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

func getPage(t *testing.T, h http.Handler, path string, code int) *html.Node {
	t.Helper()
	res := doRequest(t, h, http.MethodGet, path)
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
	p := newPageFor(f, nil)

	doc := getPage(t, p, "/", http.StatusOK)
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
		if hasNext && (len(links) != 2 || attr(links[1], "href") != next.Runbook() || !strings.Contains(doRequest(t, p, http.MethodGet, "/").body, template.HTMLEscapeString(next.Text))) {
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
	body := doRequest(t, p, http.MethodGet, "/").body
	for _, s := range []string{"FLOOD_WAIT (30s) on messages.sendMessage", "free", "USER_DEACTIVATED_BAN on users.getUsers", "test-version", `http-equiv="refresh"`} {
		if !strings.Contains(body, s) {
			t.Errorf("fleet page lacks %q", s)
		}
	}

	// The state filter.
	doc = getPage(t, p, "/?state=limited", http.StatusOK)
	order = nil
	for _, r := range findAll(doc, byAttr("data-account")) {
		order = append(order, attr(r, "data-account"))
	}
	if !slices.Equal(order, []string{"alpha", "foxtrot"}) {
		t.Errorf("?state=limited shows %v", order)
	}
	getPage(t, p, "/?state=nope", http.StatusBadRequest)
	// A row's link leads to its account page.
	getPage(t, p, "/accounts/echo", http.StatusOK)
}

func (failingStore) Events(context.Context, string, time.Time, int) ([]monitor.Event, error) {
	return nil, errors.New("disk on fire")
}

func TestStatusEscaping(t *testing.T) {
	f := fixture.NewWorld(t)
	const hostileMethod = `<script>alert("m")</script>`
	lookupAccount(t, f, "alpha").ObserveSignal(fixture.Epoch, hostileMethod, fixture.Classify(400, "PEER_FLOOD"))
	lookupAccount(t, f, "bravo").ObserveFreeze(fixture.Epoch, monitor.FreezeStatus{Known: true, Frozen: true,
		Since: fixture.Epoch, DeletionDate: fixture.Epoch.Add(14 * tlDay), AppealURL: `javascript:alert("a")`})
	lookupAccount(t, f, "charlie").ObserveSpamBot(fixture.Epoch, spambot.Result{State: spambot.Unknown, Reason: `<img src=x onerror=alert(1)>" '`})
	p := newPageFor(f, nil)

	for _, path := range []string{"/", "/accounts/alpha", "/accounts/bravo", "/accounts/charlie", "/accounts/%3Cscript%3E", "/%3Cb%3Ex"} {
		res := doRequest(t, p, http.MethodGet, path) // checks no <script>, no on* attribute
		for _, bad := range []string{"<script", "<img", "javascript:"} {
			if strings.Contains(res.body, bad) {
				t.Errorf("%s: %q unescaped", path, bad)
			}
		}
	}
	if body := doRequest(t, p, http.MethodGet, "/").body; !strings.Contains(body, "on &lt;script&gt;alert(&#34;m&#34;)&lt;/script&gt;") {
		t.Errorf("fleet page does not show the hostile method escaped:\n%s", body)
	}
	if body := doRequest(t, p, http.MethodGet, "/accounts/charlie").body; !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;&#34; &#39;") {
		t.Errorf("SpamBot reason not shown escaped:\n%s", body)
	}
	doc := getPage(t, p, "/accounts/bravo", http.StatusOK)
	links := findAll(doc, func(n *html.Node) bool { return n.Data == "a" && text(n) == "appeal" })
	if len(links) != 1 || attr(links[0], "href") != "#ZgotmplZ" {
		t.Errorf("appeal link %v not neutralised", links)
	}
}

func TestStatusErrors(t *testing.T) {
	f := fixture.NewWorld(t)
	p := newPageFor(f, nil)
	doc := getPage(t, p, "/accounts/zulu", http.StatusNotFound)
	if !strings.Contains(text(doc), `No account "zulu"`) {
		t.Errorf("404 does not name the account: %s", text(doc))
	}
	res := doRequest(t, p, http.MethodGet, "/accounts/%2B79161234567")
	if res.code != http.StatusNotFound || strings.Contains(res.body, "9161234567") {
		t.Errorf("phone-like name: %d, echoed: %v", res.code, strings.Contains(res.body, "9161234567"))
	}
	// The 404 page links back to the fleet relative to where it is.
	for path, back := range map[string]string{"/nope": "./", "/accounts/": "../", "/accounts/alpha/": "../../", "/accounts/alpha/events": "../../", "/index.html": "./"} {
		doc := getPage(t, p, path, http.StatusNotFound)
		links := findAll(doc, func(n *html.Node) bool { return n.Data == "a" && text(n) == "Back to the fleet" })
		if len(links) != 1 || attr(links[0], "href") != back {
			t.Errorf("%s: back link %v, want %q", path, links, back)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, path := range []string{"/", "/accounts/alpha", "/nope"} {
			res := doRequest(t, p, m, path)
			if res.code != http.StatusMethodNotAllowed || res.header.Get("Allow") != "GET, HEAD" || !strings.Contains(res.body, "Method not allowed") {
				t.Errorf("%s %s: %d Allow %q", m, path, res.code, res.header.Get("Allow"))
			}
		}
	}
	for _, path := range []string{"/", "/accounts/alpha"} {
		if res := doRequest(t, p, http.MethodHead, path); res.code != http.StatusOK {
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
	New(Deps{Monitor: fixture.NewWorld(t).Monitor})
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
	p := newPageFor(f, nil)
	doc := getPage(t, p, "/", http.StatusOK)
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
	p := New(Deps{Monitor: mon, Now: clk.Now})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// On a fleet of replicas the fleet page lists the accounts other replicas
// run too, from their stored snapshots: who runs each and as of when,
// counted in the tallies, without a link to an account page this replica
// cannot serve; an account it runs itself is shown once, from memory.
// When the store cannot be read it says so and shows its own.
func TestStatusFleetListsOtherReplicasAccounts(t *testing.T) {
	f := fixture.NewWorld(t) // alpha, bravo, charlie, ...
	f.Clock.Advance(10 * time.Second)
	limited := view.RemoteOf(monitor.Snapshot{Account: "zulu", State: monitor.Limited, Reason: "PEER_FLOOD on messages.sendMessage",
		At: fixture.Epoch.Add(5 * time.Second)}, "host-b/42/abc")
	mine := view.RemoteOf(monitor.Snapshot{Account: "alpha", State: monitor.Banned}, "host-b/42/abc")
	var fail error
	p := newPageFor(f, func(d *Deps) {
		d.Others = func(context.Context) ([]view.Detail, error) {
			if fail != nil {
				return nil, fail
			}
			return []view.Detail{mine, limited}, nil
		}
	})
	local := len(f.Monitor.Accounts())
	doc := getPage(t, p, "/", http.StatusOK)
	rows := findAll(doc, byAttr("data-account"))
	if len(rows) != local+1 {
		t.Fatalf("%d rows, want %d (this replica's and zulu)", len(rows), local+1)
	}
	var zulu *html.Node
	for _, r := range rows {
		switch attr(r, "data-account") {
		case "zulu":
			zulu = r
		case "alpha":
			if attr(r, "data-state") == "banned" {
				t.Error("alpha shown as the store has it, not as this replica runs it")
			}
		}
	}
	if zulu == nil || attr(zulu, "data-state") != "limited" {
		t.Fatalf("zulu's row: %v", zulu)
	}
	if links := findAll(zulu, func(n *html.Node) bool { return n.Data == "a" && strings.HasPrefix(attr(n, "href"), "./accounts/") }); len(links) != 0 {
		t.Errorf("zulu links to an account page this replica cannot serve")
	}
	if got := text(zulu); !strings.Contains(got, "run by host-b/42/abc, as of") {
		t.Errorf("zulu's row does not say who runs it: %q", got)
	}
	counts := map[string]string{}
	for _, n := range findAll(doc, byAttr("data-count")) {
		counts[attr(n, "data-state")] = attr(n, "data-count")
	}
	if counts["all"] != strconv.Itoa(local+1) || counts["limited"] != "1" {
		t.Errorf("counts %v: zulu not counted", counts)
	}

	fail = errors.New("store down")
	doc = getPage(t, p, "/", http.StatusOK)
	if len(findAll(doc, byID("others-failed"))) != 1 || len(findAll(doc, byAttr("data-account"))) != local {
		t.Errorf("with the store down: no note, or rows other than this replica's")
	}
}
