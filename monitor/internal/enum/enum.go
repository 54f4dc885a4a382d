// Package enum gives tgsafety's small integer enums (signal kinds, account
// states, SpamBot states) their text forms from one table each. The names
// are label values and JSON, so every enum must print, parse and
// round-trip the same way; writing that once keeps them from drifting.
package enum

import (
	"fmt"
	"strconv"
)

// Names lists an enum's text forms, indexed by value.
type Names[T ~uint8] []string

// String returns v's name, or "invalid" for a value outside the table
// (only a conversion from a raw integer can produce one).
func (n Names[T]) String(v T) string {
	if int(v) >= len(n) {
		return "invalid"
	}
	return n[v]
}

// Parse is the inverse of String.
func (n Names[T]) Parse(s string) (T, bool) {
	for i, name := range n {
		if name == s {
			return T(i), true
		}
	}
	var zero T
	return zero, false
}

// All returns every value in order, so that exporters can pre-create one
// time series per value.
func (n Names[T]) All() []T {
	out := make([]T, len(n))
	for i := range out {
		out[i] = T(i)
	}
	return out
}

// Unmarshal decodes a name into dst; what names the enum in the error.
func (n Names[T]) Unmarshal(what string, b []byte, dst *T) error {
	v, ok := n.Parse(string(b))
	if !ok {
		return fmt.Errorf("unknown %s %s", what, strconv.Quote(string(b)))
	}
	*dst = v
	return nil
}
