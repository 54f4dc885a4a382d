package timeline

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
)

// Timeline: pure layout.

var tlFrom = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const tlDay = 24 * time.Hour

func stateEvent(t time.Time, from, to monitor.State, risk float64) monitor.Event {
	return monitor.Event{Time: t, Type: monitor.EventState, From: from, State: to, Risk: risk}
}

func signalEventAt(t time.Time, state monitor.State, risk float64) monitor.Event {
	return monitor.Event{Time: t, Type: monitor.EventSignal, Method: "messages.sendMessage",
		Signal: signal.Parse(400, "PEER_FLOOD"), From: state, State: state, Risk: risk}
}

func drawDay(events []monitor.Event, st monitor.State, risk float64) SVG {
	return Draw(Input{Events: events, State: st, Risk: risk, From: tlFrom, To: tlFrom.Add(tlDay), Width: 1000, Height: 200})
}

// xAt is where the plot puts an instant of the day.
func xAt(tl SVG, d time.Duration) float64 {
	return tl.PlotX + tl.PlotW*float64(d)/float64(tlDay)
}

func near(a, b float64) bool { return math.Abs(a-b) < 0.11 }

type seg struct {
	st       monitor.State
	from, to time.Duration
}

func checkSegments(t *testing.T, tl SVG, want []seg) {
	t.Helper()
	if len(tl.Segments) != len(want) {
		t.Fatalf("%d segments %+v, want %+v", len(tl.Segments), tl.Segments, want)
	}
	for i, w := range want {
		s := tl.Segments[i]
		if s.State != w.st || !s.From.Equal(tlFrom.Add(w.from)) || !s.To.Equal(tlFrom.Add(w.to)) {
			t.Errorf("segment %d = %v %v..%v, want %v %v..%v", i, s.State, s.From, s.To, w.st, tlFrom.Add(w.from), tlFrom.Add(w.to))
		}
		if !near(s.X, xAt(tl, w.from)) || !near(s.X+s.W, xAt(tl, w.to)) {
			t.Errorf("segment %d spans x %v..%v, want %v..%v", i, s.X, s.X+s.W, xAt(tl, w.from), xAt(tl, w.to))
		}
	}
}

func TestTimelineSegmentBoundaries(t *testing.T) {
	tl := drawDay([]monitor.Event{
		stateEvent(tlFrom.Add(2*time.Hour), monitor.OK, monitor.Throttled, 5),
		stateEvent(tlFrom.Add(3*time.Hour), monitor.Throttled, monitor.OK, 4),
		signalEventAt(tlFrom.Add(10*time.Hour), monitor.Limited, 60),
		stateEvent(tlFrom.Add(10*time.Hour), monitor.OK, monitor.Limited, 60),
	}, monitor.Limited, 58)
	checkSegments(t, tl, []seg{
		{monitor.OK, 0, 2 * time.Hour},
		{monitor.Throttled, 2 * time.Hour, 3 * time.Hour},
		{monitor.OK, 3 * time.Hour, 10 * time.Hour},
		{monitor.Limited, 10 * time.Hour, tlDay},
	})
	// The band covers the plot exactly, without gaps or overlaps.
	if first, last := tl.Segments[0], tl.Segments[len(tl.Segments)-1]; first.X != tl.PlotX || !near(last.X+last.W, tl.PlotX+tl.PlotW) {
		t.Errorf("band spans %v..%v, plot %v..%v", first.X, last.X+last.W, tl.PlotX, tl.PlotX+tl.PlotW)
	}
	if got := tl.States(); !slices.Equal(got, []monitor.State{monitor.Limited, monitor.Throttled, monitor.OK}) {
		t.Errorf("legend %v", got)
	}
	// Input order does not matter (the ring and the store are merged).
	shuffled := drawDay([]monitor.Event{
		stateEvent(tlFrom.Add(10*time.Hour), monitor.OK, monitor.Limited, 60),
		stateEvent(tlFrom.Add(3*time.Hour), monitor.Throttled, monitor.OK, 4),
		stateEvent(tlFrom.Add(2*time.Hour), monitor.OK, monitor.Throttled, 5),
	}, monitor.Limited, 58)
	if len(shuffled.Segments) != 4 || shuffled.Segments[1].State != monitor.Throttled {
		t.Errorf("unsorted input: %+v", shuffled.Segments)
	}
}

func TestTimelineStateBeforeWindow(t *testing.T) {
	want := []seg{{monitor.Limited, 0, 6 * time.Hour}, {monitor.OK, 6 * time.Hour, tlDay}}
	before := stateEvent(tlFrom.Add(-5*time.Hour), monitor.Unknown, monitor.Limited, 60)
	inside := stateEvent(tlFrom.Add(6*time.Hour), monitor.Limited, monitor.OK, 40)
	// From the last state event before the window...
	checkSegments(t, drawDay([]monitor.Event{before, inside}, monitor.OK, 30), want)
	// ...or, without it, from the state the first one in the window left.
	checkSegments(t, drawDay([]monitor.Event{inside}, monitor.OK, 30), want)
	// Only an event before the window: its state lasts the whole window.
	checkSegments(t, drawDay([]monitor.Event{before}, monitor.Limited, 60), []seg{{monitor.Limited, 0, tlDay}})
	// An event exactly at the window's start is the starting state.
	checkSegments(t, drawDay([]monitor.Event{stateEvent(tlFrom, monitor.OK, monitor.Frozen, 90)}, monitor.Frozen, 90),
		[]seg{{monitor.Frozen, 0, tlDay}})
}

func TestTimelineEmptyHistory(t *testing.T) {
	tl := drawDay(nil, monitor.Watch, 12)
	checkSegments(t, tl, []seg{{monitor.Watch, 0, tlDay}})
	if len(tl.Risk) != 1 || tl.Risk[0].Risk != 12 || !near(tl.Risk[0].X, tl.PlotX+tl.PlotW) || !near(tl.Risk[0].Y, tl.RiskY+tl.RiskH*0.88) {
		t.Fatalf("risk %+v, want one point at the right edge at 12", tl.Risk)
	}
	if tl.Missing != nil {
		t.Errorf("missing span %+v", tl.Missing)
	}
}

func TestTimelineIgnoresNonStateEventsForTheBand(t *testing.T) {
	// A signal reported late carries the state after it was applied, not
	// the state at its time: only state events move the band.
	tl := drawDay([]monitor.Event{signalEventAt(tlFrom.Add(time.Hour), monitor.Limited, 60)}, monitor.OK, 10)
	checkSegments(t, tl, []seg{{monitor.OK, 0, tlDay}})
	if len(tl.Risk) == 0 || tl.Risk[0].Risk != 60 {
		t.Errorf("the signal's risk is not on the line: %+v", tl.Risk)
	}
}

func TestTimelineRiskClamped(t *testing.T) {
	tl := drawDay([]monitor.Event{
		signalEventAt(tlFrom.Add(1*time.Hour), monitor.OK, 150),
		signalEventAt(tlFrom.Add(2*time.Hour), monitor.OK, -20),
		signalEventAt(tlFrom.Add(3*time.Hour), monitor.OK, math.NaN()),
		signalEventAt(tlFrom.Add(4*time.Hour), monitor.OK, math.Inf(1)),
	}, monitor.OK, 30)
	var risks []float64
	for _, p := range tl.Risk {
		if p.Y < tl.RiskY || p.Y > tl.RiskY+tl.RiskH || p.X < tl.PlotX || p.X > tl.PlotX+tl.PlotW {
			t.Errorf("point %+v outside the plot", p)
		}
		risks = append(risks, p.Risk)
	}
	// 100, fall to 0, NaN skipped, +Inf is 100 (a step up from 0), then
	// down to 30 at the end.
	if want := []float64{100, 0, 0, 100, 30}; !slices.Equal(risks, want) {
		t.Errorf("risks %v, want %v", risks, want)
	}
	if strings.Contains(tl.RiskPoints, "NaN") || strings.Contains(tl.RiskPoints, "Inf") || strings.Contains(tl.RiskPoints, "-") {
		t.Errorf("points %q", tl.RiskPoints)
	}
}

func TestTimelineRiskSteps(t *testing.T) {
	tl := drawDay([]monitor.Event{
		signalEventAt(tlFrom.Add(1*time.Hour), monitor.OK, 10),
		signalEventAt(tlFrom.Add(5*time.Hour), monitor.OK, 50),
		stateEvent(tlFrom.Add(9*time.Hour), monitor.OK, monitor.OK, 20),
	}, monitor.OK, 20)
	type pt struct {
		at   time.Duration
		risk float64
	}
	var got []pt
	for _, p := range tl.Risk {
		got = append(got, pt{p.T.Sub(tlFrom), p.Risk})
	}
	// The rise at 5h is a step (held at 10 until then); the fall to 20 a
	// slope; 20 at 9h and at the end are distinct points, same height.
	want := []pt{{time.Hour, 10}, {5 * time.Hour, 10}, {5 * time.Hour, 50}, {9 * time.Hour, 20}, {tlDay, 20}}
	if !slices.Equal(got, want) {
		t.Fatalf("vertices %v, want %v", got, want)
	}
	if n := len(strings.Fields(tl.RiskPoints)); n != len(want) {
		t.Errorf("points attribute has %d points: %q", n, tl.RiskPoints)
	}
	x0, y0 := xAt(tl, time.Hour), tl.RiskY+tl.RiskH*0.9
	if p := tl.Risk[0]; !near(p.X, x0) || !near(p.Y, y0) {
		t.Errorf("first point %v,%v, want %v,%v", p.X, p.Y, x0, y0)
	}
}

func TestTimelineEventsOutsideWindow(t *testing.T) {
	tl := drawDay([]monitor.Event{
		// Before the window: 80, falling to 40 at 12h; the line enters
		// the window halfway, at 60.
		signalEventAt(tlFrom.Add(-12*time.Hour), monitor.OK, 80),
		stateEvent(tlFrom.Add(12*time.Hour), monitor.OK, monitor.Watch, 40),
		// After the window: ignored by the band and the line.
		stateEvent(tlFrom.Add(tlDay+time.Hour), monitor.Watch, monitor.Banned, 100),
	}, monitor.Watch, 35)
	checkSegments(t, tl, []seg{{monitor.OK, 0, 12 * time.Hour}, {monitor.Watch, 12 * time.Hour, tlDay}})
	if len(tl.Risk) != 3 {
		t.Fatalf("risk %+v", tl.Risk)
	}
	if p := tl.Risk[0]; !p.T.Equal(tlFrom) || p.Risk != 60 || p.X != tl.PlotX {
		t.Errorf("the line enters at %+v, want 60 at the window's start", p)
	}
	if p := tl.Risk[2]; !p.T.Equal(tlFrom.Add(tlDay)) || p.Risk != 35 {
		t.Errorf("the line ends at %+v, want the current risk at the end", p)
	}
	// Only events before the window: the line starts at the window's
	// edge, interpolated towards the current value.
	tl = drawDay([]monitor.Event{signalEventAt(tlFrom.Add(-tlDay), monitor.OK, 50)}, monitor.OK, 30)
	if len(tl.Risk) != 2 || tl.Risk[0].Risk != 40 || tl.Risk[1].Risk != 30 {
		t.Errorf("risk %+v, want 40 then 30", tl.Risk)
	}
}

func TestTimelineDegenerate(t *testing.T) {
	tl := Draw(Input{State: monitor.OK, Risk: 5, From: tlFrom, To: tlFrom, Width: 1000, Height: 200})
	if len(tl.Segments) != 0 || len(tl.Risk) != 0 || tl.RiskPoints != "" {
		t.Errorf("empty window drew %+v", tl)
	}
	tl = Draw(Input{State: monitor.OK, From: tlFrom, To: tlFrom.Add(time.Hour), Width: 10, Height: 10})
	if len(tl.Segments) != 0 {
		t.Errorf("no room, yet drew %+v", tl.Segments)
	}
}

func TestTimelineMissingSpan(t *testing.T) {
	tl := Draw(Input{State: monitor.OK, From: tlFrom, To: tlFrom.Add(tlDay), Width: 1000, Height: 200,
		MissingFrom: tlFrom.Add(-time.Hour), MissingTo: tlFrom.Add(2 * time.Hour)})
	m := tl.Missing
	if m == nil || !m.From.Equal(tlFrom) || !m.To.Equal(tlFrom.Add(2*time.Hour)) || m.X != tl.PlotX || !near(m.X+m.W, xAt(tl, 2*time.Hour)) {
		t.Fatalf("missing %+v", m)
	}
	tl = Draw(Input{State: monitor.OK, From: tlFrom, To: tlFrom.Add(tlDay), Width: 1000, Height: 200,
		MissingFrom: tlFrom.Add(-3 * time.Hour), MissingTo: tlFrom.Add(-time.Hour)})
	if tl.Missing != nil {
		t.Errorf("a span before the window is shaded: %+v", tl.Missing)
	}
}

func TestTimelineTimeAxis(t *testing.T) {
	tl := drawDay(nil, monitor.OK, 0)
	var labels []string
	for _, tk := range tl.XTicks {
		labels = append(labels, tk.Label)
	}
	// No label at the plot's left edge: it would run into "UTC".
	want := []string{"03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "Mar 2"}
	if !slices.Equal(labels, want) {
		t.Errorf("labels %v, want %v", labels, want)
	}
	if tl.XTicks[0].Pos-tl.PlotX < tickClear || !near(tl.XTicks[3].Pos, xAt(tl, 12*time.Hour)) {
		t.Errorf("ticks at %+v", tl.XTicks)
	}
	// A window that does not start on the hour is labelled on round UTC
	// times, also when the instants come in another zone.
	zone := time.FixedZone("UTC+3", 3*3600)
	from := time.Date(2026, 3, 1, 10, 17, 0, 0, time.UTC).In(zone)
	ts := ticks(from, from.Add(time.Hour))
	if len(ts) == 0 || ts[0].label != "10:30" || !ts[0].t.Equal(time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)) || len(ts) > maxTicks {
		t.Errorf("1h window from 10:17 UTC: %+v", ts)
	}
	// Weeks start on Mondays (the zero time was one): 2026-03-02.
	ts = ticks(tlFrom, tlFrom.Add(30*tlDay))
	if len(ts) == 0 || len(ts) > maxTicks || ts[0].label != "Mar 2" {
		t.Errorf("30d window: %+v", ts)
	}
	if got := len(tl.YTicks); got != 3 || tl.YTicks[0].Label != "0" || tl.YTicks[2].Pos != tl.RiskY {
		t.Errorf("risk axis %+v", tl.YTicks)
	}
}
