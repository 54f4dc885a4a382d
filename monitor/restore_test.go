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
	// Down for two days: the SpamBot-stated limit ended at +30 h.
	clk.Advance(48 * time.Hour)
	if s := acct.Snapshot(); s.State != OK {
		t.Fatalf("after the limit: %s", s.State)
	}
	if len(changes) != 1 || changes[0].From != Limited || !changes[0].Time.Equal(epoch.Add(30*time.Hour)) {
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
