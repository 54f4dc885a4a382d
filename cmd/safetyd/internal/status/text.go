package status

import (
	_ "embed"
	"time"

	"github.com/tgsafety/tgsafety/monitor/limits"
)

// Formatting.

// timeText is an instant as the pages show it: relative to now, with the
// UTC time in a tooltip and in the datetime attribute.
type timeText struct {
	Rel, Abs, ISO string
}

func whenOf(now, t time.Time) timeText {
	if t.IsZero() {
		return timeText{}
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
	return timeText{Rel: rel, Abs: absTime(t), ISO: t.UTC().Format(time.RFC3339)}
}

// absTime formats an instant in UTC, the page's only time zone.
func absTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// durationName names a window: a preset's name, else the duration.
func durationName(d time.Duration) string {
	for _, sw := range windows {
		if sw.D == d {
			return sw.Name
		}
	}
	return limits.FormatDuration(d, 2)
}

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
