package scenarios

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

func TestSpamBotProbeFreeForNewAccount(t *testing.T) {
	w := newSim(t)
	acct, opts := w.account(t, "fresh", "9996631001")
	run(t, opts, func(ctx context.Context, api *tg.Client) {
		p := probe.NewSpamBot(acct, api, spambot.ProberOptions{})
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
	})
	s := acct.Snapshot()
	if s.SpamBot == nil || s.SpamBot.State != spambot.Free || s.State != monitor.OK {
		t.Fatalf("snapshot %s, SpamBot %+v", s.State, s.SpamBot)
	}
	if got := testutil.ToFloat64(gauge(t, w, "tgsafety_spambot_status", "fresh", "free")); got != 1 {
		t.Fatalf("spambot_status{free} = %v", got)
	}
}

func TestSpamBotProbeLimitedUntilAfterPeerFlood(t *testing.T) {
	w := newSim(t)
	acct, opts := w.account(t, "spammy", "9996631002")
	var floodAt time.Time
	run(t, opts, func(ctx context.Context, api *tg.Client) {
		for i, name := range w.srv.Usernames(60) {
			u, err := resolve(ctx, api, name)
			if err != nil {
				t.Fatal(err)
			}
			if err := dm(ctx, api, u, i); tgerr.Is(err, "PEER_FLOOD") {
				floodAt = w.srv.Clock().Now()
				break
			}
			w.srv.Advance(7 * time.Minute)
		}
		if floodAt.IsZero() {
			t.Fatal("no PEER_FLOOD")
		}
		// The monitor saw the PEER_FLOOD; its limit is assumed (24 h).
		if s := acct.Snapshot(); s.State != monitor.Limited || s.Limit.UntilKnown {
			t.Fatalf("after PEER_FLOOD: %s %+v", s.State, s.Limit)
		}
		w.srv.Advance(time.Minute)
		if err := probe.NewSpamBot(acct, api, spambot.ProberOptions{}).Run(ctx); err != nil {
			t.Fatal(err)
		}
	})
	st, _ := w.srv.Status("9996631002")
	s := acct.Snapshot()
	if s.SpamBot.State != spambot.LimitedTemporary || !s.SpamBot.Until.Equal(st.LimitedUntil.Truncate(time.Minute)) {
		t.Fatalf("SpamBot %+v, server limited until %v", s.SpamBot, st.LimitedUntil)
	}
	if s.State != monitor.Limited || !s.Limit.UntilKnown || !s.Limit.Until.Equal(s.SpamBot.Until.Add(spambot.DatePrecision)) {
		t.Fatalf("account %s %+v", s.State, s.Limit)
	}
}

func TestFrozenAccountProbesAgree(t *testing.T) {
	w := newSim(t)
	acct, opts := w.account(t, "frozen", "9996631003")
	deletion := w.srv.Clock().Now().Add(14 * 24 * time.Hour)
	if err := w.srv.Freeze("9996631003", deletion); err != nil {
		t.Fatal(err)
	}
	run(t, opts, func(ctx context.Context, api *tg.Client) {
		if err := probe.NewSpamBot(acct, api, spambot.ProberOptions{}).Run(ctx); err != nil {
			t.Fatal(err)
		}
		if s := acct.Snapshot(); s.SpamBot.State != spambot.Frozen || s.State != monitor.Frozen {
			t.Fatalf("after SpamBot: %s %+v", s.State, s.SpamBot)
		}
		if err := (&probe.Freeze{Account: acct, API: api}).Run(ctx); err != nil {
			t.Fatal(err)
		}
	})
	s := acct.Snapshot()
	if s.State != monitor.Frozen || !s.Freeze.DeletionDate.Equal(deletion) || s.Freeze.AppealURL != "https://t.me/spambot" {
		t.Fatalf("after the freeze probe: %s %+v", s.State, s.Freeze)
	}
	if got := testutil.ToFloat64(gauge(t, w, "tgsafety_account_frozen_until_timestamp_seconds", "frozen", "")); got != float64(deletion.Unix()) {
		t.Fatalf("frozen_until = %v", got)
	}
	// Unfrozen on the server: the next freeze probe, sent after the
	// latest freeze evidence, clears it.
	_ = w.srv.Unfreeze("9996631003")
	w.srv.Advance(time.Hour)
	run(t, opts, func(ctx context.Context, api *tg.Client) {
		if err := (&probe.Freeze{Account: acct, API: api}).Run(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if s := acct.Snapshot(); s.State == monitor.Frozen {
		t.Fatal("still frozen after the freeze probe said otherwise")
	}
}

func TestSpamBotSilenceIsUnknownNeverFree(t *testing.T) {
	w := newSim(t)
	acct, opts := w.account(t, "quiet", "9996631004")
	w.srv.SilenceSpamBot(true)
	run(t, opts, func(ctx context.Context, api *tg.Client) {
		// Make the account known-good first, so "unknown" below is the
		// probe's doing.
		if _, err := api.UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}}); err != nil {
			t.Fatal(err)
		}
		p := probe.NewSpamBot(acct, api, spambot.ProberOptions{Timeout: 30 * time.Second, Poll: 5 * time.Second})
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		// The prober polls every 5 s of virtual time until 30 s have
		// passed: six timers, each awaited before moving the clock on.
		for i := 0; i < 6; i++ {
			w.srv.Clock().BlockUntil(1)
			w.srv.Advance(5 * time.Second)
		}
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "no reply from SpamBot within 30s") {
			t.Fatalf("probe error %v", err)
		}
	})
	s := acct.Snapshot()
	if s.SpamBot == nil || s.SpamBot.State != spambot.Unknown || s.State != monitor.Unknown {
		t.Fatalf("after a silent SpamBot: %s %+v", s.State, s.SpamBot)
	}
}

func TestSelfHooksSeeBanOnReconnect(t *testing.T) {
	w := newSim(t)
	acct, opts := w.account(t, "banned", "9996631005")
	opts.NoUpdates = false
	opts.UpdateHandler = noUpdates{}
	onOK, onErr := probe.Hooks(acct, nil)
	selfOK := make(chan struct{}, 4)
	opts.OnSelfSuccess = func(u *tg.User) { onOK(u); selfOK <- struct{}{} }
	banned := make(chan struct{}, 4)
	opts.OnSelfError = func(ctx context.Context, err error) error {
		defer func() { banned <- struct{}{} }()
		return onErr(ctx, err)
	}
	run(t, opts, func(ctx context.Context, api *tg.Client) {
		<-selfOK
		if s := acct.Snapshot(); s.State != monitor.OK {
			t.Fatalf("after connect: %s", s.State)
		}
		_ = w.srv.Ban("9996631005")
		w.srv.DropConnections()
		select {
		case <-banned:
		case <-ctx.Done():
			t.Fatal("no self error after reconnect")
		}
	})
	if s := acct.Snapshot(); s.State != monitor.Banned {
		t.Fatalf("state %s after the ban showed at reconnect", s.State)
	}
}

func TestSessionsProbeSeesNewSession(t *testing.T) {
	w := newSim(t)
	acct, opts := w.account(t, "multi", "9996631006")
	run(t, opts, func(ctx context.Context, api *tg.Client) {
		p := &probe.Sessions{Account: acct, API: api}
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if s := acct.Snapshot(); s.State != monitor.OK {
			t.Fatalf("one session: %s %s", s.State, s.Reason)
		}
		// Somebody signs in elsewhere.
		if _, err := w.srv.Session("9996631006"); err != nil {
			t.Fatal(err)
		}
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if s := acct.Snapshot(); s.State != monitor.Watch || !strings.Contains(s.Reason, "1 new session") {
		t.Fatalf("after a new session: %s %q", s.State, s.Reason)
	}
}

type noUpdates struct{}

func (noUpdates) Handle(context.Context, tg.UpdatesClass) error { return nil }

// gauge finds one series of a gathered gauge or counter by account (and
// second label value).
func gauge(t *testing.T, w *simWorld, name, account, second string) *constCollector {
	t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var acc, other string
			for _, l := range m.GetLabel() {
				if l.GetName() == "account" {
					acc = l.GetValue()
				} else {
					other = l.GetValue()
				}
			}
			if acc == account && (second == "" || other == second) {
				if m.Counter != nil {
					return &constCollector{v: m.GetCounter().GetValue()}
				}
				return &constCollector{v: m.GetGauge().GetValue()}
			}
		}
	}
	t.Fatalf("no %s{account=%q,%q}", name, account, second)
	return nil
}

// The scheduler with the real SpamBot prober, under a storm of requests
// (one a minute for 6 h: an operator hammering the API while PEER_FLOODs
// keep coming): SpamBot is asked at most once per 30 min floor, read from
// the times of the account's SpamBot probe events.
func TestSchedulerNeverAsksSpamBotMoreOftenThanTheFloor(t *testing.T) {
	w := newSim(t)
	acct, opts := w.account(t, "stormy", "9996631007")
	run(t, opts, func(ctx context.Context, api *tg.Client) {
		sched := probe.NewScheduler(acct, probe.Options{Seed: 1})
		if err := sched.Add(probe.NewSpamBot(acct, api, spambot.ProberOptions{}), probe.DefaultSchedules()[monitor.ProbeSpamBot]); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = sched.Run(ctx) }()
		clk := w.srv.Clock()
		// The scheduler's timer is the only one on the virtual clock: one
		// pending timer means its loop is idle (a run that fell due, by a
		// request or by time, has finished and the loop re-armed).
		clk.BlockUntil(1)
		for i := 0; i < 6*60; i++ {
			if _, err := sched.Request(monitor.ProbeSpamBot); err != nil {
				t.Error(err)
				break
			}
			clk.BlockUntil(1)
			clk.Advance(time.Minute)
			clk.BlockUntil(1)
		}
		cancel()
		<-done
	})
	evs := spamBotEvents(acct)
	if len(evs) < 11 || len(evs) > 13 {
		t.Fatalf("%d SpamBot probes in 6 h of requests, want 12 (one per 30 min)", len(evs))
	}
	for i := 1; i < len(evs); i++ {
		if gap := evs[i].Time.Sub(evs[i-1].Time); gap < 30*time.Minute {
			t.Fatalf("probes %d and %d %s apart", i-1, i, gap)
		}
	}
	if st, _ := w.srv.Status("9996631007"); st.Limited {
		t.Fatal("probing got the account limited")
	}
}

func spamBotEvents(acct *monitor.Account) []monitor.Event {
	var out []monitor.Event
	for _, e := range acct.Events() {
		if e.Type == monitor.EventProbe && e.Probe == monitor.ProbeSpamBot {
			out = append(out, e)
		}
	}
	return out
}

// SpamBot states a release time to the minute ("09:00" for 09:00:45).
// The monitor, and so the guard, keep the account limited to the end of
// that minute: a cold DM in its last seconds is refused locally instead
// of reaching Telegram, which would answer PEER_FLOOD and count a
// violation. After the minute the account writes again.
func TestGuardHoldsLimitToTheEndOfSpamBotsMinute(t *testing.T) {
	w := newSim(t)
	const phone = "9996631005"
	acct, opts := w.account(t, "dated", phone)
	g, err := guard.New(acct, guard.Options{Profile: w.srv.Profile(), Created: w.srv.Clock().Now().Add(-adult), Registerer: w.reg})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	opts.Middlewares = []telegram.Middleware{g.Middleware(), acct.Middleware()}
	now := w.srv.Clock().Now()
	until := now.Truncate(time.Minute).Add(2*time.Hour + 45*time.Second)
	if err := w.srv.Limit(phone, until.Sub(now)); err != nil {
		t.Fatal(err)
	}
	stated := until.Truncate(time.Minute)
	names := w.srv.Usernames(2)
	run(t, opts, func(ctx context.Context, api *tg.Client) {
		if err := probe.NewSpamBot(acct, api, spambot.ProberOptions{}).Run(ctx); err != nil {
			t.Fatal(err)
		}
		if s := acct.Snapshot(); s.SpamBot == nil || !s.SpamBot.Until.Equal(stated) {
			t.Fatalf("SpamBot %+v, want until %v", s.SpamBot, stated)
		}
		w.srv.Advance(until.Add(-15 * time.Second).Sub(w.srv.Clock().Now()))
		u, err := resolve(ctx, api, names[0])
		if err != nil {
			t.Fatal(err)
		}
		var blocked *guard.BlockedError
		if err := dm(ctx, api, u, 0); !errors.As(err, &blocked) {
			t.Fatalf("cold DM 15 s before the server's limit ends: %v, want refused by the guard", err)
		}
		w.srv.Advance(stated.Add(time.Minute).Sub(w.srv.Clock().Now()))
		if err := dm(ctx, api, u, 1); err != nil {
			t.Fatalf("cold DM after the stated minute: %v", err)
		}
	})
	if st, _ := w.srv.Status(phone); st.Limited || st.Restrictions > 1 {
		t.Fatalf("server status %+v: the guard let a limited DM through", st)
	}
}
