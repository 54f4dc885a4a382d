package testserver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/testserver/internal/tlschema"
)

// TestInjectedErrorsGetTelegramsCodes: a fault injected over the control
// API without error_code gets the code Telegram uses for its message, so
// that each client raises its own error type (a FLOOD_WAIT_30 with code
// 400 was no flood wait to mtcute).
func TestInjectedErrorsGetTelegramsCodes(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	c := newControl(t, s, "")
	const phone = "9996620600"
	c.must("POST", "/control/v1/accounts", `{"phone":"`+phone+`"}`)
	for msg, want := range map[string]float64{
		"FLOOD_WAIT_30": 420, "FROZEN_METHOD_INVALID": 420, "SLOWMODE_WAIT_5": 420,
		"USER_DEACTIVATED_BAN": 401, "AUTH_KEY_UNREGISTERED": 401, "SESSION_REVOKED": 401,
		"PEER_FLOOD": 400, "USER_RESTRICTED": 400, "CHAT_WRITE_FORBIDDEN": 403, "INTERNAL": 500,
	} {
		out := c.must("POST", "/control/v1/accounts/fault", `{"phone":"`+phone+`","times":1,"error_message":"`+msg+`"}`)
		if out["error_code"] != want {
			t.Errorf("%s injected with code %v, want %v", msg, out["error_code"], want)
		}
	}
}

// TestErrorsReachOlderLayerClientsUnchanged: the anti-abuse errors reach a
// layer-144 client (Telethon 1.25) with Telegram's codes, rpc_error being
// the same in every layer: FLOOD_WAIT_X 420 with its seconds, PEER_FLOOD
// 400, FROZEN_METHOD_INVALID 420, USER_DEACTIVATED_BAN 401.
func TestErrorsReachOlderLayerClientsUnchanged(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620601"
	if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: adult}); err != nil {
		t.Fatal(err)
	}
	c := newLayerClient(t, s, phone, 144)
	c.init()
	var flood string
	var users []*tlschema.Object
	for _, name := range s.Usernames(60) {
		v, e := c.call(c.obj("contacts.resolveUsername", map[string]any{"username": []byte(name)}))
		if e != nil {
			if e.ErrorCode != 420 || !strings.HasPrefix(e.ErrorMessage, "FLOOD_WAIT_") {
				t.Fatalf("resolve burst: %v", e)
			}
			flood = e.ErrorMessage
			break
		}
		users = append(users, v.(*tlschema.Object).Arg("users").([]any)[0].(*tlschema.Object))
	}
	if flood == "" {
		t.Fatal("a burst of 60 resolves never got FLOOD_WAIT")
	}
	var secs int
	if _, err := fmt.Sscanf(flood, "FLOOD_WAIT_%d", &secs); err != nil || secs <= 0 {
		t.Fatalf("%s carries no seconds", flood)
	}
	var peerFlood bool
	for i, u := range users {
		peer := c.obj("inputPeerUser", map[string]any{"user_id": u.Arg("id"), "access_hash": u.Arg("access_hash")})
		_, e := c.call(c.obj("messages.sendMessage", map[string]any{"peer": peer, "message": []byte("hello"), "random_id": int64(i + 1)}))
		if e != nil {
			if e.ErrorCode != 400 || e.ErrorMessage != "PEER_FLOOD" {
				t.Fatalf("cold DMs: %v", e)
			}
			peerFlood = true
			break
		}
	}
	if !peerFlood {
		t.Fatalf("%d cold DMs never got PEER_FLOOD", len(users))
	}
	if err := s.Freeze(phone, s.Clock().Now().Add(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, e := c.call(c.obj("channels.joinChannel", map[string]any{"channel": c.obj("inputChannelEmpty", nil)})); e == nil ||
		e.ErrorCode != 420 || e.ErrorMessage != "FROZEN_METHOD_INVALID" {
		t.Fatalf("frozen write: %v", e)
	}
	if err := s.Ban(phone); err != nil {
		t.Fatal(err)
	}
	if _, e := c.call(c.obj("updates.getState", nil)); e == nil || e.ErrorCode != 401 || e.ErrorMessage != "USER_DEACTIVATED_BAN" {
		t.Fatalf("banned: %v", e)
	}
}
