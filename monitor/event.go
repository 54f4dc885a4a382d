package monitor

import (
	"time"

	"github.com/tgsafety/tgsafety/monitor/signal"
)

// EventType says what an Event records.
type EventType uint8

// The event types.
const (
	// EventSignal is a classified adverse RPC outcome.
	EventSignal EventType = iota + 1
	// EventState is a change of the account's state.
	EventState
	// EventProbe is the result of an active probe (SpamBot, freeze, ...).
	EventProbe
)

var eventTypeNames = map[EventType]string{
	EventSignal: "signal",
	EventState:  "state",
	EventProbe:  "probe",
}

// String returns the event type's name as used in JSON and storage.
func (t EventType) String() string {
	if n, ok := eventTypeNames[t]; ok {
		return n
	}
	return "invalid"
}

// MarshalText encodes the type as its name.
func (t EventType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes a type name written by MarshalText.
func (t *EventType) UnmarshalText(b []byte) error {
	for k, n := range eventTypeNames {
		if n == string(b) {
			*t = k
			return nil
		}
	}
	return &ParseError{What: "event type", Value: string(b)}
}

// Event is one entry of an account's history. Every event carries the
// account's state and risk right after it, so a history alone is enough to
// draw a timeline.
type Event struct {
	Time    time.Time `json:"time"`
	Account string    `json:"account"`
	Type    EventType `json:"type"`
	// Method is the TL name of the RPC method, for signals.
	Method string        `json:"method,omitempty"`
	Signal signal.Signal `json:"signal,omitzero"`
	// Probe names the probe kind, for probe events and for state changes
	// a probe's answer caused.
	Probe string `json:"probe,omitempty"`
	// From is the state before the event; State the state after it.
	From  State `json:"from"`
	State State `json:"state"`
	// Until is when the state after the event is expected to end, if known.
	Until  time.Time `json:"until,omitzero"`
	Risk   float64   `json:"risk"`
	Reason string    `json:"reason,omitempty"`
	// Seq numbers the account's events in the order they happened to the
	// account (1, 2, ...), whatever their Time: a signal reported late
	// keeps its own Time but gets the next Seq. A snapshot records the
	// last Seq it reflects, so that a restart replays exactly the events
	// after it (docs/operations.md, "Restart").
	Seq uint64 `json:"seq,omitempty"`
}

// Sink receives every event of every account, in order per account. It is
// how events leave the process (the daemon's store is one). Record is
// called on the path of a failed RPC and must not block: buffer and return.
type Sink interface {
	Record(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Record implements Sink.
func (f SinkFunc) Record(e Event) { f(e) }

// ring is a fixed-size buffer of the most recent events.
type ring struct {
	buf  []Event
	next int
	full bool
}

func newRing(n int) ring { return ring{buf: make([]Event, n)} }

func (r *ring) add(e Event) {
	if len(r.buf) == 0 {
		return
	}
	r.buf[r.next] = e
	r.next++
	if r.next == len(r.buf) {
		r.next = 0
		r.full = true
	}
}

// list returns the events oldest first.
func (r *ring) list() []Event {
	if !r.full {
		return append([]Event(nil), r.buf[:r.next]...)
	}
	out := make([]Event, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}
