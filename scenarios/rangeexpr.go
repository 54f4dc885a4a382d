package scenarios

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/monitor/limits"
)

// Range is a closed interval of acceptable values, written in a scenario
// as "5", "3..7", ">= 3", "> 3", "<= 3" or "< 3". Durations ("16h",
// ">= 30m") are kept in seconds.
type Range struct {
	Min, Max float64
	// Text is the range as written, for messages.
	Text string
	// Duration says the values are durations (for messages).
	Duration bool
}

// Contains reports whether v is within the range.
func (r Range) Contains(v float64) bool { return v >= r.Min && v <= r.Max }

// String returns the range as written.
func (r Range) String() string { return r.Text }

// format renders a value of the range's kind.
func (r Range) format(v float64) string {
	if r.Duration {
		return time.Duration(math.Round(v * float64(time.Second))).String()
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// parseRange reads a range of numbers, or of durations when dur is set.
// Integer ranges reject fractions so that "2.5" peer floods is an error.
func parseRange(s string, dur, integer bool) (Range, error) {
	text := strings.TrimSpace(s)
	num := func(x string) (float64, error) {
		x = strings.TrimSpace(x)
		if dur {
			d, err := limits.ParseDuration(x)
			if err != nil {
				return 0, err
			}
			if d < 0 {
				return 0, fmt.Errorf("negative duration %q", x)
			}
			return d.D().Seconds(), nil
		}
		v, err := strconv.ParseFloat(x, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("%q is not a number", x)
		}
		if integer && v != math.Trunc(v) {
			return 0, fmt.Errorf("%q is not a whole number", x)
		}
		if integer && v < 0 {
			return 0, fmt.Errorf("%q is negative; counts start at 0", x)
		}
		return v, nil
	}
	r := Range{Text: text, Duration: dur, Min: math.Inf(-1), Max: math.Inf(1)}
	if integer || dur {
		r.Min = 0
	}
	ops := []string{">=", "<=", ">", "<"}
	for _, op := range ops {
		if !strings.HasPrefix(text, op) {
			continue
		}
		v, err := num(text[len(op):])
		if err != nil {
			return Range{}, err
		}
		switch op {
		case ">=":
			r.Min = v
		case "<=":
			r.Max = v
		case ">":
			r.Min = math.Nextafter(v, math.Inf(1))
			if integer || dur {
				r.Min = v + 1e-9
			}
		case "<":
			r.Max = math.Nextafter(v, math.Inf(-1))
			if integer || dur {
				r.Max = v - 1e-9
			}
		}
		if r.Min > r.Max {
			return Range{}, fmt.Errorf("range %q is empty", text)
		}
		return r, nil
	}
	if lo, hi, ok := strings.Cut(text, ".."); ok {
		a, err := num(lo)
		if err != nil {
			return Range{}, err
		}
		b, err := num(hi)
		if err != nil {
			return Range{}, err
		}
		if a > b {
			return Range{}, fmt.Errorf("range %q is empty (%s > %s)", text, strings.TrimSpace(lo), strings.TrimSpace(hi))
		}
		r.Min, r.Max = a, b
		return r, nil
	}
	if text == "" {
		return Range{}, fmt.Errorf("empty range (write 5, 3..7, >= 3 or < 3)")
	}
	v, err := num(text)
	if err != nil {
		return Range{}, fmt.Errorf("%v (write 5, 3..7, >= 3 or < 3)", err)
	}
	r.Min, r.Max = v, v
	return r, nil
}
