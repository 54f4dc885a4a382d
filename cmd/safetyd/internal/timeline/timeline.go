package timeline

import (
	_ "embed"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
)

// Input is what Draw draws.
type Input struct {
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

// SVG is a drawn timeline: coordinates in the SVG's user units
// (pixels), ready for the template.
type SVG struct {
	Width, Height int
	From, To      time.Time
	// PlotX..PlotX+PlotW is the horizontal extent of both plots.
	PlotX, PlotW float64
	// The state band.
	BandY, BandH float64
	// The risk plot: risk 100 at RiskY, 0 at RiskY+RiskH.
	RiskY, RiskH float64
	Segments     []Segment
	// Risk is the risk line's vertices; RiskPoints the same as an SVG
	// points attribute.
	Risk       []Point
	RiskPoints string
	XTicks     []Tick
	YTicks     []Tick
	AxisY      float64 // baseline of the time labels
	Missing    *Segment
	// FirstSeen, when set, is when the account was first seen within the
	// window; the band starts there.
	FirstSeen time.Time
}

// Segment is a span of the band in one state.
type Segment struct {
	State    monitor.State
	From, To time.Time
	X, W     float64
}

// Point is a vertex of the risk line.
type Point struct {
	T    time.Time
	Risk float64
	X, Y float64
}

// Tick is an axis label at Pos (x for time, y for risk).
type Tick struct {
	Pos   float64
	Label string
}

// States returns the states the band shows, most urgent first, for the
// legend.
func (tl SVG) States() []monitor.State {
	seen := map[monitor.State]bool{}
	for _, s := range tl.Segments {
		seen[s.State] = true
	}
	var out []monitor.State
	for _, st := range view.StatesBySeverity() {
		if seen[st] {
			out = append(out, st)
		}
	}
	return out
}

// Draw lays out an account's state band and risk line over From..To.
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
func Draw(in Input) SVG {
	tl := SVG{Width: in.Width, Height: in.Height, From: in.From, To: in.To}
	tl.PlotX = left
	tl.PlotW = float64(in.Width - left - right)
	tl.BandY, tl.BandH = top, band
	tl.RiskY = top + band + gap
	tl.RiskH = float64(in.Height) - tl.RiskY - bottom
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

	// The band. With no state known at From, a first state event from
	// unknown is the account's first sighting: before it the account was
	// not monitored, and the band stays empty rather than "unknown".
	st, known := in.State, false
	start := in.From
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
			if e.From == monitor.Unknown && e.Time.Before(in.To) {
				start = e.Time
				tl.FirstSeen = e.Time
			}
		}
		break
	}
	segment := func(s monitor.State, from, to time.Time) {
		if to.After(from) {
			tl.Segments = append(tl.Segments, Segment{State: s, From: from, To: to, X: x(from), W: x(to) - x(from)})
		}
	}
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
		p := Point{T: t, Risk: r, X: Round1(x(t)), Y: Round1(y(r))}
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
		tl.Missing = &Segment{From: mf, To: mt, X: x(mf), W: x(mt) - x(mf)}
	}

	for _, t := range ticks(in.From, in.To) {
		pos := Round1(x(t.t))
		if pos-tl.PlotX < tickClear {
			continue // its label would run into the axis's "UTC"
		}
		tl.XTicks = append(tl.XTicks, Tick{Pos: pos, Label: t.label})
	}
	for _, r := range []float64{0, 50, 100} {
		tl.YTicks = append(tl.YTicks, Tick{Pos: Round1(y(r)), Label: strconv.Itoa(int(r))})
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

// Round1 rounds to a tenth: SVG coordinates need no more, and shorter
// numbers keep the page small.
func Round1(v float64) float64 { return math.Round(v*10) / 10 }

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

// steps are the spacings the time axis may use; the first that
// gives at most maxTicks labels wins.
var steps = []time.Duration{
	time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour,
}

const maxTicks = 8

type tick struct {
	t     time.Time
	label string
}

// ticks returns the time axis labels: round UTC instants (hours
// on the hour, days at midnight UTC) between from and to.
func ticks(from, to time.Time) []tick {
	span := to.Sub(from)
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= maxTicks {
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
	var out []tick
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
		out = append(out, tick{t: t, label: label})
	}
	return out
}

// Margins of the timeline, in pixels: room for the risk labels on the
// left, for the last time label on the right, and for the time axis below.
const (
	left   = 44
	right  = 28
	top    = 8
	band   = 26
	gap    = 14
	bottom = 30
	// tickClear keeps time labels this far right of the plot's
	// left edge, where "UTC" stands.
	tickClear = 20
)
