package main

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// The status page (docs/api.md, "Status page"): server-rendered HTML for a
// person, next to the JSON API for programs. `/` shows the fleet at a
// glance, `/accounts/{name}` one account with a timeline of its state and
// risk drawn as inline SVG. It only reads (monitor snapshots, and for one
// account its history), so like the GET API it needs no token. It uses no
// JavaScript and no external assets, so it works offline and under a
// Content-Security-Policy that forbids everything but inline styles.

// Limits and geometry of the status page.
const (
	// defaultStatusWindow is the timeline's span when statusDeps.Window
	// is not set.
	defaultStatusWindow = 24 * time.Hour
	// statusRecentEvents is how many events the account page lists.
	statusRecentEvents = 50
	// statusReasonChars is how much of a reason the fleet table shows
	// (the whole reason is in the cell's title).
	statusReasonChars = 60
	// statusRefreshSeconds is the pages' <meta http-equiv=refresh>.
	statusRefreshSeconds = 30
	// timelineWidth and timelineHeight are the account timeline's size in
	// CSS pixels.
	timelineWidth, timelineHeight = 960, 230
)

// statusDeps is what the status page needs from the running daemon.
type statusDeps struct {
	Monitor *monitor.Monitor
	// Store serves the account page's history; nil means it comes from
	// each account's in-memory ring (Account.Events) alone.
	Store store.Store
	// Now is the monitor's clock (in the demo a sped-up virtual clock).
	// It is required: the page never reads the wall clock.
	Now func() time.Time
	// Version is shown in the footer.
	Version string
	// Window is the timeline's default span; 0 means 24 h. The account
	// page's ?window= picks another of statusWindows.
	Window time.Duration
}

// statusPage is the handler newStatusPage returns.
type statusPage struct {
	d   statusDeps
	mux *http.ServeMux
	// historyLimit bounds the account page's one store query
	// (store.MaxLimit; tests lower it to exercise truncation).
	historyLimit int
}

// statusWindows are the spans the account page offers, so that a link
// picks one and a typo is refused rather than guessed.
var statusWindows = []struct {
	Name string
	D    time.Duration
}{
	{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour},
}

// newStatusPage returns the status page handler: GET/HEAD `/` and
// `/accounts/{name}`, an HTML 404 for every other path and an HTML 405 for
// other methods. Its links are relative, so it works mounted at `/` or,
// through http.StripPrefix, under a prefix ending in a slash.
func newStatusPage(d statusDeps) http.Handler {
	if d.Monitor == nil || d.Now == nil {
		// A wiring mistake, not a runtime condition: fail at start-up.
		panic("newStatusPage: Monitor and Now are required")
	}
	if d.Window <= 0 {
		d.Window = defaultStatusWindow
	}
	p := &statusPage{d: d, mux: http.NewServeMux(), historyLimit: store.MaxLimit}
	p.mux.HandleFunc("/{$}", p.fleet)
	p.mux.HandleFunc("/accounts/{name}", p.account)
	p.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, http.StatusNotFound, "Not found", "There is no page at this address.", statusBase(r.URL.Path))
	})
	return p
}

// statusCSP allows inline styles and nothing else: no scripts, no fetches,
// no frames, no forms. The page needs nothing more, and a reason that
// escaped escaping still could not run or load anything.
const statusCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP sets the headers every page carries, refuses methods other
// than GET and HEAD, and routes.
func (p *statusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		p.renderError(w, http.StatusMethodNotAllowed, "Method not allowed",
			"This page only reads: use GET or HEAD. Changes go through the token-protected JSON API.", statusBase(r.URL.Path))
		return
	}
	p.mux.ServeHTTP(w, r)
}

// render executes a template into a buffer first, so that a template error
// is a clean 500 rather than half a page.
func (p *statusPage) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := statusTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// statusErrorData is the error page.
type statusErrorData struct {
	statusCommon
	Message string
}

func (p *statusPage) renderError(w http.ResponseWriter, status int, title, msg, base string) {
	p.render(w, status, "error", statusErrorData{
		statusCommon: p.common(title, base, false),
		Message:      msg,
	})
}

// statusBase is the relative path from the page at path back to the fleet
// page: "./" for /x, "../" for /accounts/x.
func statusBase(path string) string {
	if n := strings.Count(path, "/") - 1; n > 0 {
		return strings.Repeat("../", n)
	}
	return "./"
}

// statusCommon is what every page's layout shows.
type statusCommon struct {
	Title   string
	Version string
	Now     string
	// Base is the relative path of the fleet page from this page ("./"
	// or "../"), so that links work wherever the page is mounted.
	Base    string
	Refresh int
	CSS     template.CSS
}

func (p *statusPage) common(title, base string, refresh bool) statusCommon {
	c := statusCommon{Title: title, Version: p.d.Version, Now: statusAbs(p.d.Now()), Base: base, CSS: statusCSS}
	if refresh {
		c.Refresh = statusRefreshSeconds
	}
	return c
}

// Fleet.

// fleetData is the fleet page.
type fleetData struct {
	statusCommon
	Counts []stateCount
	Total  int
	// Filter is the state the table is restricted to (?state=), or "".
	Filter string
	Rows   []fleetRow
}

// stateCount is one state's tally in the fleet summary.
type stateCount struct {
	State monitor.State
	N     int
}

// fleetRow is one account in the fleet table, formatted.
type fleetRow struct {
	Name, Href    string
	State         monitor.State
	Reason        string
	ReasonShort   string
	Since, Until  statusTime
	Risk          float64
	Waits         int
	WaitUntil     statusTime
	WaitMethods   string
	LastSignal    string
	LastSignalAt  statusTime
	SpamBot       string
	SpamBotAt     statusTime
	SpamBotReason string
}

// fleet serves `/`: one snapshot per account, no store query, so that it
// stays cheap for a thousand accounts.
func (p *statusPage) fleet(w http.ResponseWriter, r *http.Request) {
	var filter monitor.State
	filtered := false
	if v := r.URL.Query().Get("state"); v != "" {
		st, ok := monitor.ParseState(v)
		if !ok {
			p.renderError(w, http.StatusBadRequest, "Bad request", "Unknown state filter; use one of "+statusStateList()+".", "./")
			return
		}
		filter, filtered = st, true
	}
	now := p.d.Now()
	accts := p.d.Monitor.Accounts()
	counts := map[monitor.State]int{}
	rows := make([]fleetRow, 0, len(accts))
	for _, a := range accts {
		v := detailOf(a.Snapshot())
		counts[v.State]++
		if filtered && v.State != filter {
			continue
		}
		rows = append(rows, fleetRowOf(v, now))
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if sa, sb := stateSeverity(a.State), stateSeverity(b.State); sa != sb {
			return sa > sb
		}
		if a.Risk != b.Risk {
			return a.Risk > b.Risk
		}
		return a.Name < b.Name
	})
	data := fleetData{statusCommon: p.common("Fleet", "./", true), Total: len(accts), Rows: rows}
	if filtered {
		data.Filter = filter.String()
	}
	for _, st := range statesBySeverity() {
		data.Counts = append(data.Counts, stateCount{State: st, N: counts[st]})
	}
	p.render(w, http.StatusOK, "fleet", data)
}

func fleetRowOf(v accountDetail, now time.Time) fleetRow {
	row := fleetRow{
		Name: v.Name, Href: "./accounts/" + url.PathEscape(v.Name), State: v.State,
		Reason: v.Reason, ReasonShort: statusTruncate(v.Reason, statusReasonChars),
		Since: statusWhen(now, v.Since), Until: statusWhen(now, v.Until), Risk: v.Risk,
		Waits: len(v.FloodWaits),
	}
	if len(v.FloodWaits) > 0 {
		var until time.Time
		methods := make([]string, 0, len(v.FloodWaits))
		for _, fw := range v.FloodWaits {
			if fw.Until.After(until) {
				until = fw.Until
			}
			methods = append(methods, fw.Method)
		}
		row.WaitUntil = statusWhen(now, until)
		row.WaitMethods = strings.Join(methods, ", ")
	}
	if ls := v.LastSignal; ls != nil {
		row.LastSignal = statusSignalText(*ls)
		row.LastSignalAt = statusWhen(now, ls.Time)
	}
	if sb := v.SpamBot; sb != nil {
		row.SpamBot = sb.State.String()
		if !sb.Until.IsZero() {
			row.SpamBot += " until " + statusAbs(sb.Until)
		}
		row.SpamBotAt = statusWhen(now, sb.At)
	}
	return row
}

// Account.

// accountData is the account page.
type accountData struct {
	statusCommon
	accountDetail
	Href         string
	SinceAt      statusTime
	UntilAt      statusTime
	LimitUntil   statusTime
	FreezeSince  statusTime
	FreezeUntil  statusTime
	Waits        []statusWait
	SpamBotAt    statusTime
	SpamBotUntil statusTime
	SpamBotNote  string
	// LastSignalText and RiskInputsText format accountDetail's
	// LastSignal and RiskInputs.
	LastSignalText string
	LastSignalAt   statusTime
	RiskInputsText string
	Window         string
	Windows        []statusWindowLink
	Timeline       timelineSVG
	Legend         []monitor.State
	History        statusHistory
	Events         []statusEvent
}

type statusWait struct {
	Method, Type, Wait string
	Until              statusTime
}

type statusWindowLink struct {
	Name, Href string
	Current    bool
}

// statusEvent is one row of the account page's events table.
type statusEvent struct {
	Time     string
	Type     string
	What     string
	From, To monitor.State
	Risk     float64
	Reason   string
}

// account serves `/accounts/{name}`.
func (p *statusPage) account(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := monitor.ValidateName(name); err != nil {
		// Not repeated: it may be a phone number (see api.go lookup).
		p.renderError(w, http.StatusNotFound, "No such account", "This is not a valid account name, so no account has it.", "../")
		return
	}
	acct, ok := p.d.Monitor.Lookup(name)
	if !ok {
		p.renderError(w, http.StatusNotFound, "No such account", fmt.Sprintf("No account %q is monitored.", name), "../")
		return
	}
	window, wname := p.d.Window, ""
	if v := r.URL.Query().Get("window"); v != "" {
		for _, sw := range statusWindows {
			if sw.Name == v {
				window, wname = sw.D, sw.Name
			}
		}
		if wname == "" {
			names := make([]string, len(statusWindows))
			for i, sw := range statusWindows {
				names[i] = sw.Name
			}
			p.renderError(w, http.StatusBadRequest, "Bad request", "Unknown window; use one of "+strings.Join(names, ", ")+".", "../")
			return
		}
	}
	now := p.d.Now()
	snap := acct.Snapshot()
	v := detailOf(snap)
	// The timeline ends at the instant the snapshot describes, so that its
	// right edge shows exactly the state and risk in the header.
	to := v.At
	if to.IsZero() {
		to = now
	}
	from := to.Add(-window)
	hist := p.history(r.Context(), acct, from)

	data := accountData{
		statusCommon:  p.common(v.Name, "../", true),
		accountDetail: v,
		Href:          url.PathEscape(v.Name),
		SinceAt:       statusWhen(now, v.Since),
		UntilAt:       statusWhen(now, v.Until),
		LimitUntil:    statusWhen(now, v.Limit.Until),
		FreezeSince:   statusWhen(now, v.Freeze.Since),
		FreezeUntil:   statusWhen(now, v.Freeze.Until),
		Window:        statusDurationName(window),
		History:       hist,
	}
	for _, fw := range v.FloodWaits {
		data.Waits = append(data.Waits, statusWait{Method: fw.Method, Type: fw.Type, Wait: compactDuration(fw.Wait), Until: statusWhen(now, fw.Until)})
	}
	if sb := v.SpamBot; sb != nil {
		data.SpamBotAt = statusWhen(now, sb.At)
		data.SpamBotUntil = statusWhen(now, sb.Until)
	}
	// Why SpamBot's answer was not understood is only in the snapshot
	// (the API leaves it out).
	if sb := snap.SpamBot; sb != nil {
		data.SpamBotNote = sb.Reason
	}
	if ls := v.LastSignal; ls != nil {
		data.LastSignalText = statusSignalText(*ls)
		data.LastSignalAt = statusWhen(now, ls.Time)
	}
	inputs := make([]string, 0, len(v.RiskInputs))
	for _, ri := range v.RiskInputs {
		inputs = append(inputs, fmt.Sprintf("%s %.1f", ri.Kind, ri.Value))
	}
	data.RiskInputsText = strings.Join(inputs, ", ")
	for _, sw := range statusWindows {
		data.Windows = append(data.Windows, statusWindowLink{Name: sw.Name, Href: "?window=" + sw.Name, Current: sw.D == window})
	}
	data.Timeline = timeline(timelineInput{
		Events: hist.Events, State: v.State, Risk: v.Risk, From: from, To: to,
		Width: timelineWidth, Height: timelineHeight,
		MissingFrom: hist.MissingFrom, MissingTo: hist.MissingTo,
	})
	data.Legend = data.Timeline.States()
	// The latest events, newest first.
	for i := len(hist.Events) - 1; i >= 0 && len(data.Events) < statusRecentEvents; i-- {
		data.Events = append(data.Events, statusEventOf(hist.Events[i]))
	}
	p.render(w, http.StatusOK, "account", data)
}

// statusHistory is an account's events for its page.
type statusHistory struct {
	// Events are oldest first: at most one event before the window (from
	// the ring: the state and risk the window starts from), the window's
	// events from the store, and the ring's events the store does not
	// have yet (the writer batches).
	Events []monitor.Event
	// InWindow counts the events at or after the window's start.
	InWindow int
	// Source says where the events come from, for the page.
	Source string
	// MissingFrom..MissingTo is a span whose events were not loaded: the
	// store query hit its limit and the ring starts later.
	MissingFrom, MissingTo time.Time
	// Note explains a degraded history (store error).
	Note string
}

// history reads an account's events from the window's start: one store
// query of at most historyLimit events, completed from the in-memory ring.
func (p *statusPage) history(ctx context.Context, acct *monitor.Account, from time.Time) statusHistory {
	ring := acct.Events()
	// idx is the ring's first event in the window; the one before it, if
	// any, says where the window starts from. The ring is in the order
	// events were recorded, which is time order except for a signal
	// reported late; such a one can only move these cuts by itself.
	idx := sort.Search(len(ring), func(i int) bool { return !ring[i].Time.Before(from) })
	start := max(idx-1, 0)
	var h statusHistory
	var stored []monitor.Event
	if p.d.Store != nil {
		var err error
		stored, err = p.d.Store.Events(ctx, acct.Name(), from, p.historyLimit)
		if err != nil {
			// Degrade to memory rather than fail: the header facts and
			// the recent history are still worth showing.
			h.Note = "The store could not be read (" + err.Error() + "); the history below comes from memory only."
		}
	}
	if p.d.Store == nil || h.Note != "" {
		h.Source = fmt.Sprintf("memory (the account's last %d events)", len(ring))
		h.Events = slices.Clone(ring[start:])
		h.InWindow = len(ring) - idx
		return h
	}
	h.Source = "store"
	h.Events = make([]monitor.Event, 0, 1+len(stored)+len(ring))
	if idx > 0 {
		h.Events = append(h.Events, ring[idx-1])
	}
	h.Events = append(h.Events, stored...)
	// The ring's events newer than the last stored one: not written yet,
	// or beyond the store query's limit.
	k := idx
	if n := len(stored); n > 0 {
		last := stored[n-1].Time
		k = sort.Search(len(ring), func(i int) bool { return ring[i].Time.After(last) })
		if n >= p.historyLimit && k == 0 && len(ring) > 0 {
			// The store returned its oldest events only and the ring
			// starts after them: what lies between was not loaded.
			h.MissingFrom, h.MissingTo = last, ring[0].Time
			h.Source = fmt.Sprintf("store (the window's first %d events) and memory (the last %d)", n, len(ring))
		}
	}
	h.Events = append(h.Events, ring[k:]...)
	h.InWindow = len(stored) + len(ring) - k
	return h
}

func statusEventOf(e monitor.Event) statusEvent {
	se := statusEvent{Time: statusAbs(e.Time), Type: e.Type.String(), From: e.From, To: e.State, Risk: e.Risk, Reason: e.Reason}
	switch e.Type {
	case monitor.EventSignal:
		se.What = statusSignalText(e)
		se.Reason = ""
	case monitor.EventProbe:
		se.What = e.Probe
	case monitor.EventState:
		if e.Probe != "" {
			se.What = "after " + e.Probe + " probe"
		}
	}
	return se
}

// statusSignalText describes a signal event: its type, wait and method.
func statusSignalText(e monitor.Event) string {
	s := e.Signal.Type
	if s == "" {
		s = e.Signal.Kind.String()
	}
	if e.Signal.Wait > 0 {
		s += " (" + compactDuration(e.Signal.Wait) + ")"
	}
	if e.Method != "" {
		s += " on " + e.Method
	}
	return s
}

// States, colours and severity.

// stateSeverity orders states for the fleet table, most urgent first. It
// follows the monitor's order (Banned, Dead, Frozen, Limited, Throttled,
// Watch) except that unknown ranks above ok: an account the monitor knows
// nothing about, or whose SpamBot probe failed, needs a look; an ok one
// does not.
func stateSeverity(s monitor.State) int {
	switch s {
	case monitor.Banned:
		return 7
	case monitor.Dead:
		return 6
	case monitor.Frozen:
		return 5
	case monitor.Limited:
		return 4
	case monitor.Throttled:
		return 3
	case monitor.Watch:
		return 2
	case monitor.Unknown:
		return 1
	}
	return 0
}

// statesBySeverity returns every state, most urgent first.
func statesBySeverity() []monitor.State {
	out := monitor.States()
	sort.SliceStable(out, func(i, j int) bool { return stateSeverity(out[i]) > stateSeverity(out[j]) })
	return out
}

func statusStateList() string {
	var names []string
	for _, s := range statesBySeverity() {
		names = append(names, s.String())
	}
	return strings.Join(names, ", ")
}

// stateColours are the states' fill colours and the text colour readable
// on each. They are rendered into the stylesheet once (statusCSS), so the
// table chips and the SVG band share them.
var stateColours = map[monitor.State][2]string{
	monitor.OK:        {"#2e7d32", "#fff"},
	monitor.Watch:     {"#f9a825", "#000"},
	monitor.Throttled: {"#ef6c00", "#000"},
	monitor.Limited:   {"#c62828", "#fff"},
	monitor.Frozen:    {"#0277bd", "#fff"},
	monitor.Banned:    {"#6a1b9a", "#fff"},
	monitor.Dead:      {"#37474f", "#fff"},
	monitor.Unknown:   {"#9e9e9e", "#000"},
}

// statusCSS is the pages' stylesheet: fixed rules plus one class per state
// built from stateColours (constants, hence trusted as template.CSS).
var statusCSS = func() template.CSS {
	var b strings.Builder
	b.WriteString(statusBaseCSS)
	for _, st := range monitor.States() {
		c := stateColours[st]
		fmt.Fprintf(&b, ".s-%s{background:%s;color:%s;fill:%s}\n", st, c[0], c[1], c[0])
	}
	return template.CSS(b.String())
}()

const statusBaseCSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header,main,footer{padding:8px 20px}
header{background:#263238;color:#eceff1;display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}
header a{color:#eceff1}
h1{font-size:18px;margin:0}
h2{font-size:16px;margin:18px 0 8px}
a{color:#0d47a1}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eceff1;font-weight:600;position:sticky;top:0}
td.num,th.num{text-align:right;white-space:nowrap}
.chip{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;font-weight:600;white-space:nowrap}
.counts{display:flex;gap:8px;flex-wrap:wrap;margin:10px 0}
.counts a{text-decoration:none}
.count{padding:6px 12px;border-radius:6px;min-width:70px;text-align:center}
.count b{display:block;font-size:20px}
.count.zero{opacity:.35}
.muted{color:#666;font-size:12px}
.reason{max-width:28em;overflow-wrap:anywhere}
meter{width:60px;vertical-align:middle}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0;overflow-wrap:anywhere}
svg.timeline{background:#fff;border:1px solid #e0e0e0;max-width:100%;height:auto}
svg .axis{font-size:11px;fill:#555}
svg .grid{stroke:#e0e0e0;stroke-dasharray:3 3}
svg .risk{fill:none;stroke:#b71c1c;stroke-width:2}
svg .missing{fill:#bdbdbd;fill-opacity:.6}
.legend{display:flex;gap:8px;flex-wrap:wrap;margin:6px 0}
.note{background:#fff8e1;border:1px solid #ffe082;padding:6px 10px}
nav.windows a{margin-right:8px}
nav.windows b{margin-right:8px}
`

// Formatting.

// statusTime is an instant as the pages show it: relative to now, with the
// UTC time in a tooltip and in the datetime attribute.
type statusTime struct {
	Rel, Abs, ISO string
}

func statusWhen(now, t time.Time) statusTime {
	if t.IsZero() {
		return statusTime{}
	}
	var rel string
	switch d := now.Sub(t); {
	case d > -time.Second && d < time.Second:
		rel = "now"
	case d > 0:
		rel = compactDuration(d) + " ago"
	default:
		rel = "in " + compactDuration(-d)
	}
	return statusTime{Rel: rel, Abs: statusAbs(t), ISO: t.UTC().Format(time.RFC3339)}
}

// statusAbs formats an instant in UTC, the page's only time zone.
func statusAbs(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// compactDuration writes d with its two largest units: 2d3h, 4h05m, 7m30s.
func compactDuration(d time.Duration) string {
	d = d.Round(time.Second)
	const day = 24 * time.Hour
	switch {
	case d >= day:
		if h := d % day / time.Hour; h != 0 {
			return fmt.Sprintf("%dd%dh", d/day, h)
		}
		return fmt.Sprintf("%dd", d/day)
	case d >= time.Hour:
		if m := d % time.Hour / time.Minute; m != 0 {
			return fmt.Sprintf("%dh%02dm", d/time.Hour, m)
		}
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		if s := d % time.Minute / time.Second; s != 0 {
			return fmt.Sprintf("%dm%02ds", d/time.Minute, s)
		}
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// statusDurationName names a window: a preset's name, else the duration.
func statusDurationName(d time.Duration) string {
	for _, sw := range statusWindows {
		if sw.D == d {
			return sw.Name
		}
	}
	return compactDuration(d)
}

// statusTruncate shortens s to at most n runes, marking the cut.
func statusTruncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Timeline.

// timelineInput is what timeline draws.
type timelineInput struct {
	// Events are the account's events, in any order; events before From
	// say which state and risk the window starts from, events after To
	// are ignored.
	Events []monitor.Event
	// State and Risk are the account's at To (its snapshot). State is the
	// band's colour when no state event says otherwise; Risk ends the
	// risk line.
	State    monitor.State
	Risk     float64
	From, To time.Time
	// Width and Height are the SVG's size.
	Width, Height int
	// MissingFrom..MissingTo, when not empty, is a span whose events were
	// not loaded; it is shaded so that nobody reads it as quiet.
	MissingFrom, MissingTo time.Time
}

// timelineSVG is a drawn timeline: coordinates in the SVG's user units
// (pixels), ready for the template.
type timelineSVG struct {
	Width, Height int
	From, To      time.Time
	// PlotX..PlotX+PlotW is the horizontal extent of both plots.
	PlotX, PlotW float64
	// The state band.
	BandY, BandH float64
	// The risk plot: risk 100 at RiskY, 0 at RiskY+RiskH.
	RiskY, RiskH float64
	Segments     []timelineSegment
	// Risk is the risk line's vertices; RiskPoints the same as an SVG
	// points attribute.
	Risk       []timelinePoint
	RiskPoints string
	XTicks     []timelineTick
	YTicks     []timelineTick
	AxisY      float64 // baseline of the time labels
	Missing    *timelineSegment
}

// timelineSegment is a span of the band in one state.
type timelineSegment struct {
	State    monitor.State
	From, To time.Time
	X, W     float64
}

// timelinePoint is a vertex of the risk line.
type timelinePoint struct {
	T    time.Time
	Risk float64
	X, Y float64
}

// timelineTick is an axis label at Pos (x for time, y for risk).
type timelineTick struct {
	Pos   float64
	Label string
}

// States returns the states the band shows, most urgent first, for the
// legend.
func (tl timelineSVG) States() []monitor.State {
	seen := map[monitor.State]bool{}
	for _, s := range tl.Segments {
		seen[s.State] = true
	}
	var out []monitor.State
	for _, st := range statesBySeverity() {
		if seen[st] {
			out = append(out, st)
		}
	}
	return out
}

// Margins of the timeline, in pixels: room for the risk labels on the
// left, for the last time label on the right, and for the time axis below.
const (
	timelineLeft   = 44
	timelineRight  = 28
	timelineTop    = 8
	timelineBand   = 26
	timelineGap    = 14
	timelineBottom = 30
)

// timeline lays out an account's state band and risk line over From..To.
//
// The band comes from state events only: they are dated when the state
// changed, while a signal reported late is dated when it happened but
// carries the state after it was applied. The state at From is that of
// the last state event at or before From, else the From of the first
// later one (the state it left), else State: with no state event the
// state did not change.
//
// The risk line joins the risk every event carries (clamped to 0-100) and
// ends at Risk at To. A rise is drawn as a step at the event, because
// risk only rises at a signal and does so at once; a fall is drawn as a
// slope, because risk decays continuously. Before the first known value
// the line is not drawn.
func timeline(in timelineInput) timelineSVG {
	tl := timelineSVG{Width: in.Width, Height: in.Height, From: in.From, To: in.To}
	tl.PlotX = timelineLeft
	tl.PlotW = float64(in.Width - timelineLeft - timelineRight)
	tl.BandY, tl.BandH = timelineTop, timelineBand
	tl.RiskY = timelineTop + timelineBand + timelineGap
	tl.RiskH = float64(in.Height) - tl.RiskY - timelineBottom
	tl.AxisY = float64(in.Height) - 10
	span := in.To.Sub(in.From)
	if span <= 0 || tl.PlotW <= 0 || tl.RiskH <= 0 {
		return tl // nothing to draw on
	}
	x := func(t time.Time) float64 {
		switch {
		case t.Before(in.From):
			t = in.From
		case t.After(in.To):
			t = in.To
		}
		return tl.PlotX + tl.PlotW*float64(t.Sub(in.From))/float64(span)
	}
	y := func(r float64) float64 { return tl.RiskY + tl.RiskH*(1-r/100) }

	evs := slices.Clone(in.Events)
	slices.SortStableFunc(evs, func(a, b monitor.Event) int { return a.Time.Compare(b.Time) })

	// The band.
	st, known := in.State, false
	for _, e := range evs {
		if e.Type != monitor.EventState {
			continue
		}
		if !e.Time.After(in.From) {
			st, known = e.State, true
			continue
		}
		if !known {
			st = e.From
		}
		break
	}
	segment := func(s monitor.State, from, to time.Time) {
		if to.After(from) {
			tl.Segments = append(tl.Segments, timelineSegment{State: s, From: from, To: to, X: x(from), W: x(to) - x(from)})
		}
	}
	start := in.From
	for _, e := range evs {
		if e.Type != monitor.EventState || !e.Time.After(in.From) {
			continue
		}
		if e.Time.After(in.To) {
			break
		}
		if e.State == st {
			continue
		}
		segment(st, start, e.Time)
		st, start = e.State, e.Time
	}
	segment(st, start, in.To)

	// The risk line.
	type sample struct {
		t time.Time
		r float64
	}
	var samples []sample
	for _, e := range evs {
		if e.Time.After(in.To) {
			break
		}
		if r, ok := clampRisk(e.Risk); ok {
			samples = append(samples, sample{e.Time, r})
		}
	}
	if r, ok := clampRisk(in.Risk); ok {
		samples = append(samples, sample{in.To, r})
	}
	verts := make([]sample, 0, 2*len(samples))
	for i, s := range samples {
		if i > 0 && s.r > samples[i-1].r {
			verts = append(verts, sample{s.t, samples[i-1].r})
		}
		verts = append(verts, s)
	}
	var pts []string
	add := func(t time.Time, r float64) {
		p := timelinePoint{T: t, Risk: r, X: round1(x(t)), Y: round1(y(r))}
		if n := len(tl.Risk); n > 0 && tl.Risk[n-1].X == p.X && tl.Risk[n-1].Y == p.Y {
			return // same pixel: a busy account would repeat it thousands of times
		}
		tl.Risk = append(tl.Risk, p)
		pts = append(pts, strconv.FormatFloat(p.X, 'f', -1, 64)+","+strconv.FormatFloat(p.Y, 'f', -1, 64))
	}
	for i, v := range verts {
		if v.t.Before(in.From) {
			continue
		}
		if len(tl.Risk) == 0 && i > 0 {
			// The line enters the window between the previous vertex
			// (before From) and this one.
			a := verts[i-1]
			f := float64(in.From.Sub(a.t)) / float64(v.t.Sub(a.t))
			add(in.From, a.r+(v.r-a.r)*f)
		}
		add(v.t, v.r)
	}
	tl.RiskPoints = strings.Join(pts, " ")

	if in.MissingTo.After(in.MissingFrom) && in.MissingTo.After(in.From) && in.MissingFrom.Before(in.To) {
		mf, mt := maxTime(in.MissingFrom, in.From), minTime(in.MissingTo, in.To)
		tl.Missing = &timelineSegment{From: mf, To: mt, X: x(mf), W: x(mt) - x(mf)}
	}

	for _, t := range timelineTimes(in.From, in.To) {
		tl.XTicks = append(tl.XTicks, timelineTick{Pos: round1(x(t.t)), Label: t.label})
	}
	for _, r := range []float64{0, 50, 100} {
		tl.YTicks = append(tl.YTicks, timelineTick{Pos: round1(y(r)), Label: strconv.Itoa(int(r))})
	}
	return tl
}

// clampRisk bounds a risk to the score's 0-100; NaN has no place on the
// line.
func clampRisk(r float64) (float64, bool) {
	if math.IsNaN(r) {
		return 0, false
	}
	return math.Max(0, math.Min(100, r)), true
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// timelineSteps are the spacings the time axis may use; the first that
// gives at most timelineMaxTicks labels wins.
var timelineSteps = []time.Duration{
	time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour,
}

const timelineMaxTicks = 8

type timelineTime struct {
	t     time.Time
	label string
}

// timelineTimes returns the time axis labels: round UTC instants (hours
// on the hour, days at midnight UTC) between from and to.
func timelineTimes(from, to time.Time) []timelineTime {
	span := to.Sub(from)
	step := timelineSteps[len(timelineSteps)-1]
	for _, s := range timelineSteps {
		if span/s <= timelineMaxTicks {
			step = s
			break
		}
	}
	// Truncate counts from the zero time, which is midnight UTC, so the
	// labels fall on round UTC times.
	first := from.UTC().Truncate(step)
	if first.Before(from) {
		first = first.Add(step)
	}
	var out []timelineTime
	for t := first; !t.After(to); t = t.Add(step) {
		u := t.UTC()
		var label string
		switch {
		case step >= 24*time.Hour || u.Hour() == 0 && u.Minute() == 0 && u.Second() == 0:
			label = u.Format("Jan 2")
		case step < time.Minute:
			label = u.Format("15:04:05")
		default:
			label = u.Format("15:04")
		}
		out = append(out, timelineTime{t: t, label: label})
	}
	return out
}

// Templates.

var statusTemplates = template.Must(template.New("status").Funcs(template.FuncMap{
	"px":       func(v float64) string { return strconv.FormatFloat(round1(v), 'f', -1, 64) },
	"addf":     func(a, b float64) float64 { return a + b },
	"subtract": func(a, b float64) float64 { return a - b },
	"risk":     func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"utc":      statusAbs,
	"lastPoint": func(ps []timelinePoint) *timelinePoint {
		if len(ps) == 0 {
			return nil
		}
		return &ps[len(ps)-1]
	},
}).Parse(statusTemplateText))

const statusTemplateText = `
{{define "head"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">
{{end}}<title>{{.Title}} · safetyd</title>
<style>{{.CSS}}</style>
</head>
<body>
<header><h1><a href="{{.Base}}">safetyd</a> · {{.Title}}</h1><span>{{.Now}}</span></header>
<main>
{{end}}

{{define "foot"}}</main>
<footer class="muted">tgsafety safetyd {{.Version}} · times in UTC, read from the monitor's clock{{if .Refresh}} · this page reloads every {{.Refresh}} s{{end}}</footer>
</body>
</html>
{{end}}

{{define "time"}}{{if .ISO}}<time datetime="{{.ISO}}" title="{{.Abs}}">{{.Rel}}</time>{{else}}–{{end}}{{end}}

{{define "timefull"}}{{if .ISO}}<time datetime="{{.ISO}}">{{.Abs}}</time> <span class="muted">({{.Rel}})</span>{{else}}–{{end}}{{end}}

{{define "error"}}{{template "head" .}}
<h2>{{.Title}}</h2>
<p>{{.Message}}</p>
<p><a href="{{.Base}}">Back to the fleet</a></p>
{{template "foot" .}}{{end}}

{{define "fleet"}}{{template "head" .}}
<div class="counts">
{{range .Counts}}<a href="?state={{.State}}"><div class="count s-{{.State}}{{if not .N}} zero{{end}}" data-state="{{.State}}" data-count="{{.N}}"><b>{{.N}}</b>{{.State}}</div></a>
{{end}}<div class="count" data-state="all" data-count="{{.Total}}"><b>{{.Total}}</b>accounts</div>
</div>
{{if .Filter}}<p>Showing the <span class="chip s-{{.Filter}}">{{.Filter}}</span> accounts only. <a href="./">Show all</a></p>
{{end}}<table id="fleet">
<thead><tr><th>account</th><th>state</th><th>since</th><th>until</th><th class="num">risk</th><th>flood waits</th><th>last signal</th><th>SpamBot</th></tr></thead>
<tbody>
{{range .Rows}}<tr data-account="{{.Name}}" data-state="{{.State}}">
<td><a href="{{.Href}}">{{.Name}}</a></td>
<td><span class="chip s-{{.State}}">{{.State}}</span>{{if .Reason}}<div class="muted reason" title="{{.Reason}}">{{.ReasonShort}}</div>{{end}}</td>
<td>{{template "time" .Since}}</td>
<td>{{template "time" .Until}}</td>
<td class="num" data-risk="{{risk .Risk}}"><meter min="0" max="100" low="30" high="60" optimum="0" value="{{risk .Risk}}"></meter> {{risk .Risk}}</td>
<td>{{if .Waits}}{{.Waits}} <span class="muted" title="{{.WaitMethods}}">until {{template "time" .WaitUntil}}</span>{{else}}–{{end}}</td>
<td>{{if .LastSignal}}<span class="reason">{{.LastSignal}}</span> <span class="muted">{{template "time" .LastSignalAt}}</span>{{else}}–{{end}}</td>
<td>{{if .SpamBot}}{{.SpamBot}} <span class="muted">{{template "time" .SpamBotAt}}</span>{{else}}–{{end}}</td>
</tr>
{{else}}<tr><td colspan="8">No accounts{{if $.Filter}} in this state{{end}}.</td></tr>
{{end}}</tbody>
</table>
{{template "foot" .}}{{end}}

{{define "account"}}{{template "head" .}}
<p><a href="{{.Base}}">← fleet</a> · <a href="../api/v1/accounts/{{.Href}}">JSON</a></p>
<dl class="facts">
<dt>state</dt><dd><span class="chip s-{{.State}}" id="state">{{.State}}</span>{{if .Reason}} <span class="reason">{{.Reason}}</span>{{end}}</dd>
<dt>since</dt><dd>{{template "timefull" .SinceAt}}</dd>
<dt>until</dt><dd>{{template "timefull" .UntilAt}}</dd>
<dt>risk</dt><dd><meter min="0" max="100" low="30" high="60" optimum="0" value="{{risk .Risk}}"></meter> <b id="risk">{{risk .Risk}}</b>{{with .RiskInputsText}} <span class="muted">inputs: {{.}}</span>{{end}}</dd>
<dt>limit</dt><dd>{{if .Limit.Active}}{{if .Limit.Permanent}}permanent{{else}}until {{template "timefull" .LimitUntil}}{{if not .Limit.UntilKnown}} <span class="muted">(assumed: PEER_FLOOD does not say)</span>{{end}}{{end}}{{with .Limit.Reason}} · <span class="reason">{{.}}</span>{{end}}{{else}}none{{end}}</dd>
<dt>freeze</dt><dd>{{if .Freeze.Active}}since {{template "timefull" .FreezeSince}}{{if .FreezeUntil.ISO}}; deleted {{template "timefull" .FreezeUntil}} unless appealed{{end}}{{with .Freeze.AppealURL}} · <a href="{{.}}" rel="noreferrer noopener">appeal</a>{{end}}{{else}}none{{end}}</dd>
<dt>SpamBot</dt><dd>{{with .SpamBot}}{{.State}}{{if $.SpamBotUntil.ISO}} until {{template "timefull" $.SpamBotUntil}}{{end}} · asked {{template "timefull" $.SpamBotAt}}{{with $.SpamBotNote}} · <span class="reason">{{.}}</span>{{end}}{{else}}not asked yet{{end}}</dd>
<dt>last signal</dt><dd>{{if .LastSignalText}}<span class="reason">{{.LastSignalText}}</span> · {{template "timefull" .LastSignalAt}}{{else}}none{{end}}</dd>
</dl>
{{if .Waits}}<h2>Active flood waits</h2>
<table id="waits"><thead><tr><th>method</th><th>type</th><th>wait</th><th>until</th></tr></thead><tbody>
{{range .Waits}}<tr><td>{{.Method}}</td><td>{{.Type}}</td><td>{{.Wait}}</td><td>{{template "timefull" .Until}}</td></tr>
{{end}}</tbody></table>
{{end}}
<h2>Last {{.Window}}</h2>
<nav class="windows">{{range .Windows}}{{if .Current}}<b>{{.Name}}</b>{{else}}<a href="{{.Href}}">{{.Name}}</a>{{end}}{{end}}</nav>
{{with .History.Note}}<p class="note">{{.}}</p>{{end}}
{{template "timeline" .}}
<div class="legend">{{range .Legend}}<span class="chip s-{{.}}">{{.}}</span>{{end}}<span class="muted">band: state · red line: risk (0-100) · history from {{.History.Source}}, {{.History.InWindow}} events in the window</span></div>
<h2>Latest events</h2>
<table id="events"><thead><tr><th>time (UTC)</th><th>type</th><th>what</th><th>state</th><th class="num">risk</th><th>reason</th></tr></thead><tbody>
{{range .Events}}<tr data-type="{{.Type}}"><td>{{.Time}}</td><td>{{.Type}}</td><td class="reason">{{.What}}</td><td>{{if ne .From .To}}<span class="chip s-{{.From}}">{{.From}}</span> → {{end}}<span class="chip s-{{.To}}">{{.To}}</span></td><td class="num">{{risk .Risk}}</td><td class="reason">{{.Reason}}</td></tr>
{{else}}<tr><td colspan="6">No events yet.</td></tr>
{{end}}</tbody></table>
{{template "foot" .}}{{end}}

{{define "timeline"}}{{$tl := .Timeline}}<svg xmlns="http://www.w3.org/2000/svg" class="timeline" id="timeline" width="{{$tl.Width}}" height="{{$tl.Height}}" viewBox="0 0 {{$tl.Width}} {{$tl.Height}}" role="img" aria-label="state and risk of {{.Name}} over the last {{.Window}}">
<text class="axis" x="{{px (subtract $tl.PlotX 6)}}" y="{{px (addf $tl.BandY 17)}}" text-anchor="end">state</text>
{{range $tl.Segments}}<rect class="s-{{.State}}" data-state="{{.State}}" x="{{px .X}}" y="{{px $tl.BandY}}" width="{{px .W}}" height="{{px $tl.BandH}}"><title>{{.State}} from {{utc .From}} to {{utc .To}}</title></rect>
{{end}}{{range $tl.YTicks}}<line class="grid" x1="{{px $tl.PlotX}}" x2="{{px (addf $tl.PlotX $tl.PlotW)}}" y1="{{px .Pos}}" y2="{{px .Pos}}"/><text class="axis" x="{{px (subtract $tl.PlotX 6)}}" y="{{px (addf .Pos 4)}}" text-anchor="end">{{.Label}}</text>
{{end}}{{range $tl.XTicks}}<line class="grid" x1="{{px .Pos}}" x2="{{px .Pos}}" y1="{{px $tl.BandY}}" y2="{{px (addf $tl.RiskY $tl.RiskH)}}"/><text class="axis" x="{{px .Pos}}" y="{{px $tl.AxisY}}" text-anchor="middle">{{.Label}}</text>
{{end}}<text class="axis" x="{{px (subtract $tl.PlotX 6)}}" y="{{px $tl.AxisY}}" text-anchor="end">UTC</text>
{{with $tl.Missing}}<rect class="missing" x="{{px .X}}" y="{{px $tl.BandY}}" width="{{px .W}}" height="{{px (addf (subtract $tl.RiskY $tl.BandY) $tl.RiskH)}}"><title>events from {{utc .From}} to {{utc .To}} not loaded</title></rect>
{{end}}{{if $tl.RiskPoints}}<polyline class="risk" points="{{$tl.RiskPoints}}"><title>risk</title></polyline>
{{end}}{{with lastPoint $tl.Risk}}<circle cx="{{px .X}}" cy="{{px .Y}}" r="3" fill="#b71c1c"><title>risk {{risk .Risk}} at {{utc .T}}</title></circle>
{{end}}</svg>
{{end}}
`
