package testserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

func TestSignUpSignInAndSpamBotFree(t *testing.T) {
	s := newServer(t, Options{})
	opts := s.ClientOptions()
	ups := make(updates, 16)
	opts.UpdateHandler = ups
	const phone = "+999 662 1234"

	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		// A wrong code is refused.
		_, err := c.Auth().SignIn(ctx, phone, "12345", sendCode(ctx, t, c, phone))
		if !tgerr.Is(err, "PHONE_CODE_INVALID") {
			t.Fatalf("wrong code: %v", err)
		}
		flow := auth.NewFlow(Authenticator{PhoneNumber: phone, LoginCode: s.LoginCode(), FirstName: "New", LastName: "Account"}, auth.SendCodeOptions{})
		if err := c.Auth().IfNecessary(ctx, flow); err != nil {
			t.Fatalf("sign up: %v", err)
		}
		self, err := c.Self(ctx)
		if err != nil || self.FirstName != "New" || self.Phone != "9996621234" {
			t.Fatalf("self = %+v, %v", self, err)
		}
		text, buttons := spamBotSays(ctx, t, c.API())
		if !strings.HasPrefix(text, "Good news, no limits are currently applied") || len(buttons) != 2 {
			t.Fatalf("SpamBot said %q %q", text, buttons)
		}
		// The reply was also pushed as an update.
		deadline := time.After(10 * time.Second)
		for {
			select {
			case u := <-ups:
				if msg := pushedText(u); strings.HasPrefix(msg, "Good news") {
					return nil
				}
			case <-deadline:
				t.Fatal("SpamBot's reply was not pushed")
			}
		}
	})
	if s.LoginCode() != "22222" {
		t.Fatalf("login code %s", s.LoginCode())
	}

	// Signing in again to the same (now registered) number works.
	run(t, s.ClientOptions(), func(ctx context.Context, c *telegram.Client) error {
		flow := auth.NewFlow(auth.CodeOnly(phone, auth.CodeAuthenticatorFunc(
			func(context.Context, *tg.AuthSentCode) (string, error) { return s.LoginCode(), nil })), auth.SendCodeOptions{})
		if err := flow.Run(ctx, c.Auth()); err != nil {
			t.Fatalf("sign in: %v", err)
		}
		st, err := s.Status(phone)
		if err != nil || st.Sessions != 2 {
			t.Fatalf("status %+v %v", st, err)
		}
		return nil
	})
}

func sendCode(ctx context.Context, t testing.TB, c *telegram.Client, phone string) string {
	t.Helper()
	sent, err := c.Auth().SendCode(ctx, phone, auth.SendCodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sent.(*tg.AuthSentCode).PhoneCodeHash
}

func pushedText(u tg.UpdatesClass) string {
	if ups, ok := u.(*tg.Updates); ok {
		for _, x := range ups.Updates {
			if nm, ok := x.(*tg.UpdateNewMessage); ok {
				if m, ok := nm.Message.(*tg.Message); ok {
					return m.Message
				}
			}
		}
	}
	return ""
}
