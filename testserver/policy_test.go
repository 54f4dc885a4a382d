package testserver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gotd/log/logzap"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"go.uber.org/zap"
)

const adult = 2 * 365 * 24 * time.Hour

func TestProvisionedSessionSkipsKeyExchange(t *testing.T) {
	s := newServer(t, Options{})
	opts := provisioned(t, s, AccountSpec{Phone: "9996620001", Age: adult})
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		self, err := c.Self(ctx)
		if err != nil || self.Phone != "9996620001" {
			t.Fatalf("self = %+v, %v", self, err)
		}
		return nil
	})
}

func TestColdDMsEndInPeerFloodAndSpamBotLimitedUntil(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620002"
	opts := provisioned(t, s, AccountSpec{Phone: phone, Age: adult})
	names := s.Usernames(60)
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		sent := 0
		var floodAt time.Time
		for i, name := range names {
			u := resolve(ctx, t, api, name)
			err := dm(ctx, api, u, "hello, want to buy?")
			if tgerr.Is(err, "PEER_FLOOD") {
				floodAt = s.Clock().Now()
				break
			}
			if err != nil {
				t.Fatalf("DM %d: %v", i, err)
			}
			sent++
			s.Advance(2 * time.Minute) // 30/h: the hourly allowance (10) runs out first
		}
		if floodAt.IsZero() {
			t.Fatalf("no PEER_FLOOD after %d cold DMs", sent)
		}
		if sent != 10 {
			t.Fatalf("PEER_FLOOD after %d DMs, want 10 (default profile: 10 per hour)", sent)
		}
		until := floodAt.Add(24 * time.Hour)
		text, buttons := spamBotSays(ctx, t, api)
		want := "limited until " + until.Format(SpamBotDateLayout)
		if !strings.Contains(text, want) || len(buttons) != 4 {
			t.Fatalf("SpamBot said %q (%d buttons), want %q", text, len(buttons), want)
		}
		// Mutual contacts can still be written to while limited.
		if err := s.MakeMutual(phone, names[59]); err != nil {
			t.Fatal(err)
		}
		if err := dm(ctx, api, resolve(ctx, t, api, names[59]), "hi friend"); err != nil {
			t.Fatalf("DM to a mutual contact while limited: %v", err)
		}
		// The limit ends on virtual time; SpamBot says free again.
		s.Clock().AdvanceTo(until.Add(time.Second))
		if text, _ := spamBotSays(ctx, t, api); !strings.HasPrefix(text, "Good news") {
			t.Fatalf("after the limit SpamBot said %q", text)
		}
		return nil
	})
}

func TestResolveUsernameBurstsEscalate(t *testing.T) {
	s := newServer(t, Options{})
	opts := provisioned(t, s, AccountSpec{Phone: "9996620003", Age: adult})
	names := s.Usernames(150)
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		next := 0
		burst := func() time.Duration {
			for next < len(names) {
				_, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: names[next]})
				next++
				if d, ok := tgerr.AsFloodWait(err); ok {
					return d
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			t.Fatal("no flood wait")
			return 0
		}
		var waits []time.Duration
		for i := 0; i < 3; i++ {
			w := burst()
			waits = append(waits, w)
			s.Advance(w)
		}
		// 30 resolves in the same instant: the window frees in 60 s; the
		// second violation is x8; the third is the 16 h lockout.
		if waits[0] != time.Minute || waits[1] != 8*time.Minute || waits[2] != 16*time.Hour {
			t.Fatalf("waits = %v, want [1m 8m 16h]", waits)
		}
		return nil
	})
}

func TestBannedAccountGetsDeactivatedBanOnNextCallAndReconnect(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620004"
	opts := provisioned(t, s, AccountSpec{Phone: phone, Age: adult})
	opts.NoUpdates = false
	selfErr := make(chan error, 4)
	opts.OnSelfError = func(_ context.Context, err error) error {
		selfErr <- err
		return nil
	}
	selfOK := make(chan struct{}, 4)
	opts.OnSelfSuccess = func(*tg.User) { selfOK <- struct{}{} }
	opts.UpdateHandler = make(updates, 4)
	if testing.Verbose() {
		zl, _ := zap.NewDevelopment()
		opts.Logger = logzap.New(zl)
	}
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		// The client's own self check on connect must be done, or the
		// drop below would interrupt it.
		<-selfOK
		if err := s.Ban(phone); err != nil {
			t.Fatal(err)
		}
		_, err := c.API().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
		if !tgerr.Is(err, "USER_DEACTIVATED_BAN") || !tgerr.IsCode(err, 401) {
			t.Fatalf("after ban: %v", err)
		}
		// On reconnect, gotd's self check sees it too.
		s.DropConnections()
		select {
		case err := <-selfErr:
			if !tgerr.Is(err, "USER_DEACTIVATED_BAN") {
				t.Fatalf("OnSelfError got %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no OnSelfError after reconnect")
		}
		return nil
	})
}

func TestFrozenAccount(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620005"
	opts := provisioned(t, s, AccountSpec{Phone: phone, Age: adult})
	names := s.Usernames(1)
	deletion := s.Clock().Now().Add(14 * 24 * time.Hour)
	if err := s.Freeze(phone, deletion); err != nil {
		t.Fatal(err)
	}
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		err := dm(ctx, api, resolve(ctx, t, api, names[0]), "hi")
		if !tgerr.Is(err, "FROZEN_METHOD_INVALID") || !tgerr.IsCode(err, 420) {
			t.Fatalf("sendMessage while frozen: %v", err)
		}
		if _, ok := tgerr.AsFloodWait(err); ok {
			t.Fatal("FROZEN_METHOD_INVALID must not look like a flood wait")
		}
		cfg, err := api.HelpGetAppConfig(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]any{}
		for _, v := range cfg.(*tg.HelpAppConfig).Config.(*tg.JSONObject).Value {
			switch x := v.Value.(type) {
			case *tg.JSONNumber:
				fields[v.Key] = int64(x.Value)
			case *tg.JSONString:
				fields[v.Key] = x.Value
			}
		}
		if fields["freeze_since_date"] != s.Clock().Now().Unix() || fields["freeze_until_date"] != deletion.Unix() ||
			fields["freeze_appeal_url"] != "https://t.me/spambot" {
			t.Fatalf("appConfig freeze fields = %v", fields)
		}
		if text, _ := spamBotSays(ctx, t, api); !strings.Contains(text, "blocked for violations of the Telegram Terms of Service") {
			t.Fatalf("SpamBot said %q to a frozen account", text)
		}
		if err := s.Unfreeze(phone); err != nil {
			t.Fatal(err)
		}
		cfg, err = api.HelpGetAppConfig(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range cfg.(*tg.HelpAppConfig).Config.(*tg.JSONObject).Value {
			if strings.HasPrefix(v.Key, "freeze_") {
				t.Fatalf("unfrozen account still has %s", v.Key)
			}
		}
		return nil
	})
}

func TestRepeatedViolationsEscalateToPermanentThenBan(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620006"
	opts := provisioned(t, s, AccountSpec{Phone: phone, Age: adult})
	names := s.Usernames(100)
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		peers := make([]*tg.User, 0, len(names))
		for i, n := range names {
			peers = append(peers, resolve(ctx, t, api, n))
			if i%25 == 24 {
				s.Advance(24 * time.Hour) // keep within the resolve budget
			}
		}
		next := 0
		attempt := func() error {
			err := dm(ctx, api, peers[next%len(peers)], "buy now")
			next++
			return err
		}
		var ladder []string
		for i := 0; i < 40; i++ {
			err := attempt()
			st, _ := s.Status(phone)
			switch {
			case st.Banned:
				ladder = append(ladder, "banned")
			case st.Permanent:
				ladder = append(ladder, "permanent")
			case st.Limited:
				ladder = append(ladder, st.LimitedUntil.Sub(s.Clock().Now()).Round(time.Hour).String())
			}
			if st.Banned {
				break
			}
			if err != nil && !tgerr.Is(err, "PEER_FLOOD") {
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		got := strings.Join(compact(ladder), " ")
		if got != "24h0m0s 72h0m0s 168h0m0s permanent banned" {
			t.Fatalf("ladder = %s", got)
		}
		_, err := api.UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
		if !tgerr.Is(err, "USER_DEACTIVATED_BAN") {
			t.Fatalf("after the ladder: %v", err)
		}
		return nil
	})
}

func compact(xs []string) []string {
	var out []string
	for _, x := range xs {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

func TestRussianAccountGetsRussianSpamBot(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620007"
	opts := provisioned(t, s, AccountSpec{Phone: phone, Age: adult})
	opts.Device.LangCode = "ru"
	if err := s.Limit(phone, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	until := s.Clock().Now().Add(48 * time.Hour)
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		text, buttons := spamBotSays(ctx, t, c.API())
		if !strings.Contains(text, "Ограничения будут автоматически сняты "+until.Format(SpamBotDateLayout)) || buttons[0] != "Хорошо" {
			t.Fatalf("SpamBot said %q %q", text, buttons)
		}
		return nil
	})
	if st, _ := s.Status(phone); st.Lang != "ru" {
		t.Fatalf("account language %q, want ru from initConnection", st.Lang)
	}
}

func TestYoungAccountsAreStricter(t *testing.T) {
	s := newServer(t, Options{})
	opts := provisioned(t, s, AccountSpec{Phone: "9996620008", Age: 24 * time.Hour})
	names := s.Usernames(10)
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		for i, n := range names {
			u := resolve(ctx, t, api, n)
			if err := dm(ctx, api, u, "hi"); tgerr.Is(err, "PEER_FLOOD") {
				if i != 3 {
					t.Fatalf("young account limited after %d DMs, want 3", i)
				}
				return nil
			}
			s.Advance(time.Minute)
		}
		t.Fatal("young account never limited")
		return nil
	})
}

func TestFaultsAndRevocation(t *testing.T) {
	s := newServer(t, Options{})
	const phone = "9996620009"
	opts := provisioned(t, s, AccountSpec{Phone: phone, Age: adult})
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		self := func() error {
			_, err := api.UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
			return err
		}
		if err := s.Inject(phone, Fault{Method: "users.getUsers", Times: 2, Error: tgerr.New(500, "RPC_CALL_FAIL")}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := self(); !tgerr.Is(err, "RPC_CALL_FAIL") {
				t.Fatalf("injected call %d: %v", i, err)
			}
		}
		if err := self(); err != nil {
			t.Fatalf("after the fault: %v", err)
		}
		// A delayed answer arrives once virtual time passes the delay.
		if err := s.Inject(phone, Fault{Times: 1, Delay: time.Hour}); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- self() }()
		s.Clock().BlockUntil(1)
		select {
		case err := <-done:
			t.Fatalf("delayed call returned before time advanced: %v", err)
		default:
		}
		s.Advance(time.Hour)
		if err := <-done; err != nil {
			t.Fatalf("delayed call: %v", err)
		}
		// A dropped connection: the client reconnects and resends.
		if err := s.Inject(phone, Fault{Method: "users.getUsers", Times: 1, Drop: true}); err != nil {
			t.Fatal(err)
		}
		if err := self(); err != nil {
			t.Fatalf("call across a dropped connection: %v", err)
		}
		if n, err := s.RevokeSessions(phone); err != nil || n != 1 {
			t.Fatalf("revoke: %d %v", n, err)
		}
		if err := self(); !tgerr.Is(err, "SESSION_REVOKED") {
			t.Fatalf("after revocation: %v", err)
		}
		return nil
	})
}

func TestControlAPIErrors(t *testing.T) {
	s := newServer(t, Options{})
	if err := s.Ban("123"); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("Ban(unknown) = %v", err)
	}
	if _, err := s.CreateAccount(AccountSpec{Phone: "9996620010"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateAccount(AccountSpec{Phone: "9996620010"})
	if err == nil || strings.Contains(err.Error(), "9996620010") {
		t.Fatalf("duplicate account error %v (must not echo the phone)", err)
	}
	for _, f := range []Fault{{Times: 0, Drop: true}, {Times: 1}, {Times: 1, Drop: true, Delay: time.Second}, {Method: "sendMessage", Times: 1, Drop: true}} {
		if err := s.Inject("9996620010", f); err == nil {
			t.Errorf("Inject(%+v) accepted", f)
		}
	}
	if _, err := New(Options{DC: 9}); err == nil {
		t.Error("DC 9 accepted")
	}
}

func TestCreateAccountValidatesBeforeRegistering(t *testing.T) {
	s := newServer(t, Options{Users: 3})
	for _, n := range []int{-1, 4} {
		if _, err := s.CreateAccount(AccountSpec{Phone: "9996620200", MutualContacts: n}); err == nil {
			t.Fatalf("MutualContacts %d accepted", n)
		}
	}
	if _, err := s.CreateAccount(AccountSpec{Phone: "9996620200", MutualContacts: 3}); err != nil {
		t.Fatalf("a refused spec left the phone registered: %v", err)
	}
}
