package audit

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/testserver"
)

// traceBuilder makes traces by hand, to test each rule on exactly the
// behaviour it is about.
type traceBuilder struct {
	t   *trace
	seq uint64
}

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func newTrace(names ...string) *traceBuilder {
	p := limits.Default()
	tr := &trace{start: t0, keyOwner: map[[8]byte]int{}, provisioned: map[[8]byte]bool{}, profile: p,
		guard: p.Scaled(guard.DefaultMargin), resets: map[int]map[Action][]time.Time{}}
	for i, n := range names {
		tr.accounts = append(tr.accounts, &acctInfo{spec: AccountSpec{Name: n, Age: DefaultAge}, userID: int64(1000 + i)})
		tr.keyOwner[key(i+1)] = i
		tr.provisioned[key(i+1)] = true
	}
	return &traceBuilder{t: tr}
}

func key(n int) [8]byte { return [8]byte{byte(n), 0xaa} }

// call adds a call of account acct arriving at the offset, sent by the
// client just before and answered 1 ms later; err "" is success.
func (b *traceBuilder) call(acct int, at time.Duration, method, err string) *call {
	b.seq++
	arr := t0.Add(at)
	c := call{seq: b.seq, acct: acct, userID: 1000 + int64(acct), method: method, err: err, done: true,
		arrived: arr, sent: arr.Add(-time.Millisecond), answered: arr.Add(time.Millisecond), conn: 1, key: key(acct + 1), phoneAcct: -1}
	if err != "" {
		c.sig = signal.Parse(420, err)
		if strings.HasPrefix(err, "USER_DEACTIVATED") || strings.HasPrefix(err, "SESSION_") || strings.HasPrefix(err, "AUTH_KEY") {
			c.sig = signal.Parse(401, err)
		}
	}
	switch method {
	case "contacts.resolveUsername":
		c.action, c.units = limits.ResolveUsername, 1
	}
	b.t.calls = append(b.t.calls, c)
	return &b.t.calls[len(b.t.calls)-1]
}

func (b *traceBuilder) coldDM(acct int, at time.Duration, err string) *call {
	c := b.call(acct, at, "messages.sendMessage", err)
	c.action, c.units, c.cold = limits.DMNonContact, 1, true
	return c
}

func (b *traceBuilder) conn(id uint64, acct int, opened, closed time.Duration) {
	cn := &connRec{id: id, opened: t0.Add(opened), acct: acct, keys: []keyUse{{key: key(acct + 1), at: t0.Add(opened)}}}
	if closed > 0 {
		cn.closed = t0.Add(closed)
	}
	b.t.conns = append(b.t.conns, cn)
}

func (b *traceBuilder) keyEvent(conn uint64, k [8]byte, at time.Duration) {
	b.t.keyEvents = append(b.t.keyEvents, testserver.ConnEvent{Kind: testserver.ConnKey, Conn: conn, Key: k, Time: t0.Add(at)})
}

// broken returns the findings of one rule as "account: seq,seq,...".
func broken(t *testing.T, tr *trace, id string) []string {
	t.Helper()
	r := ruleByID(id)
	if r == nil {
		t.Fatalf("no rule %s", id)
	}
	var out []string
	for _, f := range r.check(tr) {
		var seqs []string
		for _, e := range f.Evidence {
			if e.Seq != 0 {
				seqs = append(seqs, fmt.Sprint(e.Seq))
			} else {
				seqs = append(seqs, fmt.Sprintf("conn%d", e.Conn))
			}
		}
		out = append(out, f.Account+": "+strings.Join(seqs, ","))
	}
	return out
}

func expectBroken(t *testing.T, tr *trace, id string, want ...string) {
	t.Helper()
	if got := broken(t, tr, id); !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", id, got, want)
	}
}

func TestFloodWaitRetryFlagsOnlyCallsSentBeforeTheWaitEnded(t *testing.T) {
	b := newTrace("a")
	w := b.call(0, 0, "contacts.resolveUsername", "FLOOD_WAIT_10") // #1
	inflight := b.call(0, 2*time.Millisecond, "contacts.resolveUsername", "FLOOD_WAIT_10")
	inflight.sent = w.answered.Add(-time.Microsecond)                            // sent before the answer left: in flight, not a retry
	b.call(0, 500*time.Millisecond, "contacts.resolveUsername", "FLOOD_WAIT_10") // #3: a retry
	b.call(0, time.Second, "messages.sendMessage", "")                           // #4: another method
	b.call(0, 11*time.Second, "contacts.resolveUsername", "")                    // #5: after the wait
	expectBroken(t, b.t, idFloodWaitRetry, "a: 3")
}

func TestPeerFloodIgnoredCountsColdDMsAfterTheFirstPeerFloodUntilARelease(t *testing.T) {
	b := newTrace("a")
	b.coldDM(0, 0, "")                                   // #1 fine
	b.coldDM(0, time.Second, "PEER_FLOOD")               // #2 the limit
	b.call(0, 2*time.Second, "messages.sendMessage", "") // #3 to a contact: fine
	b.coldDM(0, 3*time.Second, "PEER_FLOOD")             // #4 ignored it
	b.t.resets[0] = map[Action][]time.Time{ActRelease: {t0.Add(4 * time.Second)}}
	b.coldDM(0, 5*time.Second, "") // #5 after the release: fine
	expectBroken(t, b.t, idPeerFloodIgnored, "a: 4")
}

func TestCallsAfterBanCountsEveryCallSentAfterTheBan(t *testing.T) {
	b := newTrace("a", "b")
	b.call(0, 0, "users.getUsers", "USER_DEACTIVATED_BAN") // #1
	b.call(0, time.Second, "help.getConfig", "")           // #2 a reconnect
	b.call(0, time.Second, "users.getUsers", "USER_DEACTIVATED_BAN")
	b.call(1, time.Second, "users.getUsers", "") // the other account is fine
	expectBroken(t, b.t, idCallsAfterBan, "a: 2,3")
}

func TestCallsAfterRevokeAllowsLoggingInAgainOnTheSameKey(t *testing.T) {
	b := newTrace("a", "b")
	b.call(0, 0, "users.getUsers", "SESSION_REVOKED")                // #1
	b.call(0, time.Second, "messages.getHistory", "SESSION_REVOKED") // #2 kept going
	b.call(1, 0, "users.getUsers", "AUTH_KEY_UNREGISTERED")          // #3 a fresh key
	b.call(1, time.Second, "auth.sendCode", "")                      // #4 logs in: fine
	b.call(1, 2*time.Second, "auth.signIn", "")                      // #5
	b.call(1, 3*time.Second, "users.getUsers", "")                   // #6 signed in again: fine
	expectBroken(t, b.t, idCallsAfterRevoke, "a: 2")
}

func TestReconnectStormUsesTDLibsConnectionFloodControl(t *testing.T) {
	b := newTrace("calm", "storm", "slow-storm")
	b.conn(1, 0, 0, time.Second)
	b.conn(2, 0, 2*time.Second, 0) // 2 within 4 s: allowed
	b.conn(3, 1, 0, 100*time.Millisecond)
	b.conn(4, 1, 500*time.Millisecond, 0) // 2 within 1 s
	b.conn(5, 2, 0, time.Second)
	b.conn(6, 2, 1500*time.Millisecond, 2*time.Second)
	b.conn(7, 2, 3*time.Second, 0) // 3 within 4 s
	expectBroken(t, b.t, idReconnectStorm, "storm: conn4", "slow-storm: conn7")
}

func TestAuthKeysCountsNewKeysAgainstTheGuardsLoginBudget(t *testing.T) {
	b := newTrace("a")
	// The guard allows 4 logins a day (send_code 5/day × 0.8): the 5th
	// new key breaks the rule; the provisioned key does not count.
	b.keyEvent(1, key(1), 0)
	for i := 0; i < 5; i++ {
		k := [8]byte{0xee, byte(i)}
		b.keyEvent(uint64(10+i), [8]byte{}, time.Duration(i)*time.Minute)
		b.keyEvent(uint64(10+i), k, time.Duration(i)*time.Minute+time.Second)
		b.t.keyOwner[k] = 0
	}
	expectBroken(t, b.t, idAuthKeys, "a: conn14")
}

func TestLoginsCountsLoginCodesAgainstTheGuardsBudget(t *testing.T) {
	b := newTrace("a")
	for i := 0; i < 5; i++ {
		c := b.call(-1, time.Duration(i)*time.Minute, "auth.sendCode", "")
		c.acct = 0
	}
	expectBroken(t, b.t, idLogins, "a: 5")
}

func TestBudgetJudgesSuccessfulActionsByTheGuardsNumbers(t *testing.T) {
	b := newTrace("a")
	// Adult resolve budget: 30/min × 0.8 = 24.
	for i := 0; i < 25; i++ {
		b.call(0, time.Duration(i)*time.Second, "contacts.resolveUsername", "")
	}
	b.call(0, 26*time.Second, "contacts.resolveUsername", "FLOOD_WAIT_5") // refused: spends nothing
	expectBroken(t, b.t, idBudget, "a: 25")
}

func TestStartupResolveBurstCountsAttemptsInTheFirstWindow(t *testing.T) {
	b := newTrace("burst", "spread")
	b.call(0, 0, "help.getConfig", "")
	for i := 0; i < 26; i++ {
		b.call(0, time.Duration(i)*time.Second, "contacts.resolveUsername", map[bool]string{true: "FLOOD_WAIT_3"}[i > 23])
	}
	for i := 0; i < 26; i++ {
		b.call(1, time.Duration(i)*3*time.Second, "contacts.resolveUsername", "")
	}
	expectBroken(t, b.t, idStartupResolves, "burst: 26,27")
}

func TestConcurrentSessionNeedsTheKeyToComeBackWhileBothConnectionsAreOpen(t *testing.T) {
	b := newTrace("a", "b")
	// a: connection 1 and 2 take turns with the same key, both open.
	b.conn(1, 0, 0, 0)
	b.conn(2, 0, time.Second, 0)
	b.keyEvent(1, key(1), 0)
	b.keyEvent(2, key(1), time.Second)
	b.keyEvent(1, key(1), 2*time.Second)
	// b: a reconnect (3 closed before 4 used the key).
	b.conn(3, 1, 0, time.Second)
	b.conn(4, 1, time.Second, 0)
	b.keyEvent(3, key(2), 0)
	b.keyEvent(4, key(2), time.Second)
	expectBroken(t, b.t, idConcurrentSession, "a: conn1")
}

func TestQRLoginFlagsEveryLoginTokenCall(t *testing.T) {
	b := newTrace("a")
	b.call(0, 0, "auth.exportLoginToken", "INPUT_METHOD_INVALID_3084944894")
	b.call(0, time.Second, "help.getConfig", "")
	expectBroken(t, b.t, idQRLogin, "a: 1")
}

func TestWritesWhileFrozenCountsRefusedWritesAfterTheFirst(t *testing.T) {
	b := newTrace("a")
	b.coldDM(0, 0, "FROZEN_METHOD_INVALID")
	b.call(0, time.Second, "help.getAppConfig", "")
	b.coldDM(0, 2*time.Second, "FROZEN_METHOD_INVALID")
	expectBroken(t, b.t, idFrozenWrites, "a: 3")
}

func TestJudgeAppliesThePlansSeveritiesAndSkipsRulesThatAreOff(t *testing.T) {
	b := newTrace("a")
	b.call(0, 0, "auth.exportLoginToken", "")
	b.call(0, 0, "contacts.resolveUsername", "FLOOD_WAIT_10")
	b.call(0, time.Second, "contacts.resolveUsername", "")
	fs := judge(b.t, map[string]Severity{idQRLogin: SeverityOff, idFloodWaitRetry: SeverityWarning})
	if len(fs) != 1 || fs[0].Rule != idFloodWaitRetry || fs[0].Severity != SeverityWarning || fs[0].Reason == "" {
		t.Errorf("findings %+v, want one flood-wait-retry warning with its reason", fs)
	}
}

func TestEveryRuleHasAnIDASeverityAndAOneLineReason(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rules {
		if r.id == "" || seen[r.id] || r.reason == "" || strings.Contains(r.reason, "\n") || r.check == nil {
			t.Errorf("rule %+v", r)
		}
		if _, err := ParseSeverity(string(r.severity)); err != nil || r.severity == SeverityOff {
			t.Errorf("rule %s: severity %q", r.id, r.severity)
		}
		seen[r.id] = true
	}
}

func TestSentAtReadsEachLibrarysMessageIDFraction(t *testing.T) {
	sent := time.Unix(1767600000, 300_000_000) // .3 s into a second
	arrived := sent.Add(3 * time.Millisecond)
	sec := sent.Unix() << 32
	ns := int64(sent.Nanosecond())
	for _, c := range []struct {
		lib  string
		frac int64
	}{
		{"gotd (nanoseconds)", ns &^ 3},
		{"Telethon, GramJS (nanoseconds × 4)", ns << 2},
		{"TDLib (2^32 fraction)", ns << 32 / int64(time.Second)},
	} {
		rec := testserver.CallRecord{MsgID: sec | c.frac, Arrived: arrived}
		if got := sentAt(&rec); got.Sub(sent).Abs() > time.Millisecond {
			t.Errorf("%s: sent %v, want %v", c.lib, got.Format("15:04:05.000"), sent.Format("15:04:05.000"))
		}
	}
	far := testserver.CallRecord{MsgID: (sent.Unix() - 3600) << 32, Arrived: arrived}
	if got := sentAt(&far); !got.Equal(arrived) {
		t.Errorf("an hour-old message id: sent %v, want the arrival", got)
	}
}
