package audit

import (
	"fmt"

	"github.com/tgsafety/tgsafety/monitor/signal"
)

// The rules about a state Telegram put the account in: once told, the
// client must stop doing what the state forbids until the state is
// lifted (a fault's release, unban or unfreeze).

// rulePeerFloodIgnored: PEER_FLOOD means the account is limited to people
// who have its number or wrote first; each further attempt to write to a
// stranger is a violation that lengthens the limit, and then bans.
var rulePeerFloodIgnored = rule{
	id:       idPeerFloodIgnored,
	severity: SeverityError,
	reason:   "kept writing to strangers after PEER_FLOOD: each attempt while limited moves the account towards a longer limit and a ban",
	check: func(t *trace) []Finding {
		return t.afterFirst(idPeerFloodIgnored, signal.PeerFlood, ActRelease,
			func(c *call) bool { return c.cold || c.sig.Kind == signal.PeerFlood },
			"writes to strangers", "PEER_FLOOD")
	},
}

// ruleCallsAfterBan: a banned account is gone; a client that goes on
// (reconnecting, retrying, logging in again) only adds evidence.
var ruleCallsAfterBan = rule{
	id:       idCallsAfterBan,
	severity: SeverityError,
	reason:   "kept calling after USER_DEACTIVATED_BAN: the account is banned; a client must stop it and tell its operator, not reconnect or log in again",
	check: func(t *trace) []Finding {
		return t.afterFirst(idCallsAfterBan, signal.Banned, ActUnban,
			func(*call) bool { return true }, "calls", "the ban")
	},
}

// ruleFrozenWrites: a frozen account may read and appeal to SpamBot;
// writes are refused, and a client that keeps writing shows it does not
// read the answers.
var ruleFrozenWrites = rule{
	id:       idFrozenWrites,
	severity: SeverityWarning,
	reason:   "kept writing after FROZEN_METHOD_INVALID: a frozen account can only read and appeal; writes are refused until the freeze is lifted",
	check: func(t *trace) []Finding {
		return t.afterFirst(idFrozenWrites, signal.Frozen, ActUnfreeze,
			func(c *call) bool { return c.sig.Kind == signal.Frozen }, "writes", "the freeze")
	},
}

// afterFirst finds, per account, the calls matching bad that the client
// sent after the answer of the account's first call of signal kind
// first, until a fault lifted the state (reset).
func (t *trace) afterFirst(id string, first signal.Kind, reset Action, bad func(*call) bool, what, since string) []Finding {
	var out []Finding
	for _, acct := range t.accountsJudged() {
		var ev []Evidence
		var start *call
		for _, i := range t.callsOf(acct) {
			c := &t.calls[i]
			if start != nil && t.resetAfter(acct, reset, start.answered, c.arrived) {
				start = nil
			}
			if start != nil && c.sentAfter(start.answered) && bad(c) {
				ev = append(ev, t.callEvidence(c, fmt.Sprintf("sent %s after %s (call #%d at +%s)",
					fmtOffset(c.sent.Sub(start.answered)), start.err, start.seq, fmtOffset(start.arrived.Sub(t.start)))))
				continue
			}
			if start == nil && c.sig.Kind == first && c.done {
				start = c
			}
		}
		if len(ev) > 0 {
			out = append(out, t.finding(id, acct, fmt.Sprintf("%d %s after %s", len(ev), what, since), ev))
		}
	}
	return out
}

// ruleCallsAfterRevoke: SESSION_REVOKED, AUTH_KEY_UNREGISTERED and the
// other dead-key answers say the auth key no longer signs anyone in. The
// client may log in again (auth.sendCode, auth.signIn); anything else
// under that key is a call Telegram sees from a dead session.
var ruleCallsAfterRevoke = rule{
	id:       idCallsAfterRevoke,
	severity: SeverityError,
	reason:   "kept calling with a session after SESSION_REVOKED or AUTH_KEY_UNREGISTERED: the session is dead; log in again or stop, do not retry",
	check:    checkCallsAfterRevoke,
}

// loginMethods may follow a dead-key answer: they are how a client logs
// in again, and help.* is what a client calls on every connection.
var loginMethods = map[string]bool{
	"auth.sendCode": true, "auth.signIn": true, "auth.signUp": true, "auth.checkPassword": true,
	"auth.importAuthorization": true, "auth.importBotAuthorization": true, "auth.resendCode": true,
	"help.getConfig": true, "help.getNearestDc": true,
}

func checkCallsAfterRevoke(t *trace) []Finding {
	dead := map[[8]byte]*call{}
	ev := map[int][]Evidence{}
	for i := range t.calls {
		c := &t.calls[i]
		if d := dead[c.key]; d != nil {
			if (c.method == "auth.signIn" || c.method == "auth.signUp") && c.done && c.err == "" {
				delete(dead, c.key) // logged in again on the same key
				continue
			}
			if !loginMethods[c.method] && c.sentAfter(d.answered) {
				ev[c.acct] = append(ev[c.acct], t.callEvidence(c, fmt.Sprintf("sent %s after %s on the same session (call #%d)",
					fmtOffset(c.sent.Sub(d.answered)), d.err, d.seq)))
			}
			continue
		}
		if c.sig.Kind == signal.SessionDead && c.done {
			dead[c.key] = c
		}
	}
	var out []Finding
	for _, acct := range t.accountsJudged() {
		if e := ev[acct]; len(e) > 0 {
			out = append(out, t.finding(idCallsAfterRevoke, acct, plural(len(e), "call")+" with a dead session", e))
		}
	}
	return out
}
