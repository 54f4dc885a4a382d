package testserver

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestControlCapsAccountsAndNameSizes: the control API may be reachable by
// other processes; it bounds what one caller can make the server hold,
// with a 400 that names the limit.
func TestControlCapsAccountsAndNameSizes(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	c := newControl(t, s, "")
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct{ body, want string }{
		{`{"phone":"9996626001","first_name":"` + long(65) + `"}`, "first name is longer than 64 characters"},
		{`{"phone":"9996626001","last_name":"` + long(65) + `"}`, "last name is longer than 64 characters"},
		{`{"phone":"9996626001","username":"` + long(33) + `"}`, "username is longer than 32 characters"},
		{`{"phone":"9996626001","lang":"` + long(17) + `"}`, "lang is longer than 16 characters"},
		{`{"phone":"` + strings.Repeat("9", 16) + `"}`, "phone has more than 15 digits"},
		{`{"phone":"+999 ` + strings.Repeat(" ", 40) + `6626001"}`, "phone is longer than 32 characters"},
	} {
		code, out := c.do("POST", "/control/v1/accounts", tc.body)
		if msg, _ := out["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("%.50s: %d %v, want 400 mentioning %q", tc.body, code, out, tc.want)
		}
	}
	// Names at the limits are fine (multi-byte letters count as one).
	c.must("POST", "/control/v1/accounts", `{"phone":"9996626001","first_name":"`+strings.Repeat("я", 64)+`","last_name":"`+long(64)+`","username":"`+long(32)+`","lang":"pt-br"}`)
	for i := 1; i < MaxAccounts; i++ {
		if _, err := s.CreateAccount(AccountSpec{Phone: fmt.Sprintf("8880%07d", i)}); err != nil {
			t.Fatalf("account %d of %d: %v", i+1, MaxAccounts, err)
		}
	}
	code, out := c.do("POST", "/control/v1/accounts", `{"phone":"9996626002"}`)
	if msg, _ := out["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, fmt.Sprintf("%d accounts", MaxAccounts)) {
		t.Fatalf("account %d: %d %v, want 400 naming the limit", MaxAccounts+1, code, out)
	}
}
