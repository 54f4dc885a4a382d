package status

import (
	_ "embed"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/dashboards"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// Fleet.

// fleetData is the fleet page.
type fleetData struct {
	pageCommon
	Counts []stateCount
	Total  int
	// Filter is the state the table is restricted to (?state=), or "".
	Filter string
	Rows   []fleetRow
	// OthersFailed is set when the accounts other replicas run could
	// not be read from the store: the page shows this replica's alone.
	OthersFailed bool
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
	Since, Until timeText
	// UntilWhat says what Until is when it is not the end of the state:
	// for frozen, the date Telegram deletes the account.
	UntilWhat string
	Next      *nextStep
	// NotMonitored says why nobody watches the account ("" if somebody
	// does).
	NotMonitored string
	Risk         float64
	// Replica names the replica that runs the account when another one
	// does (the row is then its stored snapshot, as of AsOf).
	Replica string
	AsOf    timeText
	// Lost is set for banned and dead accounts: their risk score no
	// longer says anything (a dead session scores low), so the page shows
	// the loss instead of a reassuring bar.
	Lost          bool
	Waits         int
	WaitUntil     timeText
	WaitMethods   string
	LastSignal    string
	LastSignalAt  timeText
	SpamBot       string
	SpamBotAt     timeText
	SpamBotReason string
}

// fleet serves `/`: one snapshot per account this daemon runs, no store
// query, so that it stays cheap for a thousand accounts; on a fleet of
// replicas, one query of the stored snapshots for the accounts the
// others run.
func (p *page) fleet(w http.ResponseWriter, r *http.Request) {
	var filter monitor.State
	filtered := false
	if v := r.URL.Query().Get("state"); v != "" {
		st, ok := monitor.ParseState(v)
		if !ok {
			p.renderError(w, http.StatusBadRequest, "Bad request", "Unknown state filter; use one of "+stateList()+".", "./")
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
	total := len(accts)
	var othersFailed bool
	if p.d.Others != nil {
		others, err := p.d.Others(r.Context())
		othersFailed = err != nil
		local := make(map[string]bool, len(accts))
		for _, a := range accts {
			local[a.Name()] = true
		}
		for _, v := range others {
			if local[v.Name] {
				continue
			}
			total++
			counts[v.State]++
			if filtered && v.State != filter {
				continue
			}
			row := fleetRowOf(v, now)
			// Its history is on the replica that runs it.
			row.Href, row.Replica, row.AsOf = "", v.Replica, whenOf(now, v.AsOf)
			rows = append(rows, row)
		}
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
	data := fleetData{pageCommon: p.common("Fleet", "./", true), Total: total, Rows: rows, OthersFailed: othersFailed}
	if filtered {
		data.Filter = filter.String()
	}
	for _, st := range view.StatesBySeverity() {
		data.Counts = append(data.Counts, stateCount{State: st, N: counts[st]})
	}
	p.render(w, http.StatusOK, "fleet", data)
}

func fleetRowOf(v view.Detail, now time.Time) fleetRow {
	reason := reasonText(v.Reason)
	row := fleetRow{
		Name: v.Name, Href: "./accounts/" + url.PathEscape(v.Name), State: v.State,
		Reason: reason, ReasonShort: truncate(reason, reasonChars),
		Since: whenOf(now, v.Since), Until: whenOf(now, v.Until), Risk: v.Risk,
		Waits: len(v.FloodWaits), Next: nextOf(v.State, v.Name), Lost: lost(v.State),
	}
	if v.State == monitor.Frozen && !v.Freeze.DeletionDate.IsZero() {
		// A freeze has no end of its own; what the operator must know
		// is when Telegram deletes the account.
		row.Until, row.UntilWhat = whenOf(now, v.Freeze.DeletionDate), "deletion"
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
		row.WaitUntil = whenOf(now, until)
		row.WaitMethods = strings.Join(methods, ", ")
	}
	if ls := v.LastSignal; ls != nil {
		row.LastSignal = signalText(*ls)
		row.LastSignalAt = whenOf(now, ls.Time)
	}
	if sb := v.SpamBot; sb != nil {
		row.SpamBot = spamBotText(sb.State, sb.Until, now)
		row.SpamBotAt = whenOf(now, sb.At)
	}
	return row
}

// nextStep is an account's next step, as the pages show it.
type nextStep struct {
	Text, Runbook string
	// Short is Text's first sentence, for the fleet table (the whole text
	// is its tooltip and on the account page).
	Short string
}

func nextOf(st monitor.State, name string) *nextStep {
	n, ok := dashboards.NextStepFor(st, name)
	if !ok {
		return nil
	}
	short, _, _ := strings.Cut(n.Text, ". ")
	if short != n.Text {
		short += "."
	}
	return &nextStep{Text: n.Text, Runbook: n.Runbook(), Short: short}
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
			return "limited until " + shortTime(until)
		}
		return "was limited until " + shortTime(until)
	case spambot.LimitedPermanent:
		return "limited, no end date"
	}
	return st.String()
}

// shortTime formats an instant compactly, for tables: "Dec 7 18:46 UTC".
func shortTime(t time.Time) string { return t.UTC().Format("Jan 2 15:04") + " UTC" }

// rfc3339InText finds the machine-readable instants that monitor reasons
// carry, so that the page can show them as people read dates.
var rfc3339InText = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z\b`)

// spamBotWords spells SpamBot's state labels, which monitor reasons carry
// as they are exported, in words.
var spamBotWords = strings.NewReplacer(
	spambot.LimitedTemporary.String(), "limited",
	spambot.LimitedPermanent.String(), "limited with no end date",
)

// reasonText rewrites a reason for people: instants as "2026-12-07
// 18:46 UTC" instead of RFC 3339, SpamBot's states in words.
func reasonText(s string) string {
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
func (p *page) notMonitored() map[string]string {
	if p.d.NotMonitored == nil {
		return nil
	}
	return p.d.NotMonitored()
}
