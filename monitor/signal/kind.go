package signal

import "github.com/tgsafety/tgsafety/monitor/internal/enum"

// Kind is the class of a safety signal. Its String form is used as a metric
// label value, so the names are part of the public interface.
type Kind uint8

// The kinds, from harmless to fatal. The order of the constants is not a
// severity scale; the account state machine decides what each kind means.
const (
	// None means no error, or an error that is not a Telegram RPC error
	// (network, context cancellation, encoding).
	None Kind = iota
	// FloodWait is a per-method throttle: FLOOD_WAIT_X, FLOOD_TEST_PHONE_WAIT_X,
	// FLOOD_SKIP_FAILED_WAIT and unknown 420 errors whose type ends in WAIT.
	FloodWait
	// PremiumWait is the upload/download speed limit of non-Premium accounts.
	PremiumWait
	// SlowmodeWait applies to one chat only and says nothing about the account.
	SlowmodeWait
	// PeerFlood means the account is limited to mutual contacts.
	PeerFlood
	// Restricted is USER_RESTRICTED: spam-reported, cannot create chats.
	Restricted
	// BannedInChannel is USER_BANNED_IN_CHANNEL: barred from public groups.
	BannedInChannel
	// Frozen is FROZEN_METHOD_INVALID or FROZEN_PARTICIPANT_MISSING.
	Frozen
	// Banned is USER_DEACTIVATED_BAN or PHONE_NUMBER_BANNED.
	Banned
	// Deactivated is USER_DEACTIVATED: the account was deleted.
	Deactivated
	// SessionDead means the session (auth key) no longer works and a new
	// login is needed; it is not necessarily a ban.
	SessionDead
	// LoginFlood is too many login codes or password attempts.
	LoginFlood
	// APIIDFlood is API_ID_PUBLISHED_FLOOD: every account on the api_id suffers.
	APIIDFlood
	// TwoFAReset is 2FA_CONFIRM_WAIT_X: someone asked to reset the 2FA password.
	TwoFAReset
	// PeerRefused is a refusal by one peer (privacy, blocked, not mutual).
	PeerRefused
	// Quota is a hard quota such as CHANNELS_TOO_MUCH or STORY_SEND_FLOOD_*.
	Quota
	// Transient is a 500 error, or any code Telegram's error list does not
	// name (it says to treat those as 500): Telegram's own trouble, retry
	// later.
	Transient
	// OtherRPC is any other RPC error.
	OtherRPC
)

var kindNames = enum.Names[Kind]{
	None:            "none",
	FloodWait:       "flood_wait",
	PremiumWait:     "premium_wait",
	SlowmodeWait:    "slowmode_wait",
	PeerFlood:       "peer_flood",
	Restricted:      "restricted",
	BannedInChannel: "banned_in_channel",
	Frozen:          "frozen",
	Banned:          "banned",
	Deactivated:     "deactivated",
	SessionDead:     "session_dead",
	LoginFlood:      "login_flood",
	APIIDFlood:      "api_id_flood",
	TwoFAReset:      "twofa_reset",
	PeerRefused:     "peer_refused",
	Quota:           "quota",
	Transient:       "transient",
	OtherRPC:        "other_rpc",
}

// String returns the kind's label value, or "invalid" for a value outside
// the defined set.
func (k Kind) String() string { return kindNames.String(k) }

// Kinds returns every defined kind in declaration order, so that exporters
// can pre-create one time series per kind.
func Kinds() []Kind { return kindNames.All() }

// ParseKind is the inverse of Kind.String, for kinds read back from storage
// or from an API request.
func ParseKind(s string) (Kind, bool) { return kindNames.Parse(s) }

// MarshalText encodes the kind as its name, so events serialise readably.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a kind name written by MarshalText.
func (k *Kind) UnmarshalText(b []byte) error { return kindNames.Unmarshal("signal kind", b, k) }

// IsWait reports whether signals of this kind carry a wait that the caller
// must honour before repeating the call.
func (k Kind) IsWait() bool {
	switch k {
	case FloodWait, PremiumWait, SlowmodeWait, TwoFAReset:
		return true
	}
	return false
}

// ThrottlesMethod reports whether the kind blocks the method for the whole
// account (and so makes the account throttled), unlike slow mode, which
// blocks one chat.
func (k Kind) ThrottlesMethod() bool { return k == FloodWait || k == PremiumWait }
