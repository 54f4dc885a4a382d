package guard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

var epoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// adult is a creation time old enough for the profile's adult limits.
var adult = epoch.Add(-365 * 24 * time.Hour)

// fakeTelegram is the invoker behind the guard: it records the calls that
// got through and answers with respond (nil: success, output untouched).
type fakeTelegram struct {
	mu      sync.Mutex
	calls   []string
	respond func(input bin.Encoder, output bin.Decoder) error
}

func (f *fakeTelegram) Invoke(_ context.Context, input bin.Encoder, output bin.Decoder) error {
	f.mu.Lock()
	f.calls = append(f.calls, monitor.MethodName(input))
	respond := f.respond
	f.mu.Unlock()
	if respond != nil {
		return respond(input, output)
	}
	return nil
}

func (f *fakeTelegram) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

type fixture struct {
	t     *testing.T
	clock *vclock.Clock
	mon   *monitor.Monitor
	acct  *monitor.Account
	g     *guard.Guard
	tg    *fakeTelegram
	inv   telegram.InvokeFunc
}

func newFixture(t *testing.T, opts guard.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: vclock.New(epoch), tg: &fakeTelegram{}}
	var err error
	if f.mon, err = monitor.New(monitor.Options{Clock: f.clock}); err != nil {
		t.Fatal(err)
	}
	if f.acct, err = f.mon.Account("alice"); err != nil {
		t.Fatal(err)
	}
	if f.g, err = guard.New(f.acct, opts); err != nil {
		t.Fatal(err)
	}
	// The recommended chain: guard outside, monitor inside.
	f.inv = f.g.Middleware().Handle(f.acct.Middleware().Handle(f.tg))
	return f
}

func (f *fixture) call(req bin.Encoder, out bin.Decoder) error {
	return f.inv.Invoke(context.Background(), req, out)
}

// mustPass fails the test unless the call reaches Telegram and succeeds.
func (f *fixture) mustPass(req bin.Encoder) {
	f.t.Helper()
	before := f.tg.count()
	if err := f.call(req, nil); err != nil {
		f.t.Fatalf("at +%s: %s: %v", f.clock.Now().Sub(epoch), monitor.MethodName(req), err)
	}
	if f.tg.count() != before+1 {
		f.t.Fatalf("%s did not reach Telegram", monitor.MethodName(req))
	}
}

// mustBlock fails the test unless the call is refused locally.
func (f *fixture) mustBlock(req bin.Encoder, reason guard.Reason) *guard.BlockedError {
	f.t.Helper()
	before := f.tg.count()
	err := f.call(req, nil)
	var be *guard.BlockedError
	if !errors.As(err, &be) {
		f.t.Fatalf("at +%s: %s: got %v, want a BlockedError", f.clock.Now().Sub(epoch), monitor.MethodName(req), err)
	}
	if be.Reason != reason {
		f.t.Fatalf("%s: reason %s, want %s (%v)", monitor.MethodName(req), be.Reason, reason, err)
	}
	if f.tg.count() != before {
		f.t.Fatalf("%s reached Telegram although blocked", monitor.MethodName(req))
	}
	return be
}

func (f *fixture) signal(method string, s signal.Signal) {
	f.acct.ObserveSignal(f.clock.Now(), method, s)
}

// learnContacts runs contacts.getContacts through the guard with Telegram
// answering the given contacts.
func (f *fixture) learnContacts(cs ...tg.Contact) {
	f.t.Helper()
	var users []tg.UserClass
	for _, c := range cs {
		users = append(users, &tg.User{ID: c.UserID, Contact: true, MutualContact: c.Mutual})
	}
	f.tg.mu.Lock()
	f.tg.respond = func(_ bin.Encoder, out bin.Decoder) error {
		if box, ok := out.(*tg.ContactsContactsBox); ok {
			box.Contacts = &tg.ContactsContacts{Contacts: cs, SavedCount: len(cs), Users: users}
		}
		return nil
	}
	f.tg.mu.Unlock()
	if err := f.call(&tg.ContactsGetContactsRequest{}, &tg.ContactsContactsBox{}); err != nil {
		f.t.Fatal(err)
	}
	f.tg.mu.Lock()
	f.tg.respond = nil
	f.tg.mu.Unlock()
}

func dm(user int64) *tg.MessagesSendMessageRequest {
	return &tg.MessagesSendMessageRequest{Peer: &tg.InputPeerUser{UserID: user, AccessHash: 1}, Message: "hello", RandomID: user}
}

func resolve(name string) *tg.ContactsResolveUsernameRequest {
	return &tg.ContactsResolveUsernameRequest{Username: name}
}

func join() *tg.ChannelsJoinChannelRequest {
	return &tg.ChannelsJoinChannelRequest{Channel: &tg.InputChannel{ChannelID: 7, AccessHash: 7}}
}

func invite(users ...int64) *tg.ChannelsInviteToChannelRequest {
	r := &tg.ChannelsInviteToChannelRequest{Channel: &tg.InputChannel{ChannelID: 7, AccessHash: 7}}
	for _, id := range users {
		r.Users = append(r.Users, &tg.InputUser{UserID: id, AccessHash: 1})
	}
	return r
}

const stranger = 1000 // user ids from here on are unknown to the guard

func TestBudgetBlockCarriesScaledLimitAndUntil(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	for i := range 8 {
		f.mustPass(dm(stranger + int64(i)))
	}
	be := f.mustBlock(dm(stranger+8), guard.ReasonBudget)
	want := limits.Limit{Window: limits.Duration(time.Hour), Max: 8}
	if be.Action != limits.DMNonContact || be.Limit.Window != want.Window || be.Limit.Max != want.Max {
		t.Fatalf("blocked on %s %+v, want dm_non_contact %+v", be.Action, be.Limit, want)
	}
	if !be.Until.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("Until %s, want %s", be.Until, epoch.Add(time.Hour))
	}
	if be.Account != "alice" || be.Method != "messages.sendMessage" || be.Count != 1 {
		t.Fatalf("error fields %+v", be)
	}
	const msg = `guard: messages.sendMessage blocked for account "alice": budget dm_non_contact (8 per 1h) exhausted until 2026-01-05T10:00:00Z`
	if be.Error() != msg {
		t.Fatalf("error\n got %s\nwant %s", be.Error(), msg)
	}
	// Other actions have their own budgets.
	f.mustPass(resolve("somebody"))
	// One second early it is still refused; at Until it passes.
	f.clock.Advance(time.Hour - time.Second)
	f.mustBlock(dm(stranger+8), guard.ReasonBudget)
	f.clock.Advance(time.Second)
	f.mustPass(dm(stranger + 8))
}

func TestMarginScalesEveryLimit(t *testing.T) {
	for _, tc := range []struct {
		margin float64
		want   int // dm_non_contact per hour for an adult account (profile: 10)
	}{{0, 8}, {0.8, 8}, {1, 10}, {0.5, 5}, {0.25, 2}, {0.01, 1}} {
		f := newFixture(t, guard.Options{Created: adult, Margin: tc.margin})
		n := 0
		for ; n < 20; n++ {
			if err := f.call(dm(stranger+int64(n)), nil); err != nil {
				break
			}
		}
		if n != tc.want {
			t.Errorf("margin %v: %d DMs allowed, want %d", tc.margin, n, tc.want)
		}
	}
}

func TestYoungAccountsUseYoungLimits(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		name    string
		created time.Time
		want    int
	}{
		{"unknown creation is young", time.Time{}, 2}, // young: 3/h * 0.8
		{"10 days old", epoch.Add(-10 * day), 2},
		{"40 days old", epoch.Add(-40 * day), 8}, // adult: 10/h * 0.8
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, guard.Options{Created: tc.created})
			for i := range tc.want {
				f.mustPass(dm(stranger + int64(i)))
			}
			be := f.mustBlock(dm(stranger+99), guard.ReasonBudget)
			if be.Limit.Max != tc.want {
				t.Fatalf("limit %+v, want max %d", be.Limit, tc.want)
			}
		})
	}
	t.Run("grows up on the clock", func(t *testing.T) {
		f := newFixture(t, guard.Options{Created: epoch.Add(-30*day + 30*time.Minute)})
		f.mustPass(dm(stranger))
		f.mustPass(dm(stranger + 1))
		f.mustBlock(dm(stranger+2), guard.ReasonBudget)
		f.clock.Advance(30 * time.Minute) // now 30 days old: adult limits, same history
		for i := range 6 {
			f.mustPass(dm(stranger + 10 + int64(i)))
		}
		f.mustBlock(dm(stranger+20), guard.ReasonBudget)
	})
}

func TestObserveModePassesThroughAndCounts(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFixture(t, guard.Options{Created: adult, Mode: guard.Observe, Registerer: reg})
	for i := range 10 {
		f.mustPass(dm(stranger + int64(i)))
	}
	f.signal("channels.joinChannel", signal.Signal{Kind: signal.FloodWait, Code: 420, Type: "FLOOD_WAIT", Wait: time.Minute})
	f.mustPass(join())
	blocked := blockedCounts(t, reg)
	if blocked["messages.sendMessage/budget"] != 2 || blocked["channels.joinChannel/flood_wait"] != 1 || len(blocked) != 2 {
		t.Fatalf("blocked_total %v, want 2 budget (sendMessage) and 1 flood_wait (joinChannel)", blocked)
	}
	// Observed calls are recorded like any other: the ratio shows the overshoot.
	if got := f.g.Used()[limits.DMNonContact]; got != 10.0/8 {
		t.Fatalf("dm_non_contact used %v, want %v", got, 10.0/8)
	}
}

func blockedCounts(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != guard.MetricBlocked.Name {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["account"] != "alice" {
				t.Errorf("account label %q", l["account"])
			}
			out[l["method"]+"/"+l["reason"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestLimitedAccountReachesContactsOnly(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	const mutualID, oneWayID, wroteID, updateID = 10, 11, 12, 13
	f.learnContacts(tg.Contact{UserID: mutualID, Mutual: true}, tg.Contact{UserID: oneWayID})
	f.g.Observe(context.Background(), &tg.UpdateShortMessage{UserID: wroteID, Message: "hi", ID: 1})
	// An incoming message inside an Updates container, through Handler.
	var handled int
	h := f.g.Handler(telegram.UpdateHandlerFunc(func(context.Context, tg.UpdatesClass) error { handled++; return nil }))
	if err := h.Handle(context.Background(), &tg.Updates{Updates: []tg.UpdateClass{
		&tg.UpdateNewMessage{Message: &tg.Message{ID: 2, PeerID: &tg.PeerUser{UserID: updateID}, Message: "hey"}},
	}}); err != nil || handled != 1 {
		t.Fatalf("handler: %v, next called %d times", err, handled)
	}
	// Our own outgoing message does not make its recipient a contact.
	f.g.Observe(context.Background(), &tg.UpdateShortMessage{Out: true, UserID: stranger + 5, Message: "hi", ID: 3})

	f.signal("messages.sendMessage", signal.Signal{Kind: signal.PeerFlood, Code: 400, Type: "PEER_FLOOD"})
	be := f.mustBlock(dm(stranger), guard.ReasonLimited)
	if be.Action != limits.DMNonContact || !be.Until.Equal(epoch.Add(24*time.Hour)) {
		t.Fatalf("limited block %+v, want dm_non_contact until the assumed end of the limit", be)
	}
	if !strings.Contains(be.Error(), "limited to mutual contacts") {
		t.Fatalf("error %q", be.Error())
	}
	f.mustBlock(dm(oneWayID), guard.ReasonLimited) // a contact, but not mutual
	f.mustBlock(dm(stranger+5), guard.ReasonLimited)
	f.mustPass(dm(mutualID))
	f.mustPass(dm(wroteID))
	f.mustPass(dm(updateID))
	f.mustPass(dm(spambot.UserID))
	f.mustPass(&tg.MessagesSendMessageRequest{Peer: &tg.InputPeerChannel{ChannelID: 7}, Message: "to a group"})
	f.mustPass(invite(mutualID))
	f.mustBlock(invite(mutualID, stranger), guard.ReasonLimited)
	if u := f.g.Used(); u[limits.DMNonContact] != 0 || u[limits.DMContact] == 0 {
		t.Fatalf("used %v: contact DMs must count as dm_contact", u)
	}
	// A later full user object without mutual_contact (they removed us)
	// makes the guard stricter again.
	f.tg.mu.Lock()
	f.tg.respond = func(_ bin.Encoder, out bin.Decoder) error {
		if box, ok := out.(*tg.MessagesMessagesBox); ok {
			box.Messages = &tg.MessagesMessages{Users: []tg.UserClass{&tg.User{ID: mutualID}}}
		}
		return nil
	}
	f.tg.mu.Unlock()
	if err := f.call(&tg.MessagesGetHistoryRequest{Peer: &tg.InputPeerUser{UserID: mutualID}}, &tg.MessagesMessagesBox{}); err != nil {
		t.Fatal(err)
	}
	f.mustBlock(dm(mutualID), guard.ReasonLimited)
}

func TestContactsLearnedFromResults(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	f.tg.respond = func(_ bin.Encoder, out bin.Decoder) error {
		switch v := out.(type) {
		case *tg.MessagesMessagesBox: // history with an incoming private message
			v.Messages = &tg.MessagesMessagesSlice{Messages: []tg.MessageClass{
				&tg.Message{ID: 1, PeerID: &tg.PeerUser{UserID: 20}, Message: "hi"},
				&tg.Message{ID: 2, Out: true, PeerID: &tg.PeerUser{UserID: 21}, Message: "hi"},
			}}
		case *tg.ContactsImportedContacts: // imported: one mutual, one not
			v.Imported = []tg.ImportedContact{{UserID: 22}, {UserID: 23}}
			v.Users = []tg.UserClass{&tg.User{ID: 22, Contact: true, MutualContact: true}, &tg.User{ID: 23, Contact: true}}
		case *tg.UpdatesDifferenceBox:
			v.Difference = &tg.UpdatesDifference{NewMessages: []tg.MessageClass{
				&tg.Message{ID: 3, PeerID: &tg.PeerUser{UserID: 24}, Message: "hi"},
			}}
		}
		return nil
	}
	ctx := context.Background()
	for _, c := range []struct {
		req bin.Encoder
		out bin.Decoder
	}{
		{&tg.MessagesGetHistoryRequest{}, &tg.MessagesMessagesBox{}},
		{&tg.ContactsImportContactsRequest{Contacts: []tg.InputPhoneContact{{Phone: "+15550100"}, {Phone: "+15550101"}}}, &tg.ContactsImportedContacts{}},
		{&tg.UpdatesGetDifferenceRequest{}, &tg.UpdatesDifferenceBox{}},
	} {
		if err := f.inv.Invoke(ctx, c.req, c.out); err != nil {
			t.Fatal(err)
		}
	}
	f.tg.respond = nil
	f.signal("messages.sendMessage", signal.Signal{Kind: signal.PeerFlood, Code: 400, Type: "PEER_FLOOD"})
	f.mustPass(dm(20))
	f.mustPass(dm(22))
	f.mustPass(dm(24))
	f.mustBlock(dm(21), guard.ReasonLimited)
	f.mustBlock(dm(23), guard.ReasonLimited)
	if got := f.g.Used()[limits.ImportContacts]; got != 2.0/160 {
		t.Fatalf("import_contacts used %v, want 2/160", got)
	}
}

func TestFrozenAccountReachesOnlySpamBot(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	f.signal("messages.sendMessage", signal.Signal{Kind: signal.Frozen, Code: 420, Type: "FROZEN_METHOD_INVALID"})
	for _, req := range []bin.Encoder{
		dm(stranger), join(), resolve("durov"), invite(stranger),
		&tg.MessagesSendMessageRequest{Peer: &tg.InputPeerSelf{}, Message: "note"},
		&tg.ContactsImportContactsRequest{Contacts: []tg.InputPhoneContact{{Phone: "+15550100"}}},
		&tg.ChannelsCreateChannelRequest{Title: "x"},
	} {
		be := f.mustBlock(req, guard.ReasonFrozen)
		if !strings.Contains(be.Error(), "frozen; only SpamBot is reachable") {
			t.Fatalf("error %q", be.Error())
		}
	}
	f.mustPass(dm(spambot.UserID))
	f.mustPass(resolve("@SpamBot"))
	f.mustPass(&tg.MessagesForwardMessagesRequest{ToPeer: &tg.InputPeerUser{UserID: spambot.UserID}, ID: []int{1}})
	f.mustPass(&tg.MessagesGetHistoryRequest{Peer: &tg.InputPeerUser{UserID: spambot.UserID}})
	f.mustPass(&tg.AuthSendCodeRequest{PhoneNumber: "+15550100"}) // logging in stays possible
	// Wrapped requests are looked through.
	f.mustBlock(&tg.InvokeWithoutUpdatesRequest{Query: dm(stranger)}, guard.ReasonFrozen)
	if u := f.g.Used(); u[limits.DMContact]+u[limits.DMNonContact] != 0 {
		t.Fatalf("SpamBot DMs counted: %v", u)
	}
}

func TestFloodWaitFailsFast(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	// Telegram answers FLOOD_WAIT; the monitor inside the guard records it.
	f.tg.respond = func(bin.Encoder, bin.Decoder) error { return tgerr.New(420, "FLOOD_WAIT_30") }
	if err := f.call(resolve("durov"), nil); !tgerr.Is(err, "FLOOD_WAIT") {
		t.Fatalf("got %v, want Telegram's FLOOD_WAIT", err)
	}
	if err := f.call(&tg.MessagesGetHistoryRequest{}, &tg.MessagesMessagesBox{}); !tgerr.Is(err, "FLOOD_WAIT") {
		t.Fatalf("got %v, want Telegram's FLOOD_WAIT", err)
	}
	f.tg.respond = nil
	f.clock.Advance(10 * time.Second)
	be := f.mustBlock(resolve("durov"), guard.ReasonFloodWait)
	if !be.Until.Equal(epoch.Add(30 * time.Second)) {
		t.Fatalf("Until %s, want %s", be.Until, epoch.Add(30*time.Second))
	}
	if !strings.HasSuffix(be.Error(), "flood wait until 2026-01-05T09:00:30Z") {
		t.Fatalf("error %q", be.Error())
	}
	// Calls that spend no budget are held back by their method's wait too,
	// and only by their own method's.
	f.mustBlock(&tg.MessagesGetHistoryRequest{}, guard.ReasonFloodWait)
	f.mustPass(&tg.UpdatesGetStateRequest{})
	f.mustPass(join())
	f.clock.Advance(20 * time.Second)
	f.mustPass(resolve("durov"))
	f.mustPass(&tg.MessagesGetHistoryRequest{})
}

func TestFloodWaitWithinMaxWaitWaitsOnTheClock(t *testing.T) {
	for _, method := range []struct {
		name string
		req  bin.Encoder
	}{{"contacts.resolveUsername", resolve("durov")}, {"messages.getHistory", &tg.MessagesGetHistoryRequest{}}} {
		t.Run(method.name, func(t *testing.T) {
			f := newFixture(t, guard.Options{Created: adult, MaxWait: time.Minute})
			f.signal(method.name, signal.Signal{Kind: signal.FloodWait, Code: 420, Type: "FLOOD_WAIT", Wait: 30 * time.Second})
			done := make(chan error, 1)
			go func() { done <- f.call(method.req, nil) }()
			f.clock.BlockUntil(1) // the call's timer exists
			select {
			case err := <-done:
				t.Fatalf("returned before the wait ended: %v", err)
			default:
			}
			if f.tg.count() != 0 {
				t.Fatal("reached Telegram during the wait")
			}
			f.clock.Advance(30 * time.Second)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if f.tg.count() != 1 {
				t.Fatalf("%d calls reached Telegram, want 1", f.tg.count())
			}
		})
	}
	t.Run("longer than MaxWait fails fast", func(t *testing.T) {
		f := newFixture(t, guard.Options{Created: adult, MaxWait: 10 * time.Second})
		f.signal("contacts.resolveUsername", signal.Signal{Kind: signal.FloodWait, Code: 420, Type: "FLOOD_WAIT", Wait: 30 * time.Second})
		f.mustBlock(resolve("durov"), guard.ReasonFloodWait)
		if n := f.clock.Pending(); n != 0 {
			t.Fatalf("%d timers pending", n)
		}
	})
	t.Run("context ends the wait", func(t *testing.T) {
		f := newFixture(t, guard.Options{Created: adult, MaxWait: time.Minute})
		f.signal("contacts.resolveUsername", signal.Signal{Kind: signal.FloodWait, Code: 420, Type: "FLOOD_WAIT", Wait: 30 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.inv.Invoke(ctx, resolve("durov"), nil) }()
		f.clock.BlockUntil(1)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if f.tg.count() != 0 || f.clock.Pending() != 0 {
			t.Fatalf("calls %d, timers %d", f.tg.count(), f.clock.Pending())
		}
	})
}

func TestFailedCallsAreNotRecorded(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	f.tg.respond = func(in bin.Encoder, _ bin.Decoder) error {
		if _, ok := in.(*tg.MessagesSendMessageRequest); ok {
			return tgerr.New(403, "USER_PRIVACY_RESTRICTED")
		}
		return errors.New("connection lost")
	}
	for i := range 20 {
		if err := f.call(dm(stranger+int64(i)), nil); !tgerr.Is(err, "USER_PRIVACY_RESTRICTED") {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if err := f.call(join(), nil); err == nil {
		t.Fatal("want the network error")
	}
	for a, v := range f.g.Used() {
		if v != 0 {
			t.Errorf("%s used %v after failed calls only", a, v)
		}
	}
	f.tg.respond = nil
	f.mustPass(dm(stranger))
	if got := f.g.Used()[limits.DMNonContact]; got != 1.0/8 {
		t.Fatalf("dm_non_contact used %v, want 1/8", got)
	}
}

func TestInviteCountsStrangersOnly(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	f.learnContacts(tg.Contact{UserID: 10, Mutual: true}, tg.Contact{UserID: 11, Mutual: true})
	f.g.Observe(context.Background(), &tg.UpdateShortMessage{UserID: 12, Message: "hi", ID: 1})
	req := invite(10, 11, 12, stranger) // 12 wrote first but is no contact: a stranger to a group
	req.Users = append(req.Users, &tg.InputUserSelf{})
	f.mustPass(req)
	if got := f.g.Used()[limits.Invite]; got != 2.0/16 { // adult: 20/h * 0.8
		t.Fatalf("invite used %v, want 2/16", got)
	}
	f.mustPass(&tg.MessagesAddChatUserRequest{ChatID: 1, UserID: &tg.InputUser{UserID: stranger + 1}})
	f.mustPass(&tg.MessagesAddChatUserRequest{ChatID: 1, UserID: &tg.InputUser{UserID: 10}})
	if got := f.g.Used()[limits.Invite]; got != 3.0/16 {
		t.Fatalf("invite used %v, want 3/16", got)
	}
	// 14 more strangers fit, 15 do not, in one call.
	be := f.mustBlock(invite(2000, 2001, 2002, 2003, 2004, 2005, 2006, 2007, 2008, 2009, 2010, 2011, 2012, 2013, 2014), guard.ReasonBudget)
	if be.Count != 14+1 || be.Limit.Max != 16 {
		t.Fatalf("blocked %+v", be)
	}
}

func TestForwardSpendsDMAndForwards(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	f.mustPass(&tg.MessagesForwardMessagesRequest{ToPeer: &tg.InputPeerChannel{ChannelID: 7}, ID: []int{1, 2, 3, 4}})
	f.mustPass(&tg.MessagesForwardMessagesRequest{ToPeer: &tg.InputPeerUser{UserID: stranger}, ID: []int{5}})
	u := f.g.Used()
	if u[limits.ForwardMessages] != 5.0/1600 || u[limits.DMContact] != 1.0/24 || u[limits.DMNonContact] != 1.0/8 {
		t.Fatalf("used %v", u)
	}
}

func TestBlockedErrorNamesNoPhoneNumber(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	var contacts []tg.InputPhoneContact
	for i := range 161 { // adult import budget: 200/day * 0.8 = 160
		contacts = append(contacts, tg.InputPhoneContact{ClientID: int64(i), Phone: "+1555010" + string(rune('0'+i%10)), FirstName: "Bob"})
	}
	be := f.mustBlock(&tg.ContactsImportContactsRequest{Contacts: contacts}, guard.ReasonBudget)
	msg := be.Error()
	const want = `guard: contacts.importContacts blocked for account "alice": budget import_contacts (160 per 1d) cannot take 161 at once`
	if msg != want {
		t.Fatalf("error\n got %s\nwant %s", msg, want)
	}
	for _, secret := range []string{"555", "+1", "Bob", "hello"} {
		if strings.Contains(msg, secret) {
			t.Fatalf("error %q contains %q", msg, secret)
		}
	}
	f.mustPass(&tg.ContactsImportContactsRequest{Contacts: contacts[:160]})
	be = f.mustBlock(&tg.ContactsImportContactsRequest{Contacts: contacts[:1]}, guard.ReasonBudget)
	if got := be.Error(); strings.Contains(got, "555") || !strings.Contains(got, "exhausted until 2026-01-06T09:00:00Z") {
		t.Fatalf("error %q", got)
	}
	for i := range 8 {
		f.mustPass(dm(stranger + int64(i)))
	}
	if got := f.mustBlock(dm(stranger+9), guard.ReasonBudget).Error(); strings.Contains(got, "hello") || strings.Contains(got, "1009") {
		t.Fatalf("error %q names the message or the peer", got)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFixture(t, guard.Options{Created: adult, Registerer: reg})
	for i := range 8 {
		f.mustPass(dm(stranger + int64(i)))
	}
	f.mustBlock(dm(stranger+8), guard.ReasonBudget)
	f.mustBlock(dm(stranger+9), guard.ReasonBudget)
	f.mustPass(resolve("durov"))
	f.signal("messages.sendMessage", signal.Signal{Kind: signal.Frozen, Code: 420, Type: "FROZEN_METHOD_INVALID"})
	f.mustBlock(join(), guard.ReasonFrozen)

	// A second account's guard on the same registry.
	bobAcct, _ := f.mon.Account("bob")
	bob, err := guard.New(bobAcct, guard.Options{Created: adult, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := guard.New(bobAcct, guard.Options{Registerer: reg}); err == nil || !strings.Contains(err.Error(), `"bob"`) {
		t.Fatalf("second guard for bob: %v, want an error naming the account", err)
	}

	const blocked = `
# HELP tgsafety_guard_blocked_total Calls the guard refused before they reached Telegram, by reason (budget, limited, frozen, flood_wait); in observe mode, the calls it would have refused.
# TYPE tgsafety_guard_blocked_total counter
tgsafety_guard_blocked_total{account="alice",method="channels.joinChannel",reason="frozen"} 1
tgsafety_guard_blocked_total{account="alice",method="messages.sendMessage",reason="budget"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(blocked), guard.MetricBlocked.Name); err != nil {
		t.Fatal(err)
	}
	// Only budgets in use are exported: none of bob's, two of alice's.
	var used strings.Builder
	used.WriteString("# HELP tgsafety_budget_used_ratio " + guard.MetricBudgetUsed.Help + "\n# TYPE tgsafety_budget_used_ratio gauge\n")
	used.WriteString(`tgsafety_budget_used_ratio{account="alice",budget="` + string(limits.DMNonContact) + `"} 1` + "\n")
	used.WriteString(`tgsafety_budget_used_ratio{account="alice",budget="` + string(limits.ResolveUsername) + `"} 0.041666666666666664` + "\n") // 1 of 24 per minute
	if err := testutil.GatherAndCompare(reg, strings.NewReader(used.String()), guard.MetricBudgetUsed.Name); err != nil {
		t.Fatal(err)
	}
	// The window slides at scrape time, without traffic.
	f.clock.Advance(time.Hour)
	if got := testutil.ToFloat64(onlyAccount(t, reg, "alice", string(limits.DMNonContact))); got != 8.0/32 {
		t.Fatalf("after an hour dm_non_contact ratio %v, want 8/32 (daily limit)", got)
	}

	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	promtool(t, reg)

	// Definitions match what is exported.
	mfs, _ := reg.Gather()
	types := map[string]string{}
	for _, mf := range mfs {
		types[mf.GetName()] = strings.ToLower(mf.GetType().String())
	}
	for _, d := range guard.Metrics() {
		if types[d.Name] != string(d.Type) {
			t.Errorf("%s exported as %q, defined as %q", d.Name, types[d.Name], d.Type)
		}
	}

	// Close drops the account's series and frees its name.
	bob.Close()
	if _, err := guard.New(bobAcct, guard.Options{Registerer: reg}); err != nil {
		t.Fatalf("guard for bob after Close: %v", err)
	}
	f.g.Close()
	if n := testutil.CollectAndCount(collectorOf(reg), guard.MetricBlocked.Name); n != 0 {
		t.Fatalf("%d blocked series left after Close", n)
	}
}

// onlyAccount returns a collector exposing one budget series.
func onlyAccount(t *testing.T, g prometheus.Gatherer, account, budget string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != guard.MetricBudgetUsed.Name {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["account"] == account && l["budget"] == budget {
				gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
				gauge.Set(m.GetGauge().GetValue())
				return gauge
			}
		}
	}
	t.Fatalf("no %s series for %s/%s", guard.MetricBudgetUsed.Name, account, budget)
	return nil
}

// collectorOf adapts a gatherer for testutil's collector helpers.
func collectorOf(g prometheus.Gatherer) prometheus.Collector {
	return gathererCollector{g}
}

type gathererCollector struct{ g prometheus.Gatherer }

func (gathererCollector) Describe(chan<- *prometheus.Desc) {}
func (c gathererCollector) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := c.g.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var names, values []string
			for _, lp := range m.GetLabel() {
				names = append(names, lp.GetName())
				values = append(values, lp.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(mf.GetName(), mf.GetHelp(), names, nil), prometheus.UntypedValue, v, values...)
		}
	}
}

// promtool runs Prometheus's own linter when it is installed (make test
// installs it and requires it, as for the monitor's metrics).
func promtool(t *testing.T, g prometheus.Gatherer) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("TGSAFETY_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool not found but TGSAFETY_REQUIRE_PROMTOOL is set")
		}
		t.Log("promtool not installed; skipped promtool check metrics")
		return
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestOptionsValidation(t *testing.T) {
	mon, _ := monitor.New(monitor.Options{})
	acct, _ := mon.Account("alice")
	bad := limits.Default()
	bad.Name = ""
	for _, tc := range []struct {
		opts  guard.Options
		field string
	}{
		{guard.Options{Margin: 1.5}, "Margin"},
		{guard.Options{Margin: -0.1}, "Margin"},
		{guard.Options{Margin: math.NaN()}, "Margin"},
		{guard.Options{Margin: math.Inf(1)}, "Margin"},
		{guard.Options{Mode: guard.Mode(7)}, "Mode"},
		{guard.Options{MaxWait: -time.Second}, "MaxWait"},
		{guard.Options{Profile: bad}, "Profile"},
	} {
		_, err := guard.New(acct, tc.opts)
		if err == nil || !strings.Contains(err.Error(), "Options."+tc.field) {
			t.Errorf("%+v: error %v, want one naming Options.%s", tc.opts, err, tc.field)
		}
	}
	if _, err := guard.New(nil, guard.Options{}); err == nil {
		t.Error("nil account accepted")
	}
	if _, err := guard.New(acct, guard.Options{Margin: 1, MaxWait: time.Minute, Mode: guard.Observe}); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

func TestModeAndReasonNames(t *testing.T) {
	var zero guard.Mode
	if zero != guard.Enforce || zero.String() != "enforce" || guard.Observe.String() != "observe" {
		t.Fatal("mode names")
	}
	for _, s := range []string{"enforce", "observe", " Observe "} {
		m, err := guard.ParseMode(s)
		if err != nil || m.String() != strings.ToLower(strings.TrimSpace(s)) {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := guard.ParseMode("audit"); err == nil || !strings.Contains(err.Error(), `"audit"`) {
		t.Errorf("ParseMode(audit): %v", err)
	}
	var m guard.Mode
	if err := m.UnmarshalText([]byte("observe")); err != nil || m != guard.Observe {
		t.Errorf("UnmarshalText: %v %v", m, err)
	}
	want := map[guard.Reason]string{guard.ReasonBudget: "budget", guard.ReasonLimited: "limited", guard.ReasonFrozen: "frozen", guard.ReasonFloodWait: "flood_wait"}
	for _, r := range guard.Reasons() {
		if r.String() != want[r] {
			t.Errorf("reason %d: %q, want %q", r, r, want[r])
		}
		delete(want, r)
	}
	if len(want) != 0 {
		t.Errorf("Reasons() misses %v", want)
	}
}

// TestProfileMethodsAreMapped keeps the guard and the profile in step:
// every method the default profile lists for an action spends that action.
func TestProfileMethodsAreMapped(t *testing.T) {
	// A request per method, aimed so that it spends the action under test.
	requests := map[limits.Action]map[string]bin.Encoder{
		limits.DMNonContact: {},
		limits.DMContact: {
			// Secret chats: the other side accepted the chat.
			"messages.sendEncrypted":        sendMethods["messages.sendEncrypted"].req(stranger),
			"messages.sendEncryptedFile":    sendMethods["messages.sendEncryptedFile"].req(stranger),
			"messages.sendEncryptedService": sendMethods["messages.sendEncryptedService"].req(stranger),
		},
		limits.ForwardMessages: {
			"messages.forwardMessages": &tg.MessagesForwardMessagesRequest{ToPeer: &tg.InputPeerSelf{}, ID: []int{1}},
		},
		limits.ResolveUsername: {"contacts.resolveUsername": resolve("durov")},
		limits.JoinChannel:     {"channels.joinChannel": join()},
		limits.Invite: {
			"channels.inviteToChannel": invite(stranger),
			"messages.addChatUser":     &tg.MessagesAddChatUserRequest{UserID: &tg.InputUser{UserID: stranger}},
			"messages.createChat":      sendMethods["messages.createChat"].req(stranger),
		},
		limits.ImportContacts: {"contacts.importContacts": &tg.ContactsImportContactsRequest{Contacts: []tg.InputPhoneContact{{}}}},
		limits.CreateChat: {
			"messages.createChat":    &tg.MessagesCreateChatRequest{Title: "x"},
			"channels.createChannel": &tg.ChannelsCreateChannelRequest{Title: "x"},
		},
		limits.SearchContacts: {"contacts.search": &tg.ContactsSearchRequest{Q: "x"}},
		limits.SendCode:       {"auth.sendCode": &tg.AuthSendCodeRequest{}},
	}
	// Every method that sends a message to a user: dm_non_contact to a
	// stranger, dm_contact to someone who wrote first (the guard's test
	// account learns that from an incoming message).
	const wrote = 77
	for name, m := range sendMethods {
		if m.kind == sendDM {
			requests[limits.DMNonContact][name] = m.req(stranger)
			requests[limits.DMContact][name] = m.req(wrote)
		}
	}
	p := limits.Default()
	for _, a := range p.ActionNames() {
		for _, method := range p.Actions[a].Methods {
			req, ok := requests[a][method]
			if !ok {
				t.Errorf("profile counts %s as %s; the guard has no mapping for it", method, a)
				continue
			}
			if got := monitor.MethodName(req); got != method {
				t.Fatalf("test table: %s is %s", method, got)
			}
			f := newFixture(t, guard.Options{Created: adult})
			f.g.Observe(context.Background(), &tg.UpdateShortMessage{UserID: wrote, Message: "hi", ID: 1})
			f.mustPass(req)
			if f.g.Used()[a] == 0 {
				t.Errorf("%s did not spend %s", method, a)
			}
			delete(requests[a], method)
		}
	}
	// And the other way round: every method the guard counts is in the
	// profile, so the test server counts it too and docs/limits.md lists it.
	for a, reqs := range requests {
		for method := range reqs {
			t.Errorf("the guard counts %s as %s; the profile does not list it", method, a)
		}
	}
}

func TestPassThroughAndAllowedCallsDoNotAllocate(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	inv := f.g.Middleware().Handle(f.tg) // the guard alone
	f.tg.respond = func(bin.Encoder, bin.Decoder) error { return nil }
	ctx := context.Background()
	history := &tg.MessagesGetHistoryRequest{Peer: &tg.InputPeerSelf{}}
	out := &tg.MessagesMessagesBox{}
	f.tg.calls = make([]string, 0, 1<<14)
	if n := testing.AllocsPerRun(1000, func() { _ = inv.Invoke(ctx, history, out) }); n != 0 {
		t.Errorf("pass-through: %v allocs per call, want 0", n)
	}
	req := resolve("durov")
	step := func() {
		f.clock.Advance(10 * time.Minute) // stays inside the budget: 144 a day
		if err := inv.Invoke(ctx, req, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 300 { // the tracker's window fills to its steady size
		step()
	}
	f.tg.calls = f.tg.calls[:0]
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("allowed: %v allocs per call, want 0", n)
	}
}

func TestConcurrentCallsCannotOvershoot(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	release := make(chan struct{})
	const n = 20
	var reached atomic.Int32
	arrived := make(chan struct{}, n) // one per call: blocked, or waiting at Telegram
	f.tg.respond = func(bin.Encoder, bin.Decoder) error {
		reached.Add(1)
		arrived <- struct{}{}
		<-release
		return nil
	}
	var wg sync.WaitGroup
	var blocked atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f.call(dm(stranger+int64(i)), nil)
			var be *guard.BlockedError
			if errors.As(err, &be) {
				blocked.Add(1)
				arrived <- struct{}{}
			} else if err != nil {
				t.Error(err)
			}
		}()
	}
	// Every call either is blocked or has reached Telegram (and waits).
	for range n {
		<-arrived
	}
	close(release)
	wg.Wait()
	if reached.Load() != 8 || blocked.Load() != n-8 {
		t.Fatalf("%d reached Telegram, %d blocked; want 8 and %d", reached.Load(), blocked.Load(), n-8)
	}
	if got := f.g.Used()[limits.DMNonContact]; got != 1 {
		t.Fatalf("dm_non_contact used %v, want 1", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFixture(t, guard.Options{Created: adult, Registerer: reg})
	f.tg.respond = func(in bin.Encoder, out bin.Decoder) error {
		if box, ok := out.(*tg.MessagesMessagesBox); ok {
			box.Messages = &tg.MessagesMessages{
				Messages: []tg.MessageClass{&tg.Message{ID: 1, PeerID: &tg.PeerUser{UserID: 5}}},
				Users:    []tg.UserClass{&tg.User{ID: 6, MutualContact: true}},
			}
		}
		return nil
	}
	var workers sync.WaitGroup
	for w := range 8 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range 300 {
				id := int64(w*1000 + i)
				switch i % 5 {
				case 0:
					_ = f.call(dm(id), nil)
				case 1:
					_ = f.call(&tg.MessagesGetHistoryRequest{}, &tg.MessagesMessagesBox{})
				case 2:
					f.g.Observe(context.Background(), &tg.UpdateShortMessage{UserID: id, ID: i})
				case 3:
					_ = f.call(invite(id, 5, 6), nil)
				case 4:
					_ = f.g.Used()
				}
			}
		}()
	}
	stop := make(chan struct{})
	driver := make(chan struct{})
	go func() { // time passes, the account's state changes, Prometheus scrapes
		defer close(driver)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f.clock.Advance(time.Minute)
			if i%50 == 0 {
				f.signal("messages.sendMessage", signal.Signal{Kind: signal.PeerFlood, Code: 400, Type: "PEER_FLOOD"})
			}
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
				return
			}
			runtime.Gosched() // let the workers interleave with the driver
		}
	}()
	workers.Wait()
	close(stop)
	<-driver
	for a, v := range f.g.Used() {
		if v < 0 || math.IsNaN(v) {
			t.Errorf("%s used %v", a, v)
		}
	}
}

// A flood wait holds back its method however deeply the call is wrapped:
// the guard names the call by the same unwrapping as the monitor.
func TestFloodWaitHoldsNestedWrappedCalls(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	f.signal("messages.getHistory", signal.Signal{Kind: signal.FloodWait, Code: 420, Type: "FLOOD_WAIT", Wait: time.Minute})
	nested := &tg.InvokeWithoutUpdatesRequest{Query: &tg.InvokeWithTakeoutRequest{Query: &tg.MessagesGetHistoryRequest{}}}
	be := f.mustBlock(nested, guard.ReasonFloodWait)
	if be.Method != "messages.getHistory" {
		t.Fatalf("blocked as %q, want messages.getHistory", be.Method)
	}
}

// A guard created for an account restored from a stored snapshot (a
// restarted daemon, or the replica that took the account over) continues
// the budgets the previous guard counted: the snapshot carries them
// (SnapshotForStore), and the account's next guard picks them up.
func TestBudgetsSurviveARestoreFromTheStoredSnapshot(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	for i := range 6 {
		f.mustPass(dm(stranger + int64(i)))
	}
	f.clock.Advance(20 * time.Minute)
	body, err := json.Marshal(f.acct.SnapshotForStore())
	if err != nil {
		t.Fatal(err)
	}
	if plain := f.acct.Snapshot(); plain.Budgets != nil {
		t.Errorf("views' snapshots carry the budgets: %v", plain.Budgets)
	}

	// Another daemon, the same virtual time.
	var sn monitor.Snapshot
	if err := json.Unmarshal(body, &sn); err != nil {
		t.Fatal(err)
	}
	g := newFixtureAt(t, f.clock, guard.Options{Created: adult}, sn)
	g.mustPass(dm(stranger + 6))
	g.mustPass(dm(stranger + 7))
	be := g.mustBlock(dm(stranger+8), guard.ReasonBudget)
	if want := epoch.Add(time.Hour); !be.Until.Equal(want) {
		t.Errorf("blocked until %s, want %s (an hour after the first call before the restore)", be.Until, want)
	}
	// The restored calls leave the window when they would have.
	g.clock.Advance(40 * time.Minute)
	g.mustPass(dm(stranger + 8))

	// A damaged snapshot (times in the future, out of order) restores
	// nothing it cannot trust.
	sn.Budgets = map[string][]int64{string(limits.DMNonContact): {epoch.Add(48 * time.Hour).UnixNano(), 5, 3}}
	h := newFixtureAt(t, g.clock, guard.Options{Created: adult}, sn)
	for i := range 8 {
		h.mustPass(dm(stranger + 100 + int64(i)))
	}
}

// newFixtureAt is newFixture on clk, with the account restored from sn.
func newFixtureAt(t *testing.T, clk *vclock.Clock, opts guard.Options, sn monitor.Snapshot) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: clk, tg: &fakeTelegram{}}
	var err error
	if f.mon, err = monitor.New(monitor.Options{Clock: clk}); err != nil {
		t.Fatal(err)
	}
	if f.acct, err = f.mon.Account("alice"); err != nil {
		t.Fatal(err)
	}
	f.acct.Restore(sn, nil)
	if f.g, err = guard.New(f.acct, opts); err != nil {
		t.Fatal(err)
	}
	f.inv = f.g.Middleware().Handle(f.acct.Middleware().Handle(f.tg))
	return f
}
