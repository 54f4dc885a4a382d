package monitor

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

func TestSpamBotFreeVersusRecentPeerFlood(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	f.clock.Advance(time.Hour)
	// Free right after a PEER_FLOOD: "free" is necessary, not sufficient.
	f.acct.ObserveSpamBot(f.clock.Now(), spambot.Result{State: spambot.Free})
	f.expect(Limited)
	// Permanent from SpamBot; a later PEER_FLOOD is a symptom; free once
	// the signals are old lifts it.
	f.acct.ObserveSpamBot(f.clock.Now(), spambot.Result{State: spambot.LimitedPermanent})
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	f.clock.Advance(25 * time.Hour)
	if s := f.expect(Limited); !s.Limit.Permanent {
		t.Fatalf("limit %+v", s.Limit)
	}
	f.acct.ObserveSpamBot(f.clock.Now(), spambot.Result{State: spambot.Free})
	if s := f.expect(OK); s.SpamBot.State != spambot.Free {
		t.Fatalf("SpamBot %+v", s.SpamBot)
	}
}

func TestSpamBotDatedLimitIsAuthoritative(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	until := epoch.Add(30 * time.Hour)
	f.acct.ObserveSpamBot(epoch, spambot.Result{State: spambot.LimitedTemporary, Until: until})
	f.clock.Advance(10 * time.Hour)
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD") // a symptom: does not extend
	s := f.expect(Limited)
	until = until.Add(spambot.DatePrecision) // the end of the stated minute
	if !s.Limit.UntilKnown || !s.Limit.Until.Equal(until) {
		t.Fatalf("limit %+v, want known until %v", s.Limit, until)
	}
	f.clock.AdvanceTo(until.Add(time.Second))
	f.expect(OK)
	// The state change a probe caused names the probe.
	for _, e := range f.states {
		if e.State == Limited && e.Probe != ProbeSpamBot {
			t.Fatalf("limited by SpamBot without the probe named: %+v", e)
		}
	}
}

func TestFailedSpamBotProbeMakesQuietAccountUnknown(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.acct.ObserveSpamBot(epoch, spambot.Result{State: spambot.Unknown, Reason: "no reply within 30s"})
	if s := f.expect(Unknown); s.Reason != "last SpamBot probe failed" {
		t.Fatalf("reason %q", s.Reason)
	}
	f.acct.ObserveSpamBot(epoch.Add(time.Hour), spambot.Result{State: spambot.Free})
	f.expect(OK)
	f.acct.ObserveProbeError(epoch.Add(2*time.Hour), ProbeSpamBot, errors.New("resolve failed"))
	f.expect(Unknown)
}

func TestFreezeProbe(t *testing.T) {
	f := newFixture(t, Options{})
	f.rpcErr("messages.sendMessage", 420, "FROZEN_METHOD_INVALID")
	f.acct.ObserveFreeze(epoch, FreezeStatus{Reason: "appConfigNotModified"})
	f.expect(Frozen) // unknown is never "not frozen"
	until := epoch.Add(14 * 24 * time.Hour)
	f.acct.ObserveFreeze(epoch, FreezeStatus{Known: true, Frozen: true, Since: epoch.Add(-time.Hour), DeletionDate: until, AppealURL: "https://t.me/spambot"})
	if s := f.expect(Frozen); !s.Freeze.DeletionDate.Equal(until) || s.Freeze.AppealURL == "" {
		t.Fatalf("freeze %+v", s.Freeze)
	}
	f.clock.Advance(time.Minute) // a request sent after the evidence
	f.acct.ObserveFreeze(f.clock.Now(), FreezeStatus{Known: true})
	f.expect(OK)
}

func TestSelfAndSessionsProbes(t *testing.T) {
	f := newFixture(t, Options{})
	f.acct.ObserveSelf(epoch, SelfStatus{})
	f.expect(OK)
	f.acct.ObserveSelf(epoch, SelfStatus{Restricted: true, Reasons: []string{"all: spam: restricted"}})
	if s := f.expect(Watch); s.Reason != "self user newly flagged restricted (all: spam: restricted)" {
		t.Fatalf("reason %q", s.Reason)
	}
	g := newFixture(t, Options{})
	g.acct.ObserveSessions(epoch, SessionsStatus{Count: 1, Hashes: []int64{1}, CurrentListed: true})
	g.expect(OK)
	g.acct.ObserveSessions(epoch, SessionsStatus{Count: 2, Hashes: []int64{1, 2}, Devices: map[int64]string{2: "Pixel, Telegram 11, Narnia"}, CurrentListed: true})
	if s := g.expect(Watch); s.Reason != "2 session(s): 1 new session(s): Pixel, Telegram 11, Narnia" {
		t.Fatalf("reason %q", s.Reason)
	}
	h := newFixture(t, Options{})
	h.acct.ObserveSelf(epoch, SelfStatus{Deleted: true})
	h.expect(Dead)
}

// A "not frozen" answer to a request sent before the latest freeze
// evidence is stale: it must not clear the freeze.
func TestStaleNotFrozenAnswerKeepsNewerFreeze(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	sent := f.clock.Now()
	f.clock.Advance(time.Second)
	f.rpcErr("messages.sendMessage", 420, "FROZEN_METHOD_INVALID")
	f.acct.ObserveFreeze(sent, FreezeStatus{Known: true})
	f.expect(Frozen)
	// Nor before SpamBot's frozen answer.
	f.acct.ObserveSpamBot(f.clock.Now(), spambot.Result{State: spambot.Frozen})
	f.acct.ObserveFreeze(f.clock.Now().Add(-time.Millisecond), FreezeStatus{Known: true})
	f.expect(Frozen)
	// A request sent after the evidence clears it.
	f.clock.Advance(time.Minute)
	f.acct.ObserveFreeze(f.clock.Now(), FreezeStatus{Known: true})
	f.expect(OK)
}

// A frozen account's state has no end; the deletion date is the freeze's
// own field, not the state's "until".
func TestFrozenStateUntilIsNotTheDeletionDate(t *testing.T) {
	f := newFixture(t, Options{})
	deletion := epoch.Add(14 * 24 * time.Hour)
	f.acct.ObserveFreeze(epoch, FreezeStatus{Known: true, Frozen: true, Since: epoch, DeletionDate: deletion})
	s := f.expect(Frozen)
	if !s.Until.IsZero() || !s.Freeze.DeletionDate.Equal(deletion) {
		t.Fatalf("until %v, freeze %+v; want no until and the deletion date %v", s.Until, s.Freeze, deletion)
	}
	b, err := json.Marshal(s.Freeze)
	if err != nil || !strings.Contains(string(b), `"deletion_date":"2026-03-15T12:00:00Z"`) {
		t.Fatalf("freeze JSON %s %v", b, err)
	}
	for _, e := range f.states {
		if !e.Until.IsZero() {
			t.Fatalf("state change %+v carries an until", e)
		}
	}
}

// PEER_FLOOD now, then one dated 23 h earlier reported after it: the
// limit's latest signal stays the newer one, so SpamBot's "free" 2 h later
// does not lift the limit.
func TestLatePeerFloodKeepsLatestLimitSignal(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	f.acct.ObserveSignal(epoch.Add(-23*time.Hour), "messages.sendMessage", signal.Parse(400, "PEER_FLOOD"))
	f.clock.Advance(2 * time.Hour)
	f.acct.ObserveSpamBot(f.clock.Now(), spambot.Result{State: spambot.Free})
	if s := f.expect(Limited); !s.Limit.LastSignal.Equal(epoch) {
		t.Fatalf("limit %+v, want its last signal at %v", s.Limit, epoch)
	}
}

// SpamBot writes release times to the minute, truncated: "until 09:00"
// may mean 09:00:45. The limit lasts to the end of the stated minute, so
// the account is not reported free while Telegram still limits it.
func TestSpamBotStatedMinuteLastsToItsEnd(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	stated := epoch.Add(21 * time.Hour) // "until 2 Mar 2026, 09:00 UTC"
	f.acct.ObserveSpamBot(epoch, spambot.Result{State: spambot.LimitedTemporary, Until: stated})
	s := f.expect(Limited)
	if end := stated.Add(time.Minute); !s.Limit.Until.Equal(end) || !s.Until.Equal(end) || !s.SpamBot.Until.Equal(stated) {
		t.Fatalf("limit until %v, state until %v, SpamBot until %v; want %v, %v and SpamBot's own %v",
			s.Limit.Until, s.Until, s.SpamBot.Until, end, end, stated)
	}
	if limited, _ := f.acct.Restricted(stated.Add(59 * time.Second)); !limited {
		t.Fatal("not limited within the stated minute")
	}
	if limited, _ := f.acct.Restricted(stated.Add(time.Minute)); limited {
		t.Fatal("limited after the stated minute")
	}
}
