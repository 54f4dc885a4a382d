package monitor

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

// A restarted daemon rebuilds each account from its stored snapshot (as
// JSON, the way the store keeps it): same state, since, until, risk,
// waits, limit, freeze and SpamBot status; expiries while it was down are
// replayed at their own time.
func TestRestoreFromSnapshot(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_3600")
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	f.acct.ObserveSpamBot(f.clock.Now(), spambot.Result{State: spambot.LimitedTemporary, Until: epoch.Add(30 * time.Hour)})
	f.clock.Advance(10 * time.Minute)
	before := f.acct.Snapshot()
	b, err := json.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	var saved Snapshot
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}

	// The new process: same virtual time.
	clk := vclock.New(f.clock.Now())
	mon, _ := New(Options{Clock: clk})
	var changes []Event
	mon.Subscribe(func(e Event) { changes = append(changes, e) })
	acct, _ := mon.Account("alice")
	acct.Restore(saved, f.acct.Events())
	after := acct.Snapshot()
	norm := func(s Snapshot) Snapshot {
		s.LastSignal = nil // compared separately: JSON drops monotonic clock readings
		return s
	}
	if !reflect.DeepEqual(norm(jsonRound(t, before)), norm(jsonRound(t, after))) {
		t.Fatalf("restored snapshot differs:\nbefore %+v\nafter  %+v", before, after)
	}
	if len(acct.Events()) != len(f.acct.Events()) {
		t.Fatalf("restored %d events, want %d", len(acct.Events()), len(f.acct.Events()))
	}
	if len(changes) != 0 {
		t.Fatalf("restoring delivered %d state changes", len(changes))
	}
	// Down for two days: the SpamBot-stated limit ended at the end of
	// its minute, +30 h 1 min.
	clk.Advance(48 * time.Hour)
	if s := acct.Snapshot(); s.State != OK {
		t.Fatalf("after the limit: %s", s.State)
	}
	if len(changes) != 1 || changes[0].From != Limited || !changes[0].Time.Equal(epoch.Add(30*time.Hour+time.Minute)) {
		t.Fatalf("changes after restore: %+v", changes)
	}
}

func jsonRound(t *testing.T, s Snapshot) Snapshot {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out Snapshot
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRestoreBannedStaysBannedUntilAnAuthorisedSuccess(t *testing.T) {
	f := newFixture(t, Options{})
	f.rpcErr("users.getUsers", 401, "USER_DEACTIVATED_BAN")
	saved := jsonRound(t, f.acct.Snapshot())
	mon, _ := New(Options{Clock: f.clock})
	acct, _ := mon.Account("alice")
	acct.Restore(saved, nil)
	if s := acct.Snapshot(); s.State != Banned || s.Risk != 100 {
		t.Fatalf("restored %s risk %v", s.State, s.Risk)
	}
	acct.observeSuccess("messages.getHistory", acct.gen.Load(), f.clock.Now())
	if s := acct.Snapshot(); s.State != OK {
		t.Fatalf("after a success: %s", s.State)
	}
}

// restart saves the account's snapshot as JSON and restores it into a new
// monitor on the same clock, as the daemon does across a restart.
func (f *fixture) restart() *fixture {
	f.t.Helper()
	saved := jsonRound(f.t, f.acct.Snapshot())
	g := &fixture{t: f.t, clock: f.clock}
	mon, err := New(Options{Clock: f.clock, Sink: SinkFunc(func(e Event) { g.sink = append(g.sink, e) })})
	if err != nil {
		f.t.Fatal(err)
	}
	g.mon = mon
	mon.Subscribe(func(e Event) { g.states = append(g.states, e) })
	g.acct, _ = mon.Account(f.acct.Name())
	g.acct.Restore(saved, f.acct.Events())
	return g
}

// PEER_FLOOD, restart, SpamBot "free" an hour later: the limiting signal is
// within LimitHold of the probe, so the account stays limited, as it does
// without the restart.
func TestRestoreKeepsLatestPeerFloodTime(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	f.clock.Advance(time.Minute)
	g := f.restart()
	f.clock.Advance(time.Hour)
	g.acct.ObserveSpamBot(f.clock.Now(), spambot.Result{State: spambot.Free})
	g.expect(Limited)
	// The same with a limit whose end SpamBot stated, then a PEER_FLOOD.
	h := newFixture(t, Options{})
	h.ok("users.getUsers")
	h.acct.ObserveSpamBot(epoch, spambot.Result{State: spambot.LimitedTemporary, Until: epoch.Add(72 * time.Hour)})
	h.clock.Advance(10 * time.Hour)
	h.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	h.clock.Advance(time.Minute)
	if s := h.acct.Snapshot(); !s.Limit.LastSignal.Equal(epoch.Add(10 * time.Hour)) {
		t.Fatalf("limit %+v, want its last signal at +10h", s.Limit)
	}
	k := h.restart()
	h.clock.Advance(time.Hour)
	k.acct.ObserveSpamBot(h.clock.Now(), spambot.Result{State: spambot.Free})
	k.expect(Limited)
}

// A failed SpamBot probe hidden under a limit survives a restart: when
// the limit ends the account is unknown, not ok.
func TestRestoreKeepsFailedSpamBotProbeUnderLimit(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.acct.ObserveSpamBot(epoch, spambot.Result{State: spambot.Unknown, Reason: "no reply within 30s"})
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	f.clock.Advance(time.Minute)
	s := f.expect(Limited)
	g := f.restart()
	f.clock.Advance(25 * time.Hour)
	f.expect(Unknown)
	g.expect(Unknown)
	if p := s.Probes[ProbeSpamBot]; !p.Failed || !p.LastRun.Equal(epoch) || !p.LastOK.IsZero() {
		t.Fatalf("probes %+v", s.Probes)
	}
}

// Snapshots stored before the snapshot carried probe runs, the limit's
// last signal and the freeze's deletion date still restore sensibly.
func TestRestoreReadsOlderSnapshots(t *testing.T) {
	old := `{"account":"alice","state":"frozen","since":"2026-03-01T11:00:00Z","until":"2026-03-15T12:00:00Z",
	 "reason":"frozen since 2026-03-01T11:00:00Z (help.getAppConfig)","risk":90,"flood_waits":[],
	 "limit":{"active":true,"since":"2026-03-01T11:00:00Z","until":"2026-03-02T11:30:00Z","reason":"PEER_FLOOD on messages.sendMessage"},
	 "freeze":{"active":true,"since":"2026-03-01T11:00:00Z","until":"2026-03-15T12:00:00Z"},
	 "spambot":{"state":"free","at":"2026-03-01T10:00:00Z"},
	 "at":"2026-03-01T12:00:00Z"}`
	var sn Snapshot
	if err := json.Unmarshal([]byte(old), &sn); err != nil {
		t.Fatal(err)
	}
	if !sn.Freeze.DeletionDate.Equal(epoch.Add(14 * 24 * time.Hour)) {
		t.Fatalf("freeze %+v: the old until is the deletion date", sn.Freeze)
	}
	if p := sn.Probes[ProbeSpamBot]; !p.LastRun.Equal(epoch.Add(-2*time.Hour)) || !p.LastOK.Equal(p.LastRun) || p.Failed {
		t.Fatalf("probes %+v, want the SpamBot answer as the last run", sn.Probes)
	}
	f := newFixture(t, Options{})
	f.acct.Restore(sn, nil)
	s := f.expect(Frozen)
	if !s.Until.IsZero() || !s.Limit.LastSignal.Equal(epoch.Add(-30*time.Minute)) {
		t.Fatalf("until %v, limit %+v: an assumed limit's last signal is its end minus LimitHold", s.Until, s.Limit)
	}
	// An old unknown-by-failed-probe snapshot stays unknown.
	var failed Snapshot
	if err := json.Unmarshal([]byte(`{"account":"alice","state":"unknown","since":"2026-03-01T11:00:00Z",
	 "reason":"last SpamBot probe failed","risk":0,"flood_waits":[],"limit":{"active":false},"freeze":{"active":false},
	 "at":"2026-03-01T12:00:00Z"}`), &failed); err != nil {
		t.Fatal(err)
	}
	g := newFixture(t, Options{})
	g.acct.Restore(failed, nil)
	g.ok("users.getUsers")
	g.expect(Unknown)
}
