package monitor

import (
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t      *testing.T
	clock  *vclock.Clock
	mon    *Monitor
	acct   *Account
	sink   []Event
	states []Event
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: vclock.New(epoch)}
	opts.Clock = f.clock
	opts.Sink = SinkFunc(func(e Event) { f.sink = append(f.sink, e) })
	mon, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.mon = mon
	mon.Subscribe(func(e Event) { f.states = append(f.states, e) })
	if f.acct, err = mon.Account("alice"); err != nil {
		t.Fatal(err)
	}
	return f
}

// rpcErr feeds an RPC error through the same path the middleware uses.
func (f *fixture) rpcErr(method string, code int, msg string) {
	f.acct.observeError(method, f.clock.Now(), tgerr.New(code, msg))
}

func (f *fixture) ok(method string) {
	if f.acct.needsSuccess.Load() {
		f.acct.observeSuccess(method, f.acct.gen.Load(), f.clock.Now())
	}
}

func (f *fixture) expect(st State) Snapshot {
	f.t.Helper()
	s := f.acct.Snapshot()
	if s.State != st {
		f.t.Fatalf("at +%s: state %s (%s), want %s", f.clock.Now().Sub(epoch), s.State, s.Reason, st)
	}
	return s
}

// transitions renders the state changes seen by subscribers as "from>to@offset".
func (f *fixture) transitions() string {
	var b []string
	for _, e := range f.states {
		b = append(b, e.From.String()+">"+e.State.String()+"@"+e.Time.Sub(epoch).String())
	}
	return strings.Join(b, " ")
}

func TestUnknownUntilFirstCall(t *testing.T) {
	f := newFixture(t, Options{})
	f.expect(Unknown)
	f.ok("users.getUsers")
	f.expect(OK)
	if got := f.transitions(); got != "unknown>ok@0s" {
		t.Fatalf("transitions = %s", got)
	}
	if f.acct.needsSuccess.Load() {
		t.Fatal("success path still slow after the account was seen")
	}
}

func TestFloodWaitThrottlesUntilItEnds(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.clock.Advance(time.Minute)
	f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_30")
	s := f.expect(Throttled)
	if len(s.FloodWaits) != 1 || s.FloodWaits[0].Method != "contacts.resolveUsername" ||
		!s.FloodWaits[0].Until.Equal(epoch.Add(time.Minute+30*time.Second)) || s.FloodWaits[0].Wait != 30*time.Second {
		t.Fatalf("flood waits = %+v", s.FloodWaits)
	}
	if !s.Until.Equal(s.FloodWaits[0].Until) {
		t.Fatalf("state until %v, want the wait's end", s.Until)
	}
	f.clock.Advance(29 * time.Second)
	f.expect(Throttled)
	// Looked at long after the end, the transition is still dated at the end.
	f.clock.Advance(time.Hour)
	if s := f.expect(OK); len(s.FloodWaits) != 0 {
		t.Fatalf("expired wait still listed: %+v", s.FloodWaits)
	}
	if got := f.transitions(); got != "unknown>ok@0s ok>throttled@1m0s throttled>ok@1m30s" {
		t.Fatalf("transitions = %s", got)
	}
}

func TestLongFloodWaitPutsAccountOnWatch(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("channels.joinChannel", 420, "FLOOD_WAIT_348")
	f.expect(Throttled)
	f.clock.Advance(24*time.Hour + time.Second)
	f.expect(OK)
	want := "unknown>ok@0s ok>throttled@0s throttled>watch@5m48s watch>ok@24h0m0s"
	if got := f.transitions(); got != want {
		t.Fatalf("transitions = %s\nwant          %s", got, want)
	}
}

func TestRepeatedShortWaitsPutAccountOnWatch(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	for i := 0; i < 2; i++ {
		f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_3")
		f.clock.Advance(10 * time.Minute)
	}
	f.expect(OK)
	f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_3")
	f.clock.Advance(5 * time.Second)
	s := f.expect(Watch)
	if !strings.Contains(s.Reason, "3 flood waits on contacts.resolveUsername") {
		t.Fatalf("reason = %q", s.Reason)
	}
	// Spread over more than the window, three waits are not "repeated".
	g := newFixture(t, Options{})
	g.ok("users.getUsers")
	for i := 0; i < 3; i++ {
		g.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_3")
		g.clock.Advance(40 * time.Minute)
	}
	g.expect(OK)
}

func TestSlowmodeDoesNotThrottleTheAccount(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("messages.sendMessage", 420, "SLOWMODE_WAIT_600")
	f.expect(OK)
}

func TestPeerFloodLimitsForTheAssumedHold(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	s := f.expect(Limited)
	if !s.Limit.Active || s.Limit.UntilKnown || !s.Limit.Until.Equal(epoch.Add(24*time.Hour)) {
		t.Fatalf("limit = %+v", s.Limit)
	}
	if s.Risk != 60 { // raw 40 -> 55.1, raised to the limited floor
		t.Fatalf("risk = %v, want 60", s.Risk)
	}
	// A second PEER_FLOOD extends the limit from its own time.
	f.clock.Advance(12 * time.Hour)
	f.rpcErr("channels.inviteToChannel", 400, "PEER_FLOOD")
	f.clock.Advance(24 * time.Hour)
	s = f.expect(OK)
	if s.Limit.Active {
		t.Fatalf("limit still active: %+v", s.Limit)
	}
	if got := f.transitions(); got != "unknown>ok@0s ok>limited@0s limited>ok@36h0m0s" {
		t.Fatalf("transitions = %s", got)
	}
}

func TestFrozenMethodInvalidIsFrozenNotThrottled(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("messages.sendMessage", 420, "FROZEN_METHOD_INVALID")
	s := f.expect(Frozen)
	if len(s.FloodWaits) != 0 {
		t.Fatalf("frozen error produced a flood wait: %+v", s.FloodWaits)
	}
	if !s.Freeze.Active || !s.Freeze.Since.Equal(epoch) {
		t.Fatalf("freeze = %+v", s.Freeze)
	}
	f.clock.Advance(30 * 24 * time.Hour)
	f.expect(Frozen) // only a freeze probe can clear it
}

func TestBanIsStickyUntilAnAuthorisedCallSucceeds(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	// A call that started before the ban and succeeds after it proves nothing.
	early := f.acct.gen.Load()
	f.rpcErr("users.getUsers", 401, "USER_DEACTIVATED_BAN")
	s := f.expect(Banned)
	if s.Risk != 100 {
		t.Fatalf("risk = %v, want 100", s.Risk)
	}
	f.acct.observeSuccess("messages.getHistory", early, f.clock.Now())
	f.expect(Banned)
	f.ok("help.getConfig") // works without authorisation
	f.expect(Banned)
	f.ok("messages.getHistory")
	f.expect(OK)
}

func TestSessionStatesAndTraps(t *testing.T) {
	f := newFixture(t, Options{})
	f.rpcErr("auth.signIn", 401, "SESSION_PASSWORD_NEEDED")
	f.expect(OK)
	f.ok("users.getUsers") // signed in: from now on the key must stay registered
	f.rpcErr("users.getUsers", 401, "AUTH_KEY_UNREGISTERED")
	f.expect(Dead)
	f.ok("users.getUsers")
	f.expect(OK)
	f.rpcErr("users.getUsers", 401, "USER_DEACTIVATED")
	f.expect(Dead)
}

func TestSeverityOrder(t *testing.T) {
	f := newFixture(t, Options{})
	f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_60")
	f.expect(Throttled)
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	f.expect(Limited)
	f.rpcErr("messages.sendMessage", 420, "FROZEN_METHOD_INVALID")
	f.expect(Frozen)
	f.rpcErr("users.getUsers", 401, "AUTH_KEY_UNREGISTERED")
	f.expect(Dead)
	f.rpcErr("users.getUsers", 401, "USER_DEACTIVATED_BAN")
	f.expect(Banned)
}

func TestWatchSignals(t *testing.T) {
	for _, msg := range []string{"2FA_CONFIRM_WAIT_604800", "API_ID_PUBLISHED_FLOOD", "PHONE_NUMBER_FLOOD"} {
		f := newFixture(t, Options{})
		f.ok("users.getUsers")
		f.rpcErr("account.getPassword", 420, msg)
		f.expect(Watch)
	}
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	for i := 0; i < 4; i++ {
		f.rpcErr("messages.sendMessage", 400, "USER_IS_BLOCKED")
	}
	f.expect(OK)
	f.rpcErr("messages.sendMessage", 403, "USER_PRIVACY_RESTRICTED")
	f.expect(Watch)
}

func TestRiskDecays(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	// 96 h later: raw 40 * 2^(-96/72) = 15.87; score 100*(1-e^(-15.87/50)) = 27.2.
	f.clock.Advance(96 * time.Hour)
	if s := f.expect(OK); s.Risk != 27.2 {
		t.Fatalf("risk after 4 days = %v, want 27.2", s.Risk)
	}
	f.clock.Advance(365 * 24 * time.Hour)
	if s := f.expect(OK); s.Risk != 0 {
		t.Fatalf("risk after a year = %v", s.Risk)
	}
}

func TestLongWaitWeighsMoreThanShort(t *testing.T) {
	short := newFixture(t, Options{})
	short.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_5")
	long := newFixture(t, Options{})
	long.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_66230")
	s, l := short.acct.Snapshot().Risk, long.acct.Snapshot().Risk
	// 2 points -> 3.9; 12 points -> 21.3.
	if s != 3.9 || l != 21.3 {
		t.Fatalf("risk short=%v long=%v, want 3.9 and 21.3", s, l)
	}
}

func TestEventsRingAndSinkOrder(t *testing.T) {
	f := newFixture(t, Options{EventBuffer: 4})
	f.ok("users.getUsers")
	for i := 0; i < 5; i++ {
		f.rpcErr("contacts.resolveUsername", 400, "USERNAME_NOT_OCCUPIED")
	}
	evs := f.acct.Events()
	if len(evs) != 4 {
		t.Fatalf("ring kept %d events, want 4", len(evs))
	}
	if len(f.sink) != 6 { // unknown>ok + 5 signals
		t.Fatalf("sink got %d events, want 6", len(f.sink))
	}
	if f.sink[0].Type != EventState || f.sink[1].Type != EventSignal {
		t.Fatalf("sink order: %v then %v", f.sink[0].Type, f.sink[1].Type)
	}
	for i, e := range evs {
		if e != f.sink[i+2] {
			t.Fatalf("ring[%d] = %+v, want %+v", i, e, f.sink[i+2])
		}
	}
}

func TestSignalEventCarriesStateAfter(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	var sig Event
	for _, e := range f.sink {
		if e.Type == EventSignal {
			sig = e
		}
	}
	if sig.From != OK || sig.State != Limited || sig.Signal.Kind != signal.PeerFlood || sig.Method != "messages.sendMessage" || sig.Risk != 60 {
		t.Fatalf("signal event = %+v", sig)
	}
}

func TestSubscriberMayObserveTheSameAccount(t *testing.T) {
	f := newFixture(t, Options{})
	f.mon.Subscribe(func(e Event) {
		if e.State == Limited {
			// Re-entrant: must neither deadlock nor reorder.
			f.acct.ObserveSignal(e.Time, "messages.sendMessage", signal.Parse(420, "FROZEN_METHOD_INVALID"))
		}
	})
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	f.expect(Frozen)
	if got := f.transitions(); got != "unknown>limited@0s limited>frozen@0s" {
		t.Fatalf("transitions = %s", got)
	}
}

func TestLateSignalIsDatedButDoesNotRewriteHistory(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.clock.Advance(time.Hour)
	f.acct.Snapshot()
	// Reported late: happened 10 min ago with a 30 min wait, so 20 min remain.
	f.acct.ObserveSignal(f.clock.Now().Add(-10*time.Minute), "messages.sendMessage", signal.Parse(420, "FLOOD_WAIT_1800"))
	s := f.expect(Throttled)
	if !s.FloodWaits[0].Until.Equal(epoch.Add(time.Hour + 20*time.Minute)) {
		t.Fatalf("until = %v", s.FloodWaits[0].Until)
	}
	if !f.states[len(f.states)-1].Time.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("state change dated %v, want the evaluation time", f.states[len(f.states)-1].Time)
	}
}

func TestUnsubscribe(t *testing.T) {
	f := newFixture(t, Options{})
	n := 0
	cancel := f.mon.Subscribe(func(Event) { n++ })
	f.ok("users.getUsers")
	cancel()
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	if n != 1 {
		t.Fatalf("subscriber called %d times, want 1", n)
	}
}

// A per-account subscriber hears its account's state changes and no
// other's, and nothing after it cancels.
func TestSubscribeAccount(t *testing.T) {
	f := newFixture(t, Options{})
	bob, err := f.mon.Account("bob")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	cancel := f.mon.SubscribeAccount("bob", func(e Event) { seen = append(seen, e.Account+":"+e.State.String()) })
	f.ok("users.getUsers") // alice: unknown -> ok
	bob.observeError("messages.sendMessage", f.clock.Now(), tgerr.New(400, "PEER_FLOOD"))
	cancel()
	bob.observeError("account.updateStatus", f.clock.Now(), tgerr.New(420, "FROZEN_METHOD_INVALID"))
	if got := strings.Join(seen, " "); got != "bob:limited" {
		t.Fatalf("bob's subscriber saw %q, want only bob's change before it cancelled", got)
	}
	if n := len(f.states); n != 3 {
		t.Fatalf("the fleet's subscriber saw %d changes (%s), want 3", n, f.transitions())
	}
	if noop := f.mon.SubscribeAccount("", func(Event) { t.Error("called") }); noop == nil {
		t.Fatal("nil cancel")
	}
}

func TestValidateName(t *testing.T) {
	for _, good := range []string{"alice", "crm-bot.2", "fleet_07", "ops@eu"} {
		if err := ValidateName(good); err != nil {
			t.Errorf("ValidateName(%q) = %v", good, err)
		}
	}
	for bad, want := range map[string]string{
		"":                      "empty",
		"+79991234567":          "phone number",
		"79991234567":           "phone number",
		"+7 (999) 123-45-67":    "phone number",
		"a b":                   "not allowed",
		"ünïcode":               "not allowed",
		strings.Repeat("x", 65): "longer than 64",
	} {
		err := ValidateName(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateName(%q) = %v, want error containing %q", bad, err, want)
		}
		if err != nil && strings.Contains(bad, "999") && strings.Contains(err.Error(), "999") {
			t.Errorf("error echoes the phone number: %v", err)
		}
	}
	f := newFixture(t, Options{})
	if _, err := f.mon.Account("+79991234567"); err == nil {
		t.Fatal("Monitor.Account accepted a phone number")
	}
}

func TestPolicyValidation(t *testing.T) {
	p := DefaultPolicy()
	p.LimitHold = 0
	if _, err := New(Options{Policy: &p}); err == nil || !strings.Contains(err.Error(), "LimitHold") {
		t.Fatalf("New with bad policy: %v", err)
	}
	p = DefaultPolicy()
	p.Weights[signal.PeerFlood] = Weight{Points: 1}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "peer_flood") {
		t.Fatalf("Validate: %v", err)
	}
}

// A signal reported late (older than the latest one of its kind) must not
// replace the reason of the watch or limit that a newer signal set.
func TestLateSignalKeepsLatestReasons(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.rpcErr("messages.sendMessage", 400, "USER_RESTRICTED")
	f.clock.Advance(time.Hour)
	f.rpcErr("channels.joinChannel", 420, "FLOOD_WAIT_600")
	f.clock.Advance(11 * time.Minute)
	f.acct.ObserveSignal(f.clock.Now().Add(-23*time.Hour), "auth.sendCode", signal.Parse(400, "PHONE_NUMBER_FLOOD"))
	f.acct.ObserveSignal(f.clock.Now().Add(-23*time.Hour), "channels.inviteToChannel", signal.Parse(400, "PEER_FLOOD"))
	s := f.expect(Limited)
	if s.Limit.Reason != "USER_RESTRICTED on messages.sendMessage" {
		t.Fatalf("limit reason %q, want the latest signal's", s.Limit.Reason)
	}
	// Once the limit ends, the watch shows the long wait, which is newer
	// than the late login flood.
	f.clock.Advance(23 * time.Hour)
	if s := f.expect(Watch); s.Reason != "long FLOOD_WAIT of 10m0s on channels.joinChannel" {
		t.Fatalf("watch reason %q, want the latest watch signal's", s.Reason)
	}
}

// Risk does not depend on the order signals arrive in: a late signal adds
// its points decayed by its own age.
func TestRiskDoesNotDependOnArrivalOrder(t *testing.T) {
	peerFlood := signal.Parse(400, "PEER_FLOOD")
	first, second := epoch, epoch.Add(9*24*time.Hour)
	inOrder := newFixture(t, Options{})
	inOrder.clock.AdvanceTo(second)
	inOrder.acct.ObserveSignal(first, "messages.sendMessage", peerFlood)
	inOrder.acct.ObserveSignal(second, "messages.sendMessage", peerFlood)
	late := newFixture(t, Options{})
	late.clock.AdvanceTo(second)
	late.acct.ObserveSignal(second, "messages.sendMessage", peerFlood)
	late.acct.ObserveSignal(first, "messages.sendMessage", peerFlood)
	a, b := inOrder.acct.Snapshot(), late.acct.Snapshot()
	// raw 40 + 40 × 2^-3 = 45 either way.
	if len(a.RiskInputs) != 1 || len(b.RiskInputs) != 1 || a.RiskInputs[0].Value != 45 || b.RiskInputs[0].Value != 45 {
		t.Fatalf("raw risk in order %+v, out of order %+v; want 45 both", a.RiskInputs, b.RiskInputs)
	}
	if a.Risk != b.Risk {
		t.Fatalf("risk %v in order, %v out of order", a.Risk, b.Risk)
	}

	// Twenty 5 s waits from 1971 add nothing measurable to a fresh one.
	f := newFixture(t, Options{})
	f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_5")
	for i := 0; i < 20; i++ {
		f.acct.ObserveSignal(time.Date(1971, 1, 1, 0, 0, i, 0, time.UTC), "contacts.resolveUsername", signal.Parse(420, "FLOOD_WAIT_5"))
	}
	if s := f.acct.Snapshot(); s.Risk != 3.9 {
		t.Fatalf("risk %v after 20 waits from 1971, want 3.9 (one fresh 5 s wait)", s.Risk)
	}
}

// The last signal of a snapshot (and the event the daemon stores for a
// reported signal) carries the risk after it, like the event delivered to
// the sink.
func TestLastSignalCarriesRisk(t *testing.T) {
	f := newFixture(t, Options{})
	f.ok("users.getUsers")
	f.acct.ObserveSignal(epoch, "messages.sendMessage", signal.Parse(400, "PEER_FLOOD"))
	s := f.acct.Snapshot()
	if s.LastSignal == nil || s.LastSignal.Risk != 60 {
		t.Fatalf("last signal %+v, want risk 60", s.LastSignal)
	}
	if sunk := f.sink[len(f.sink)-2]; sunk.Type != EventSignal || *s.LastSignal != sunk {
		t.Fatalf("last signal %+v differs from the event delivered %+v", *s.LastSignal, sunk)
	}
}

// Before its first sign-in, a client's key is not authorised: Telegram
// answers AUTH_KEY_UNREGISTERED (gotd's auth status check does exactly
// this). An account never seen authorised is not a dead session.
func TestUnauthorisedKeyBeforeFirstSignInIsNotDead(t *testing.T) {
	f := newFixture(t, Options{})
	f.rpcErr("users.getUsers", 401, "AUTH_KEY_UNREGISTERED")
	s := f.expect(Unknown)
	if !strings.Contains(s.Reason, "not signed in") {
		t.Fatalf("reason %q", s.Reason)
	}
	f.ok("auth.sendCode")
	f.ok("auth.signIn")
	f.expect(Unknown) // signing in is not yet a working session
	f.ok("users.getUsers")
	s = f.expect(OK)
	if len(s.RiskInputs) != 0 || s.Risk != 0 {
		t.Fatalf("risk %v from %+v, want none", s.Risk, s.RiskInputs)
	}
	if got := f.transitions(); got != "unknown>ok@0s" {
		t.Fatalf("transitions = %s", got)
	}
	// Once authorised, the same error means the session is gone.
	f.rpcErr("users.getUsers", 401, "AUTH_KEY_UNREGISTERED")
	f.expect(Dead)
	// ... also after a restart.
	g := newFixture(t, Options{})
	g.acct.Restore(jsonRound(t, f.acct.Snapshot()), nil)
	g.ok("users.getUsers")
	g.rpcErr("users.getUsers", 401, "AUTH_KEY_UNREGISTERED")
	g.expect(Dead)
}

// A phone number written with underscores, or with letters around it, is
// still a phone number: account names follow the same rule as tags (7 or
// more digits, however separated) and errors do not echo them.
func TestValidateNameRefusesPhoneNumbersWrittenAnyWay(t *testing.T) {
	for _, bad := range []string{"7_999_123_45_67", "user_7999_123_45_67", "phone-7999-123-4567", "a1b2c3d4e5f6g7", "crm.7999.1234567"} {
		err := ValidateName(bad)
		if err == nil || !strings.Contains(err.Error(), "phone number") {
			t.Errorf("ValidateName(%q) = %v, want a phone-number error", bad, err)
			continue
		}
		if strings.Contains(err.Error(), "999") || strings.Contains(err.Error(), "1234") || strings.Contains(err.Error(), "g7") {
			t.Errorf("error echoes the name: %v", err)
		}
	}
	for _, good := range []string{"bot-2024-06", "fleet_123456", "eu-1.crm-22"} {
		if err := ValidateName(good); err != nil {
			t.Errorf("ValidateName(%q) = %v", good, err)
		}
	}
}
