package signal

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gotd/td/tgerr"
)

// Wait bounds, as TDLib's NetQueryDelayer clamps them: a zero wait (seen on
// test DCs) still means "not now", and no real wait exceeds two weeks.
const (
	MinWait = time.Second
	MaxWait = 14 * 24 * time.Hour
)

// Signal is the classified outcome of one RPC call.
type Signal struct {
	// Kind is the class of the signal; None for success and non-RPC errors.
	Kind Kind `json:"kind"`
	// Code is the RPC error code (420, 400, ...); zero for None.
	Code int `json:"code,omitempty"`
	// Type is the RPC error type without its numeric argument, e.g. FLOOD_WAIT.
	Type string `json:"type,omitempty"`
	// Wait is the wait the error demands, clamped to [MinWait, MaxWait]. It is
	// set for every kind where IsWait is true and for the few other errors
	// that state a delay (TAKEOUT_INIT_DELAY_X, PREVIOUS_CHAT_IMPORT_ACTIVE_WAIT_XMIN);
	// zero otherwise.
	Wait time.Duration `json:"wait,omitempty"`
}

// rule says what an RPC error type means. unit converts the error's numeric
// argument into a wait; zero means the argument is not a wait.
type rule struct {
	kind Kind
	unit time.Duration
	// alwaysWait forces a (minimum) wait even without an argument.
	alwaysWait bool
}

// rules maps exact error types (as gotd's tgerr splits them) to their
// meaning. Sources: docs/signals.md (which names where each comes from).
var rules = map[string]rule{
	"FLOOD_WAIT":             {kind: FloodWait, unit: time.Second, alwaysWait: true},
	"FLOOD_TEST_PHONE_WAIT":  {kind: FloodWait, unit: time.Second, alwaysWait: true},
	"FLOOD_SKIP_FAILED_WAIT": {kind: FloodWait, unit: time.Second, alwaysWait: true},
	"FLOOD_PREMIUM_WAIT":     {kind: PremiumWait, unit: time.Second, alwaysWait: true},
	"SLOWMODE_WAIT":          {kind: SlowmodeWait, unit: time.Second, alwaysWait: true},
	"2FA_CONFIRM_WAIT":       {kind: TwoFAReset, unit: time.Second, alwaysWait: true},

	"PEER_FLOOD":             {kind: PeerFlood},
	"USER_RESTRICTED":        {kind: Restricted},
	"USER_BANNED_IN_CHANNEL": {kind: BannedInChannel},

	// Trap: FROZEN_METHOD_INVALID carries code 420 but is not a wait.
	"FROZEN_METHOD_INVALID":      {kind: Frozen},
	"FROZEN_PARTICIPANT_MISSING": {kind: Frozen},

	"USER_DEACTIVATED_BAN": {kind: Banned},
	"PHONE_NUMBER_BANNED":  {kind: Banned},
	"USER_DEACTIVATED":     {kind: Deactivated},

	"AUTH_KEY_UNREGISTERED": {kind: SessionDead},
	"AUTH_KEY_INVALID":      {kind: SessionDead},
	"SESSION_REVOKED":       {kind: SessionDead},
	"SESSION_EXPIRED":       {kind: SessionDead},
	"AUTH_KEY_DUPLICATED":   {kind: SessionDead},
	// Trap: these 401s are steps, not dead sessions.
	"SESSION_PASSWORD_NEEDED": {kind: OtherRPC},
	"AUTH_KEY_PERM_EMPTY":     {kind: OtherRPC},

	"PHONE_NUMBER_FLOOD":     {kind: LoginFlood},
	"PHONE_PASSWORD_FLOOD":   {kind: LoginFlood},
	"API_ID_PUBLISHED_FLOOD": {kind: APIIDFlood},

	"CHAT_WRITE_FORBIDDEN":     {kind: PeerRefused},
	"CHAT_RESTRICTED":          {kind: PeerRefused},
	"USER_PRIVACY_RESTRICTED":  {kind: PeerRefused},
	"USER_NOT_MUTUAL_CONTACT":  {kind: PeerRefused},
	"USER_IS_BLOCKED":          {kind: PeerRefused},
	"YOU_BLOCKED_USER":         {kind: PeerRefused},
	"PRIVACY_PREMIUM_REQUIRED": {kind: PeerRefused},
	"ALLOW_PAYMENT_REQUIRED":   {kind: PeerRefused},
	"INPUT_USER_DEACTIVATED":   {kind: PeerRefused},

	"CHANNELS_TOO_MUCH":          {kind: Quota},
	"STORY_SEND_FLOOD_WEEKLY":    {kind: Quota, unit: time.Second},
	"STORY_SEND_FLOOD_MONTHLY":   {kind: Quota, unit: time.Second},
	"TAKEOUT_INIT_DELAY":         {kind: OtherRPC, unit: time.Second},
	"PREMIUM_SUB_ACTIVE_UNTIL":   {kind: OtherRPC}, // Trap: the argument is a unix time.
	"WORKER_BUSY_TOO_LONG_RETRY": {kind: Transient},
}

// Classify returns the safety signal carried by err. It looks through
// wrapping (fmt.Errorf("...: %w"), errors.Join, go-faster/errors) for the
// first *tgerr.Error. It does not allocate.
func Classify(err error) Signal {
	if err == nil {
		return Signal{}
	}
	rpcErr := findRPCError(err, 0)
	if rpcErr == nil {
		return Signal{}
	}
	return FromRPC(rpcErr.Code, rpcErr.Type, rpcErr.Argument)
}

// maxUnwrapDepth bounds the search through wrapped errors so that a cyclic
// or absurdly deep chain cannot hang the RPC path.
const maxUnwrapDepth = 32

// findRPCError is errors.As without the allocation that passing a pointer
// to an interface parameter costs.
func findRPCError(err error, depth int) *tgerr.Error {
	for ; err != nil && depth < maxUnwrapDepth; depth++ {
		switch e := err.(type) {
		case *tgerr.Error:
			return e
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				if found := findRPCError(inner, depth+1); found != nil {
					return found
				}
			}
			return nil
		default:
			return nil
		}
	}
	return nil
}

// AsRPC returns the RPC error inside err, like tgerr.As, without allocating.
func AsRPC(err error) (*tgerr.Error, bool) {
	e := findRPCError(err, 0)
	return e, e != nil
}

// FromRPC classifies an RPC error given by its parts: code, type (the
// message without its numeric argument, as tgerr splits it) and argument.
// It is what Classify uses, exported for errors that arrive as data (the
// daemon's ingest API).
func FromRPC(code int, typ string, arg int) Signal {
	s := Signal{Code: code, Type: typ}
	if i := strings.LastIndexByte(typ, '_'); i > 0 && isDigits(typ[i+1:]) {
		// The argument is still inside the type: tgerr leaves it there
		// when it overflows an int, and callers giving errors as data may
		// not split it. It is the argument; only a number too large for
		// any wait saturates (and is clamped to MaxWait).
		typ, arg = typ[:i], atoiPrefix(typ[i+1:])
		s.Type = typ
	}
	if r, ok := rules[typ]; ok {
		s.Kind = r.kind
		if r.unit != 0 && (arg != 0 || r.alwaysWait) {
			s.Wait = clampWait(arg, r.unit)
		}
		return s
	}
	switch {
	case strings.HasPrefix(typ, "CHAT_SEND_") && strings.HasSuffix(typ, "_FORBIDDEN"):
		s.Kind = PeerRefused
	case strings.HasPrefix(typ, "PREVIOUS_CHAT_IMPORT_ACTIVE_WAIT_") && strings.HasSuffix(typ, "MIN"):
		// Trap: the argument is in minutes and glued to "MIN", so tgerr
		// leaves it inside the type.
		s.Kind = OtherRPC
		s.Type = "PREVIOUS_CHAT_IMPORT_ACTIVE_WAIT"
		s.Wait = clampWait(atoiPrefix(typ[len("PREVIOUS_CHAT_IMPORT_ACTIVE_WAIT_"):len(typ)-len("MIN")]), time.Minute)
	case !listedCode(code):
		// Telegram: "other error codes ... may be considered the same as
		// error 500": every 5xx, gotd's -503 Timeout, and the like.
		s.Kind = Transient
	case code == 420 && strings.HasSuffix(typ, "WAIT"):
		// An unknown 420 wait: Telegram adds new ones; treating them as
		// flood waits is the safe reading.
		s.Kind = FloodWait
		s.Wait = clampWait(arg, time.Second)
	case code == 401:
		// TDLib logs out on every 401 but SESSION_PASSWORD_NEEDED (in rules).
		s.Kind = SessionDead
	default:
		s.Kind = OtherRPC
	}
	return s
}

// listedCode reports whether Telegram's error documentation lists code
// with a meaning of its own; it treats every other code as 500 (internal
// server error), and so does Classify.
func listedCode(code int) bool {
	switch code {
	case 303, 400, 401, 403, 404, 406, 420:
		return true
	}
	return false
}

// Parse classifies an error given as code and full message (e.g. 420,
// "FLOOD_WAIT_30"), splitting the message the way gotd does.
func Parse(code int, message string) Signal {
	e := tgerr.New(code, message)
	return FromRPC(e.Code, e.Type, e.Argument)
}

// clampWait converts arg units into a duration within [MinWait, MaxWait]
// without overflowing for absurd arguments.
func clampWait(arg int, unit time.Duration) time.Duration {
	if arg <= 0 {
		return MinWait
	}
	if int64(arg) > int64(MaxWait/unit) {
		return MaxWait
	}
	d := time.Duration(arg) * unit
	if d < MinWait {
		return MinWait
	}
	return d
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// saturated is what an argument too large for an int32 reads as: far
// above MaxWait in any unit, and an int on 32-bit platforms too.
const saturated = math.MaxInt32

// atoiPrefix parses a non-negative decimal number, returning 0 for anything
// that is not one (the caller clamps 0 to MinWait) and saturating at
// saturated on overflow.
func atoiPrefix(s string) int {
	if s == "" {
		return 0
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		if n > (saturated-9)/10 {
			return saturated
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Describe names an error for events and logs: an RPC error by code and
// type only ("420 FLOOD_WAIT"), so arguments never leak; any other error
// by its text.
func Describe(err error) string {
	if e := findRPCError(err, 0); e != nil {
		return strconv.Itoa(e.Code) + " " + e.Type
	}
	return err.Error()
}
