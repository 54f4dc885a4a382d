package monitor

import (
	"strconv"

	"github.com/tgsafety/tgsafety/monitor/internal/enum"
)

// State is an account's health as the monitor sees it. Its String form is a
// metric label value and part of the public interface.
type State uint8

// The states. When several apply, the most severe wins, in the order
// Banned, Dead, Frozen, Limited, Throttled, Watch, OK, Unknown.
const (
	// Unknown: nothing observed yet.
	Unknown State = iota
	// OK: the account works and no adverse signal is active.
	OK
	// Watch: signals that often precede punishment (long or repeated flood
	// waits, refusal spikes, 2FA reset requests, login floods).
	Watch
	// Throttled: at least one method is under an active flood wait.
	Throttled
	// Limited: the account may only write to mutual contacts (PEER_FLOOD,
	// USER_RESTRICTED, USER_BANNED_IN_CHANNEL, SpamBot).
	Limited
	// Frozen: the account is frozen and most write methods fail.
	Frozen
	// Banned: Telegram's anti-spam system deactivated the account.
	Banned
	// Dead: the session no longer works; a new login is needed.
	Dead
)

var stateNames = enum.Names[State]{
	Unknown:   "unknown",
	OK:        "ok",
	Watch:     "watch",
	Throttled: "throttled",
	Limited:   "limited",
	Frozen:    "frozen",
	Banned:    "banned",
	Dead:      "dead",
}

// String returns the state's label value.
func (s State) String() string { return stateNames.String(s) }

// States returns every state, so that exporters can emit one series each.
func States() []State { return stateNames.All() }

// ParseState is the inverse of State.String.
func ParseState(s string) (State, bool) { return stateNames.Parse(s) }

// MarshalText encodes the state as its name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a state name written by MarshalText.
func (s *State) UnmarshalText(b []byte) error { return stateNames.Unmarshal("account state", b, s) }

// ParseError reports a name that is not one of the defined values.
type ParseError struct {
	What  string
	Value string
}

// Error names the kind of value and the offending text.
func (e *ParseError) Error() string {
	return "unknown " + e.What + " " + strconv.Quote(e.Value)
}
