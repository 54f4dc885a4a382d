package signal

import (
	"errors"
	"fmt"
	"testing"
	"time"

	gferrors "github.com/go-faster/errors"
	"github.com/gotd/td/tgerr"
)

// Every error of docs/signals.md's tables, plus the traps.
func TestClassifyTable(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		code int
		msg  string
		kind Kind
		typ  string
		wait time.Duration
	}{
		// Throttling (wait) errors.
		{420, "FLOOD_WAIT_30", FloodWait, "FLOOD_WAIT", 30 * time.Second},
		{420, "FLOOD_WAIT_0", FloodWait, "FLOOD_WAIT", time.Second}, // seen on test DCs: clamped up
		{420, "FLOOD_WAIT_99999999", FloodWait, "FLOOD_WAIT", 14 * day},
		{420, "FLOOD_PREMIUM_WAIT_14", PremiumWait, "FLOOD_PREMIUM_WAIT", 14 * time.Second},
		{420, "SLOWMODE_WAIT_60", SlowmodeWait, "SLOWMODE_WAIT", time.Minute},
		{420, "FLOOD_TEST_PHONE_WAIT_5", FloodWait, "FLOOD_TEST_PHONE_WAIT", 5 * time.Second},
		{420, "TAKEOUT_INIT_DELAY_86400", OtherRPC, "TAKEOUT_INIT_DELAY", day},
		{420, "2FA_CONFIRM_WAIT_604800", TwoFAReset, "2FA_CONFIRM_WAIT", 7 * day},
		{420, "FLOOD_SKIP_FAILED_WAIT", FloodWait, "FLOOD_SKIP_FAILED_WAIT", time.Second},
		{400, "PHONE_NUMBER_FLOOD", LoginFlood, "PHONE_NUMBER_FLOOD", 0},
		{406, "PHONE_PASSWORD_FLOOD", LoginFlood, "PHONE_PASSWORD_FLOOD", 0},
		{400, "API_ID_PUBLISHED_FLOOD", APIIDFlood, "API_ID_PUBLISHED_FLOOD", 0},
		{500, "WORKER_BUSY_TOO_LONG_RETRY", Transient, "WORKER_BUSY_TOO_LONG_RETRY", 0},
		{500, "RPC_CALL_FAIL", Transient, "RPC_CALL_FAIL", 0},
		{500, "TIMEOUT", Transient, "TIMEOUT", 0},
		{503, "SOMETHING_NEW", Transient, "SOMETHING_NEW", 0},
		// Limited.
		{400, "PEER_FLOOD", PeerFlood, "PEER_FLOOD", 0},
		{406, "USER_RESTRICTED", Restricted, "USER_RESTRICTED", 0},
		{403, "USER_RESTRICTED", Restricted, "USER_RESTRICTED", 0},
		{400, "USER_BANNED_IN_CHANNEL", BannedInChannel, "USER_BANNED_IN_CHANNEL", 0},
		{403, "USER_BANNED_IN_CHANNEL", BannedInChannel, "USER_BANNED_IN_CHANNEL", 0},
		{420, "FROZEN_METHOD_INVALID", Frozen, "FROZEN_METHOD_INVALID", 0}, // trap 1: 420 but no wait
		{400, "FROZEN_PARTICIPANT_MISSING", Frozen, "FROZEN_PARTICIPANT_MISSING", 0},
		{400, "CHANNELS_TOO_MUCH", Quota, "CHANNELS_TOO_MUCH", 0},
		{400, "STORY_SEND_FLOOD_WEEKLY_3600", Quota, "STORY_SEND_FLOOD_WEEKLY", time.Hour},
		{400, "STORY_SEND_FLOOD_MONTHLY_86400", Quota, "STORY_SEND_FLOOD_MONTHLY", day},
		// Dead.
		{401, "USER_DEACTIVATED_BAN", Banned, "USER_DEACTIVATED_BAN", 0},
		{401, "USER_DEACTIVATED", Deactivated, "USER_DEACTIVATED", 0},
		{400, "PHONE_NUMBER_BANNED", Banned, "PHONE_NUMBER_BANNED", 0},
		{401, "AUTH_KEY_UNREGISTERED", SessionDead, "AUTH_KEY_UNREGISTERED", 0},
		{401, "AUTH_KEY_INVALID", SessionDead, "AUTH_KEY_INVALID", 0},
		{401, "SESSION_REVOKED", SessionDead, "SESSION_REVOKED", 0},
		{401, "SESSION_EXPIRED", SessionDead, "SESSION_EXPIRED", 0},
		{406, "AUTH_KEY_DUPLICATED", SessionDead, "AUTH_KEY_DUPLICATED", 0},
		{401, "AUTH_KEY_PERM_EMPTY", OtherRPC, "AUTH_KEY_PERM_EMPTY", 0},         // with PFS: rebind, not dead
		{401, "SESSION_PASSWORD_NEEDED", OtherRPC, "SESSION_PASSWORD_NEEDED", 0}, // trap: a login step
		{401, "SOME_NEW_401", SessionDead, "SOME_NEW", 0},                        // TDLib logs out on any other 401
		// Per-peer refusals.
		{403, "CHAT_WRITE_FORBIDDEN", PeerRefused, "CHAT_WRITE_FORBIDDEN", 0},
		{400, "CHAT_RESTRICTED", PeerRefused, "CHAT_RESTRICTED", 0},
		{403, "CHAT_SEND_MEDIA_FORBIDDEN", PeerRefused, "CHAT_SEND_MEDIA_FORBIDDEN", 0},
		{403, "CHAT_SEND_PLAIN_FORBIDDEN", PeerRefused, "CHAT_SEND_PLAIN_FORBIDDEN", 0},
		{403, "USER_PRIVACY_RESTRICTED", PeerRefused, "USER_PRIVACY_RESTRICTED", 0},
		{400, "USER_NOT_MUTUAL_CONTACT", PeerRefused, "USER_NOT_MUTUAL_CONTACT", 0},
		{403, "USER_NOT_MUTUAL_CONTACT", PeerRefused, "USER_NOT_MUTUAL_CONTACT", 0},
		{400, "USER_IS_BLOCKED", PeerRefused, "USER_IS_BLOCKED", 0},
		{400, "YOU_BLOCKED_USER", PeerRefused, "YOU_BLOCKED_USER", 0},
		{403, "PRIVACY_PREMIUM_REQUIRED", PeerRefused, "PRIVACY_PREMIUM_REQUIRED", 0},
		{403, "ALLOW_PAYMENT_REQUIRED_100", PeerRefused, "ALLOW_PAYMENT_REQUIRED", 0},
		{400, "INPUT_USER_DEACTIVATED", PeerRefused, "INPUT_USER_DEACTIVATED", 0},
		// Other traps.
		{420, "PREMIUM_SUB_ACTIVE_UNTIL_1800000000", OtherRPC, "PREMIUM_SUB_ACTIVE_UNTIL", 0}, // a unix time, not a wait
		{400, "PREVIOUS_CHAT_IMPORT_ACTIVE_WAIT_5MIN", OtherRPC, "PREVIOUS_CHAT_IMPORT_ACTIVE_WAIT", 5 * time.Minute},
		{420, "SOME_NEW_WAIT_12", FloodWait, "SOME_NEW_WAIT", 12 * time.Second},
		{420, "SOMETHING_ELSE_12", OtherRPC, "SOMETHING_ELSE", 0},
		{400, "MESSAGE_EMPTY", OtherRPC, "MESSAGE_EMPTY", 0},
		{400, "PEER_ID_INVALID", OtherRPC, "PEER_ID_INVALID", 0},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			got := Classify(tgerr.New(tc.code, tc.msg))
			want := Signal{Kind: tc.kind, Code: tc.code, Type: tc.typ, Wait: tc.wait}
			if got != want {
				t.Fatalf("Classify(%d %s) = %+v (%s), want %+v (%s)", tc.code, tc.msg, got, got.Kind, want, want.Kind)
			}
			if p := Parse(tc.code, tc.msg); p != want {
				t.Fatalf("Parse(%d %s) = %+v, want %+v", tc.code, tc.msg, p, want)
			}
		})
	}
}

func TestClassifyNonRPC(t *testing.T) {
	for _, err := range []error{nil, errors.New("connection reset"), fmt.Errorf("wrapped: %w", errors.New("eof"))} {
		if got := Classify(err); got != (Signal{}) {
			t.Errorf("Classify(%v) = %+v, want zero Signal", err, got)
		}
	}
}

func TestClassifyWrapped(t *testing.T) {
	base := tgerr.New(400, "PEER_FLOOD")
	for name, err := range map[string]error{
		"fmt":         fmt.Errorf("send: %w", base),
		"double":      fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", base)),
		"go-faster":   gferrors.Wrap(base, "rpcDoRequest"),
		"join":        errors.Join(errors.New("other"), base),
		"join-in-fmt": fmt.Errorf("x: %w", errors.Join(errors.New("a"), fmt.Errorf("b: %w", base))),
	} {
		if got := Classify(err).Kind; got != PeerFlood {
			t.Errorf("%s: Classify = %s, want peer_flood", name, got)
		}
	}
}

type cyclic struct{ self *cyclic }

func (c *cyclic) Error() string { return "cyclic" }
func (c *cyclic) Unwrap() error { return c.self }

func TestClassifyCyclicChainTerminates(t *testing.T) {
	c := &cyclic{}
	c.self = c
	if got := Classify(c); got.Kind != None {
		t.Fatalf("Classify(cyclic) = %s", got.Kind)
	}
}

func TestKindNames(t *testing.T) {
	want := []string{"none", "flood_wait", "premium_wait", "slowmode_wait", "peer_flood", "restricted",
		"banned_in_channel", "frozen", "banned", "deactivated", "session_dead", "login_flood",
		"api_id_flood", "twofa_reset", "peer_refused", "quota", "transient", "other_rpc"}
	kinds := Kinds()
	if len(kinds) != len(want) {
		t.Fatalf("%d kinds, want %d", len(kinds), len(want))
	}
	for i, k := range kinds {
		if k.String() != want[i] {
			t.Errorf("kind %d = %q, want %q", i, k, want[i])
		}
		back, ok := ParseKind(k.String())
		if !ok || back != k {
			t.Errorf("ParseKind(%q) = %v, %v", k, back, ok)
		}
		var u Kind
		b, _ := k.MarshalText()
		if err := u.UnmarshalText(b); err != nil || u != k {
			t.Errorf("text round trip of %s: %v %v", k, u, err)
		}
	}
	if Kind(200).String() != "invalid" {
		t.Error("out-of-range kind must print invalid")
	}
	var u Kind
	if err := u.UnmarshalText([]byte("floodwait")); err == nil || err.Error() != `unknown signal kind "floodwait"` {
		t.Errorf("UnmarshalText(bad) error = %v", err)
	}
}

func TestClassifyAllocs(t *testing.T) {
	errs := map[string]error{
		"nil":     nil,
		"flood":   tgerr.New(420, "FLOOD_WAIT_30"),
		"wrapped": gferrors.Wrap(tgerr.New(400, "PEER_FLOOD"), "rpc"),
		"plain":   errors.New("eof"),
	}
	for name, err := range errs {
		if n := testing.AllocsPerRun(100, func() { _ = Classify(err) }); n != 0 {
			t.Errorf("%s: %v allocs per Classify, want 0", name, n)
		}
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"FLOOD_WAIT_30", "FROZEN_METHOD_INVALID", "2FA_CONFIRM_WAIT_5",
		"PREVIOUS_CHAT_IMPORT_ACTIVE_WAIT_5MIN", "_", "__1", "FLOOD_WAIT_-1", "A_99999999999999999999999",
		"PREVIOUS_CHAT_IMPORT_ACTIVE_WAIT_99999999999999MIN", "X_WAIT", ""} {
		f.Add(420, s)
		f.Add(400, s)
	}
	f.Fuzz(func(t *testing.T, code int, msg string) {
		s := Classify(fmt.Errorf("w: %w", tgerr.New(code, msg)))
		if s.Wait < 0 {
			t.Fatalf("negative wait %v for %d %q", s.Wait, code, msg)
		}
		if s.Wait > MaxWait {
			t.Fatalf("wait %v above MaxWait for %d %q", s.Wait, code, msg)
		}
		if s.Kind.IsWait() && s.Wait < MinWait {
			t.Fatalf("wait kind %s with wait %v below MinWait for %d %q", s.Kind, s.Wait, code, msg)
		}
		if s.Kind.String() == "invalid" {
			t.Fatalf("invalid kind for %d %q", code, msg)
		}
		if s.Kind == None {
			t.Fatalf("an RPC error classified as none: %d %q", code, msg)
		}
	})
}

// Telegram documents the codes 303, 400, 401, 403, 404, 406, 420 and 500,
// and says any other code is to be treated as 500: gotd's -503 "Timeout"
// (the server did not answer in time) is transient, not other_rpc.
func TestUnlistedCodesAreTransient(t *testing.T) {
	for _, tc := range []struct {
		code int
		msg  string
		kind Kind
	}{
		{-503, "Timeout", Transient},
		{-500, "SOMETHING", Transient},
		{429, "TOO_MANY", Transient},
		{502, "BAD_GATEWAY", Transient},
		{500, "TIMEOUT", Transient},
		// Listed codes keep their meaning.
		{303, "PHONE_MIGRATE_2", OtherRPC},
		{400, "MESSAGE_EMPTY", OtherRPC},
		{403, "SOMETHING_FORBIDDEN", OtherRPC},
		{404, "NOT_FOUND", OtherRPC},
		{406, "SOMETHING_ODD", OtherRPC},
		// A known type is read by its type whatever the code.
		{-503, "PEER_FLOOD", PeerFlood},
	} {
		if got := Parse(tc.code, tc.msg); got.Kind != tc.kind {
			t.Errorf("Parse(%d, %q) = %s, want %s", tc.code, tc.msg, got.Kind, tc.kind)
		}
	}
}

// An error given as data may keep its argument inside the type (as
// tgerr does only when the number overflows an int): the number is the
// wait, and only a number too large for any wait means the longest one.
func TestFromRPCReadsArgumentLeftInType(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		arg  int
		wait time.Duration
	}{
		{"FLOOD_WAIT_30", 0, 30 * time.Second},
		{"FLOOD_WAIT_0", 0, MinWait},
		{"FLOOD_WAIT_99999999", 0, MaxWait},
		{"FLOOD_WAIT_99999999999999999999999", 0, MaxWait},
		{"FLOOD_WAIT", 30, 30 * time.Second},
	} {
		got := FromRPC(420, tc.typ, tc.arg)
		if got.Kind != FloodWait || got.Type != "FLOOD_WAIT" || got.Wait != tc.wait {
			t.Errorf("FromRPC(420, %q, %d) = %+v, want flood_wait FLOOD_WAIT %s", tc.typ, tc.arg, got, tc.wait)
		}
	}
	if got := Parse(420, "FLOOD_WAIT_99999999999999999999999"); got.Wait != MaxWait || got.Type != "FLOOD_WAIT" {
		t.Errorf("Parse of an overflowing wait = %+v, want FLOOD_WAIT of %s", got, MaxWait)
	}
}
