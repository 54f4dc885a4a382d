package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/timeline"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/dashboards"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/spambot"
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
	// NotMonitored lists the accounts whose client stopped for good, with
	// why; nil means none.
	NotMonitored func() map[string]string
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
	Name, Href   string
	State        monitor.State
	Reason       string
	ReasonShort  string
	Since, Until statusTime
	// UntilWhat says what Until is when it is not the end of the state:
	// for frozen, the date Telegram deletes the account.
	UntilWhat string
	Next      *statusNext
	// NotMonitored says why nobody watches the account ("" if somebody
	// does).
	NotMonitored string
	Risk         float64
	// Lost is set for banned and dead accounts: their risk score no
	// longer says anything (a dead session scores low), so the page shows
	// the loss instead of a reassuring bar.
	Lost          bool
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
	stopped := p.notMonitored()
	counts := map[monitor.State]int{}
	rows := make([]fleetRow, 0, len(accts))
	for _, a := range accts {
		v := view.DetailOf(a.Snapshot())
		counts[v.State]++
		if filtered && v.State != filter {
			continue
		}
		row := fleetRowOf(v, now)
		row.NotMonitored = stopped[v.Name]
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if sa, sb := view.Severity(a.State), view.Severity(b.State); sa != sb {
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
	for _, st := range view.StatesBySeverity() {
		data.Counts = append(data.Counts, stateCount{State: st, N: counts[st]})
	}
	p.render(w, http.StatusOK, "fleet", data)
}

func fleetRowOf(v view.Detail, now time.Time) fleetRow {
	reason := statusReason(v.Reason)
	row := fleetRow{
		Name: v.Name, Href: "./accounts/" + url.PathEscape(v.Name), State: v.State,
		Reason: reason, ReasonShort: statusTruncate(reason, statusReasonChars),
		Since: statusWhen(now, v.Since), Until: statusWhen(now, v.Until), Risk: v.Risk,
		Waits: len(v.FloodWaits), Next: nextOf(v.State, v.Name), Lost: lost(v.State),
	}
	if v.State == monitor.Frozen && !v.Freeze.DeletionDate.IsZero() {
		// A freeze has no end of its own; what the operator must know
		// is when Telegram deletes the account.
		row.Until, row.UntilWhat = statusWhen(now, v.Freeze.DeletionDate), "deletion"
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
		row.SpamBot = spamBotText(sb.State, sb.Until, now)
		row.SpamBotAt = statusWhen(now, sb.At)
	}
	return row
}

// statusNext is an account's next step, as the pages show it.
type statusNext struct {
	Text, Runbook string
	// Short is Text's first sentence, for the fleet table (the whole text
	// is its tooltip and on the account page).
	Short string
}

func nextOf(st monitor.State, name string) *statusNext {
	n, ok := dashboards.NextStepFor(st, name)
	if !ok {
		return nil
	}
	short, _, _ := strings.Cut(n.Text, ". ")
	if short != n.Text {
		short += "."
	}
	return &statusNext{Text: n.Text, Runbook: n.Runbook(), Short: short}
}

// lost reports states in which the account can no longer be used.
func lost(st monitor.State) bool { return st == monitor.Banned || st == monitor.Dead }

// spamBotText is SpamBot's last answer in words: "limited until Dec 7
// 18:46 UTC" while the date is ahead, "was limited until …" once it has
// passed (a banned account keeps its last answer for ever).
func spamBotText(st spambot.State, until, now time.Time) string {
	switch st {
	case spambot.LimitedTemporary:
		if until.IsZero() {
			return "limited"
		}
		if until.After(now) {
			return "limited until " + statusShort(until)
		}
		return "was limited until " + statusShort(until)
	case spambot.LimitedPermanent:
		return "limited, no end date"
	}
	return st.String()
}

// statusShort formats an instant compactly, for tables: "Dec 7 18:46 UTC".
func statusShort(t time.Time) string { return t.UTC().Format("Jan 2 15:04") + " UTC" }

// rfc3339InText finds the machine-readable instants that monitor reasons
// carry, so that the page can show them as people read dates.
var rfc3339InText = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z\b`)

// spamBotWords spells SpamBot's state labels, which monitor reasons carry
// as they are exported, in words.
var spamBotWords = strings.NewReplacer(
	spambot.LimitedTemporary.String(), "limited",
	spambot.LimitedPermanent.String(), "limited with no end date",
)

// statusReason rewrites a reason for people: instants as "2026-12-07
// 18:46 UTC" instead of RFC 3339, SpamBot's states in words.
func statusReason(s string) string {
	s = spamBotWords.Replace(s)
	return rfc3339InText.ReplaceAllStringFunc(s, func(m string) string {
		t, err := time.Parse(time.RFC3339Nano, m)
		if err != nil {
			return m
		}
		return t.UTC().Format("2006-01-02 15:04") + " UTC"
	})
}

// notMonitored is NotMonitored's answer, or none.
func (p *statusPage) notMonitored() map[string]string {
	if p.d.NotMonitored == nil {
		return nil
	}
	return p.d.NotMonitored()
}

// Account.

// accountData is the account page.
type accountData struct {
	statusCommon
	view.Detail
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
	// LastSignalText and RiskDrivers format view.Detail's LastSignal
	// and RiskInputs.
	LastSignalText string
	LastSignalAt   statusTime
	RiskDrivers    string
	Next           *statusNext
	NotMonitored   string
	Lost           bool
	// StateReason is the state's reason, dates made readable.
	StateReason string
	// TypeFilter restricts the events table (?type=), or "".
	TypeFilter string
	Types      []statusWindowLink
	Window     string
	Windows    []statusWindowLink
	Timeline   timeline.SVG
	Legend     []monitor.State
	History    statusHistory
	Events     []statusEvent
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
	// Count > 1 stands for that many consecutive events alike but for
	// their time and risk, from First to Time: an hourly probe or a
	// client retrying a frozen method would otherwise bury the rest.
	Count int
	First string
}

// statusEventTypes are the account page's event filters.
var statusEventTypes = []string{"state", "signal", "probe"}

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
	typeFilter := r.URL.Query().Get("type")
	if typeFilter != "" && !slices.Contains(statusEventTypes, typeFilter) {
		p.renderError(w, http.StatusBadRequest, "Bad request", "Unknown event type; use one of "+strings.Join(statusEventTypes, ", ")+".", "../")
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
	v := view.DetailOf(snap)
	// The timeline ends at the instant the snapshot describes, so that its
	// right edge shows exactly the state and risk in the header.
	to := v.At
	if to.IsZero() {
		to = now
	}
	from := to.Add(-window)
	hist := p.history(r.Context(), acct, from)

	data := accountData{
		statusCommon: p.common(v.Name, "../", true),
		Detail:       v,
		Href:         url.PathEscape(v.Name),
		SinceAt:      statusWhen(now, v.Since),
		UntilAt:      statusWhen(now, v.Until),
		LimitUntil:   statusWhen(now, v.Limit.Until),
		FreezeSince:  statusWhen(now, v.Freeze.Since),
		FreezeUntil:  statusWhen(now, v.Freeze.DeletionDate),
		Window:       statusDurationName(window),
		History:      hist,
		Next:         nextOf(v.State, v.Name),
		NotMonitored: p.notMonitored()[v.Name],
		Lost:         lost(v.State),
		StateReason:  statusReason(v.Reason),
		TypeFilter:   typeFilter,
	}
	data.Limit.Reason = statusReason(data.Limit.Reason)
	for _, fw := range v.FloodWaits {
		data.Waits = append(data.Waits, statusWait{Method: fw.Method, Type: fw.Type, Wait: limits.FormatDuration(fw.Wait, 2), Until: statusWhen(now, fw.Until)})
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
	data.RiskDrivers = riskDrivers(v.RiskInputs)
	keep := url.Values{}
	if wname != "" {
		keep.Set("window", wname)
	}
	for _, sw := range statusWindows {
		q := url.Values{"window": {sw.Name}}
		if typeFilter != "" {
			q.Set("type", typeFilter)
		}
		data.Windows = append(data.Windows, statusWindowLink{Name: sw.Name, Href: "?" + q.Encode(), Current: sw.D == window})
	}
	data.Types = append(data.Types, statusWindowLink{Name: "all", Href: "?" + keep.Encode(), Current: typeFilter == ""})
	for _, ty := range statusEventTypes {
		q := url.Values{"type": {ty}}
		if wname != "" {
			q.Set("window", wname)
		}
		data.Types = append(data.Types, statusWindowLink{Name: ty, Href: "?" + q.Encode(), Current: ty == typeFilter})
	}
	data.Timeline = timeline.Draw(timeline.Input{
		Events: hist.Events, State: v.State, Risk: v.Risk, From: from, To: to,
		Width: timelineWidth, Height: timelineHeight,
		MissingFrom: hist.MissingFrom, MissingTo: hist.MissingTo,
	})
	data.Legend = data.Timeline.States()
	data.Events = latestEvents(hist.Events, typeFilter, statusRecentEvents)
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

// latestEvents are the account page's rows: newest first, of type ty (""
// for all), consecutive look-alikes grouped, at most n rows.
func latestEvents(evs []monitor.Event, ty string, n int) []statusEvent {
	var out []statusEvent
	for i := len(evs) - 1; i >= 0; i-- {
		if ty != "" && evs[i].Type.String() != ty {
			continue
		}
		se := statusEventOf(evs[i])
		if k := len(out) - 1; k >= 0 && sameEventRow(out[k], se) {
			out[k].Count++
			out[k].First = se.Time
			continue
		}
		if len(out) == n {
			break
		}
		out = append(out, se)
	}
	return out
}

// sameEventRow reports rows that differ only in time and risk.
func sameEventRow(a, b statusEvent) bool {
	return a.Type == b.Type && a.What == b.What && a.From == b.From && a.To == b.To && a.Reason == b.Reason
}

// riskDrivers names what the risk score is made of, largest share first:
// the inputs are internal accumulators on their own scales, so the page
// shows shares ("frozen 99%, flood_wait 1%"), never the raw values beside
// the 0-100 score.
func riskDrivers(in []monitor.RiskInput) string {
	var sum float64
	for _, ri := range in {
		if ri.Value > 0 {
			sum += ri.Value
		}
	}
	if sum <= 0 {
		return ""
	}
	in = slices.Clone(in)
	sort.SliceStable(in, func(i, j int) bool { return in[i].Value > in[j].Value })
	var parts []string
	for _, ri := range in {
		if share := math.Round(100 * ri.Value / sum); share >= 1 {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", ri.Kind, share))
		}
	}
	return strings.Join(parts, ", ")
}

func statusEventOf(e monitor.Event) statusEvent {
	se := statusEvent{Time: statusAbs(e.Time), Type: e.Type.String(), From: e.From, To: e.State, Risk: e.Risk, Reason: statusReason(e.Reason), Count: 1}
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
		s += " (" + limits.FormatDuration(e.Signal.Wait, 2) + ")"
	}
	if e.Method != "" {
		s += " on " + e.Method
	}
	return s
}

// States, colours and severity.

func statusStateList() string {
	var names []string
	for _, s := range view.StatesBySeverity() {
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

// statusBaseCSS is the pages' fixed stylesheet (status.css).
//
//go:embed status.css
var statusBaseCSS string

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
		rel = limits.FormatDuration(d, 2) + " ago"
	default:
		rel = "in " + limits.FormatDuration(-d, 2)
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

// statusDurationName names a window: a preset's name, else the duration.
func statusDurationName(d time.Duration) string {
	for _, sw := range statusWindows {
		if sw.D == d {
			return sw.Name
		}
	}
	return limits.FormatDuration(d, 2)
}

// statusTruncate shortens s to at most n runes, marking the cut.
func statusTruncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Templates.

var statusTemplates = template.Must(template.New("status").Funcs(template.FuncMap{
	"px":       func(v float64) string { return strconv.FormatFloat(timeline.Round1(v), 'f', -1, 64) },
	"addf":     func(a, b float64) float64 { return a + b },
	"subtract": func(a, b float64) float64 { return a - b },
	"risk":     func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"utc":      statusAbs,
	"words":    func(v fmt.Stringer) string { return spamBotWords.Replace(v.String()) },
	"lastPoint": func(ps []timeline.Point) *timeline.Point {
		if len(ps) == 0 {
			return nil
		}
		return &ps[len(ps)-1]
	},
}).Parse(statusTemplateText))

// statusTemplateText is the pages' HTML (status.html.tmpl).
//
//go:embed status.html.tmpl
var statusTemplateText string
