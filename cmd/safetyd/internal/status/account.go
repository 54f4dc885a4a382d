package status

import (
	_ "embed"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/timeline"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/limits"
)

// Account.

// accountData is the account page.
type accountData struct {
	pageCommon
	view.Detail
	Href         string
	SinceAt      timeText
	UntilAt      timeText
	LimitUntil   timeText
	FreezeSince  timeText
	FreezeUntil  timeText
	Waits        []wait
	SpamBotAt    timeText
	SpamBotUntil timeText
	SpamBotNote  string
	// LastSignalText and RiskDrivers format view.Detail's LastSignal
	// and RiskInputs.
	LastSignalText string
	LastSignalAt   timeText
	RiskDrivers    string
	Next           *nextStep
	NotMonitored   string
	Lost           bool
	// StateReason is the state's reason, dates made readable.
	StateReason string
	// TypeFilter restricts the events table (?type=), or "".
	TypeFilter string
	Types      []windowLink
	Window     string
	Windows    []windowLink
	Timeline   timeline.SVG
	Legend     []monitor.State
	History    historyData
	Events     []event
}

type wait struct {
	Method, Type, Wait string
	Until              timeText
}

type windowLink struct {
	Name, Href string
	Current    bool
}

// event is one row of the account page's events table.
type event struct {
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

// eventTypes are the account page's event filters.
var eventTypes = []string{"state", "signal", "probe"}

// account serves `/accounts/{name}`.
func (p *page) account(w http.ResponseWriter, r *http.Request) {
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
	if typeFilter != "" && !slices.Contains(eventTypes, typeFilter) {
		p.renderError(w, http.StatusBadRequest, "Bad request", "Unknown event type; use one of "+strings.Join(eventTypes, ", ")+".", "../")
		return
	}
	window, wname := p.d.Window, ""
	if v := r.URL.Query().Get("window"); v != "" {
		for _, sw := range windows {
			if sw.Name == v {
				window, wname = sw.D, sw.Name
			}
		}
		if wname == "" {
			names := make([]string, len(windows))
			for i, sw := range windows {
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
		pageCommon:   p.common(v.Name, "../", true),
		Detail:       v,
		Href:         url.PathEscape(v.Name),
		SinceAt:      whenOf(now, v.Since),
		UntilAt:      whenOf(now, v.Until),
		LimitUntil:   whenOf(now, v.Limit.Until),
		FreezeSince:  whenOf(now, v.Freeze.Since),
		FreezeUntil:  whenOf(now, v.Freeze.DeletionDate),
		Window:       durationName(window),
		History:      hist,
		Next:         nextOf(v.State, v.Name),
		NotMonitored: p.notMonitored()[v.Name],
		Lost:         lost(v.State),
		StateReason:  reasonText(v.Reason),
		TypeFilter:   typeFilter,
	}
	data.Limit.Reason = reasonText(data.Limit.Reason)
	for _, fw := range v.FloodWaits {
		data.Waits = append(data.Waits, wait{Method: fw.Method, Type: fw.Type, Wait: limits.FormatDuration(fw.Wait, 2), Until: whenOf(now, fw.Until)})
	}
	if sb := v.SpamBot; sb != nil {
		data.SpamBotAt = whenOf(now, sb.At)
		data.SpamBotUntil = whenOf(now, sb.Until)
	}
	// Why SpamBot's answer was not understood is only in the snapshot
	// (the API leaves it out).
	if sb := snap.SpamBot; sb != nil {
		data.SpamBotNote = sb.Reason
	}
	if ls := v.LastSignal; ls != nil {
		data.LastSignalText = signalText(*ls)
		data.LastSignalAt = whenOf(now, ls.Time)
	}
	data.RiskDrivers = riskDrivers(v.RiskInputs)
	keep := url.Values{}
	if wname != "" {
		keep.Set("window", wname)
	}
	for _, sw := range windows {
		q := url.Values{"window": {sw.Name}}
		if typeFilter != "" {
			q.Set("type", typeFilter)
		}
		data.Windows = append(data.Windows, windowLink{Name: sw.Name, Href: "?" + q.Encode(), Current: sw.D == window})
	}
	data.Types = append(data.Types, windowLink{Name: "all", Href: "?" + keep.Encode(), Current: typeFilter == ""})
	for _, ty := range eventTypes {
		q := url.Values{"type": {ty}}
		if wname != "" {
			q.Set("window", wname)
		}
		data.Types = append(data.Types, windowLink{Name: ty, Href: "?" + q.Encode(), Current: ty == typeFilter})
	}
	data.Timeline = timeline.Draw(timeline.Input{
		Events: hist.Events, State: v.State, Risk: v.Risk, From: from, To: to,
		Width: timelineWidth, Height: timelineHeight,
		MissingFrom: hist.MissingFrom, MissingTo: hist.MissingTo,
	})
	data.Legend = data.Timeline.States()
	data.Events = latestEvents(hist.Events, typeFilter, recentEvents)
	p.render(w, http.StatusOK, "account", data)
}
