package status

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/timeline"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
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
	// defaultWindow is the timeline's span when Deps.Window
	// is not set.
	defaultWindow = 24 * time.Hour
	// recentEvents is how many events the account page lists.
	recentEvents = 50
	// reasonChars is how much of a reason the fleet table shows
	// (the whole reason is in the cell's title).
	reasonChars = 60
	// refreshSeconds is the pages' <meta http-equiv=refresh>.
	refreshSeconds = 30
	// timelineWidth and timelineHeight are the account timeline's size in
	// CSS pixels.
	timelineWidth, timelineHeight = 960, 230
)

// Deps is what the status page needs from the running daemon.
type Deps struct {
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
	// Others, on a PostgreSQL fleet, returns the configured accounts as
	// stored (view.RemoteOf), so that the fleet page lists those other
	// replicas run too; nil with one daemon.
	Others func(ctx context.Context) ([]view.Detail, error)
}

// page is the handler New returns.
type page struct {
	d   Deps
	mux *http.ServeMux
	// historyLimit bounds the account page's one store query
	// (store.MaxLimit; tests lower it to exercise truncation).
	historyLimit int
}

// windows are the spans the account page offers, so that a link
// picks one and a typo is refused rather than guessed.
var windows = []struct {
	Name string
	D    time.Duration
}{
	{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour},
}

// New returns the status page handler: GET/HEAD `/` and
// `/accounts/{name}`, an HTML 404 for every other path and an HTML 405 for
// other methods. Its links are relative, so it works mounted at `/` or,
// through http.StripPrefix, under a prefix ending in a slash.
func New(d Deps) http.Handler {
	if d.Monitor == nil || d.Now == nil {
		// A wiring mistake, not a runtime condition: fail at start-up.
		panic("status.New: Monitor and Now are required")
	}
	if d.Window <= 0 {
		d.Window = defaultWindow
	}
	p := &page{d: d, mux: http.NewServeMux(), historyLimit: store.MaxLimit}
	p.mux.HandleFunc("/{$}", p.fleet)
	p.mux.HandleFunc("/accounts/{name}", p.account)
	p.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, http.StatusNotFound, "Not found", "There is no page at this address.", basePath(r.URL.Path))
	})
	return p
}

// csp allows inline styles and nothing else: no scripts, no fetches,
// no frames, no forms. The page needs nothing more, and a reason that
// escaped escaping still could not run or load anything.
const csp = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP sets the headers every page carries, refuses methods other
// than GET and HEAD, and routes.
func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		p.renderError(w, http.StatusMethodNotAllowed, "Method not allowed",
			"This page only reads: use GET or HEAD. Changes go through the token-protected JSON API.", basePath(r.URL.Path))
		return
	}
	p.mux.ServeHTTP(w, r)
}

// render executes a template into a buffer first, so that a template error
// is a clean 500 rather than half a page.
func (p *page) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorData is the error page.
type errorData struct {
	pageCommon
	Message string
}

func (p *page) renderError(w http.ResponseWriter, status int, title, msg, base string) {
	p.render(w, status, "error", errorData{
		pageCommon: p.common(title, base, false),
		Message:    msg,
	})
}

// basePath is the relative path from the page at path back to the fleet
// page: "./" for /x, "../" for /accounts/x.
func basePath(path string) string {
	if n := strings.Count(path, "/") - 1; n > 0 {
		return strings.Repeat("../", n)
	}
	return "./"
}

// pageCommon is what every page's layout shows.
type pageCommon struct {
	Title   string
	Version string
	Now     string
	// Base is the relative path of the fleet page from this page ("./"
	// or "../"), so that links work wherever the page is mounted.
	Base    string
	Refresh int
	CSS     template.CSS
}

func (p *page) common(title, base string, refresh bool) pageCommon {
	c := pageCommon{Title: title, Version: p.d.Version, Now: absTime(p.d.Now()), Base: base, CSS: css}
	if refresh {
		c.Refresh = refreshSeconds
	}
	return c
}

// Templates.

var templates = template.Must(template.New("status").Funcs(template.FuncMap{
	"px":       func(v float64) string { return strconv.FormatFloat(timeline.Round1(v), 'f', -1, 64) },
	"addf":     func(a, b float64) float64 { return a + b },
	"subtract": func(a, b float64) float64 { return a - b },
	"risk":     func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"utc":      absTime,
	"words":    func(v fmt.Stringer) string { return spamBotWords.Replace(v.String()) },
	"lastPoint": func(ps []timeline.Point) *timeline.Point {
		if len(ps) == 0 {
			return nil
		}
		return &ps[len(ps)-1]
	},
}).Parse(templateText))

// templateText is the pages' HTML (status.html.tmpl).
//
//go:embed status.html.tmpl
var templateText string
