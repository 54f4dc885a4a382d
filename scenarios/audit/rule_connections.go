package audit

import (
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/tgsafety/tgsafety/monitor/limits"
)

// tdlibConnectionLimits is TDLib's flood control on opening connections,
// the pace Telegram's own library keeps (ConnectionCreator::ClientInfo in
// td/telegram/net/ConnectionCreator.cpp: flood_control.add_limit(1, 1),
// add_limit(4, 2), add_limit(8, 3), where add_limit takes a duration in
// seconds, then a count).
var tdlibConnectionLimits = []limits.Limit{
	{Window: limits.Duration(time.Second), Max: 1, Source: "TDLib ConnectionCreator: flood_control.add_limit(1, 1)"},
	{Window: limits.Duration(4 * time.Second), Max: 2, Source: "TDLib ConnectionCreator: flood_control.add_limit(4, 2)"},
	{Window: limits.Duration(8 * time.Second), Max: 3, Source: "TDLib ConnectionCreator: flood_control.add_limit(8, 3)"},
}

// ruleReconnectStorm: a client that reconnects faster than TDLib does
// looks like a bot farm to Telegram, and a loop of reconnects after an
// error repeats whatever caused it.
var ruleReconnectStorm = rule{
	id:       idReconnectStorm,
	severity: SeverityError,
	reason:   "opened connections faster than TDLib's connection flood control (1 per 1 s, 2 per 4 s, 3 per 8 s): reconnect loops look like automation and repeat the failure",
	check:    checkReconnectStorm,
}

func checkReconnectStorm(t *trace) []Finding {
	keep := limits.KeepFor(tdlibConnectionLimits)
	var out []Finding
	for _, acct := range t.accountsJudged() {
		var s limits.Series
		var ev []Evidence
		for _, cn := range t.conns {
			if cn.acct != acct || len(cn.keys) == 0 {
				continue
			}
			if v := s.Check(cn.opened, tdlibConnectionLimits, 1); !v.Allowed {
				ev = append(ev, Evidence{At: cn.opened.Sub(t.start), Conn: cn.id,
					Note: fmt.Sprintf("connection opened: more than %d within %s", v.Limit.Max, fmtDur(v.Limit.Window.D()))})
			}
			s.Record(cn.opened, 1, keep)
		}
		if len(ev) > 0 {
			out = append(out, t.finding(idReconnectStorm, acct, plural(len(ev), "connection")+" opened too soon after the previous ones", ev))
		}
	}
	return out
}

// ruleAuthKeys: every new auth key is a key exchange and, once signed
// in, a new device in the account's sessions list. Telegram allows about
// five logins a day; a client that loses its session and makes a new key
// each start looks like an account being passed around.
var ruleAuthKeys = rule{
	id:       idAuthKeys,
	severity: SeverityError,
	reason:   "created more auth keys (key exchanges, new devices) than the guard's login budget (the profile's send_code limits × margin): keep and reuse the session",
	check:    checkAuthKeys,
}

func checkAuthKeys(t *trace) []Finding {
	first := map[[8]byte]keyUse{}
	conn := map[[8]byte]uint64{}
	for _, e := range t.keyEvents {
		if e.Key == ([8]byte{}) || t.provisioned[e.Key] {
			continue
		}
		if _, ok := first[e.Key]; !ok {
			first[e.Key] = keyUse{key: e.Key, at: e.Time}
			conn[e.Key] = e.Conn
		}
	}
	byAcct := map[int][]keyUse{}
	for k, u := range first {
		a, ok := t.keyOwner[k]
		if !ok {
			a = -1
			t.unattributedUsed = true
		}
		byAcct[a] = append(byAcct[a], u)
	}
	var out []Finding
	for _, acct := range t.accountsJudged() {
		keys := byAcct[acct]
		sort.Slice(keys, func(i, j int) bool { return keys[i].at.Before(keys[j].at) })
		ls := t.guard.LimitsFor(limits.SendCode, t.age(acct))
		var s limits.Series
		var ev []Evidence
		for _, u := range keys {
			if v := s.Check(u.at, ls, 1); !v.Allowed {
				ev = append(ev, Evidence{At: u.at.Sub(t.start), Conn: conn[u.key],
					Note: fmt.Sprintf("new auth key %s: more than %d within %s", shortKey(u.key), v.Limit.Max, fmtDur(v.Limit.Window.D()))})
			}
			s.Record(u.at, 1, limits.KeepFor(ls))
		}
		if len(ev) > 0 {
			out = append(out, t.finding(idAuthKeys, acct, plural(len(keys), "new auth key"), ev))
		}
	}
	return out
}

// shortKey shows the first four bytes of an auth key id: enough to tell
// keys apart in a report. A key id is a hash of the key, not the key.
func shortKey(k [8]byte) string { return hex.EncodeToString(k[:4]) }

// ruleConcurrentSession: one auth key used from two connections at once
// is two programs sharing a session file. Telegram answers
// AUTH_KEY_DUPLICATED and destroys the session.
var ruleConcurrentSession = rule{
	id:       idConcurrentSession,
	severity: SeverityError,
	reason:   "used the same session (auth key) from two connections at once: Telegram destroys such a session (AUTH_KEY_DUPLICATED); run one client per session",
	check:    checkConcurrentSession,
}

func checkConcurrentSession(t *trace) []Finding {
	byID := map[uint64]*connRec{}
	for _, cn := range t.conns {
		byID[cn.id] = cn
	}
	open := func(id uint64, at time.Time) bool {
		cn := byID[id]
		return cn != nil && (cn.closed.IsZero() || cn.closed.After(at))
	}
	last := map[[8]byte]uint64{}
	carried := map[[8]byte]map[uint64]bool{}
	reported := map[[2]uint64]bool{}
	ev := map[int][]Evidence{}
	for _, e := range t.keyEvents {
		if e.Key == ([8]byte{}) {
			continue
		}
		prev := last[e.Key]
		if carried[e.Key] == nil {
			carried[e.Key] = map[uint64]bool{}
		}
		// The key came back to a connection that carried it before, while
		// the one that took it over is still open: both use it.
		if prev != 0 && prev != e.Conn && carried[e.Key][e.Conn] && open(prev, e.Time) {
			pair := [2]uint64{min(prev, e.Conn), max(prev, e.Conn)}
			if !reported[pair] {
				reported[pair] = true
				a, ok := t.keyOwner[e.Key]
				if !ok {
					a = -1
				}
				ev[a] = append(ev[a], Evidence{At: e.Time.Sub(t.start), Conn: e.Conn,
					Note: fmt.Sprintf("auth key %s used again on connection %d while connection %d also uses it", shortKey(e.Key), e.Conn, prev)})
			}
		}
		carried[e.Key][e.Conn] = true
		last[e.Key] = e.Conn
	}
	var out []Finding
	for _, acct := range t.accountsJudged() {
		if e := ev[acct]; len(e) > 0 {
			out = append(out, t.finding(idConcurrentSession, acct, plural(len(e), "pair")+" of connections shared a session", e))
		}
	}
	if e := ev[-1]; len(e) > 0 && !t.unattributedUsed {
		out = append(out, t.finding(idConcurrentSession, -1, plural(len(e), "pair")+" of connections shared a session", e))
	}
	return out
}
