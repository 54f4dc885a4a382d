package audit

import (
	"fmt"
	"time"

	"github.com/tgsafety/tgsafety/monitor/limits"
)

// ruleLogins: each auth.sendCode is a login attempt; Telegram allows
// about five a day per number and answers more with a day-long wait.
var ruleLogins = rule{
	id:       idLogins,
	severity: SeverityError,
	reason:   "asked for more login codes (auth.sendCode) than the guard's budget (the profile's send_code limits × margin): logging in again and again gets numbers banned",
	check:    checkLogins,
}

func checkLogins(t *trace) []Finding {
	var out []Finding
	for _, acct := range t.accountsJudged() {
		ls := t.guard.LimitsFor(limits.SendCode, t.age(acct))
		var s limits.Series
		var ev []Evidence
		n := 0
		for _, i := range t.callsOf(acct) {
			c := &t.calls[i]
			if c.method != "auth.sendCode" {
				continue
			}
			n++
			if v := s.Check(c.arrived, ls, 1); !v.Allowed {
				ev = append(ev, t.callEvidence(c, fmt.Sprintf("login code #%d: the guard allows %d per %s", n, v.Limit.Max, fmtDur(v.Limit.Window.D()))))
			}
			s.Record(c.arrived, 1, limits.KeepFor(ls))
		}
		if len(ev) > 0 {
			out = append(out, t.finding(idLogins, acct, plural(n, "login code")+" asked for", ev))
		}
	}
	return out
}

// ruleBudget: the profile's budgets are what the test server (and, as
// far as anyone knows, Telegram) enforces; the guard stops at a margin
// below them, because the numbers are estimates and other devices spend
// the same budget. A client above the guard's numbers is one bad day
// from PEER_FLOOD.
var ruleBudget = rule{
	id:       idBudget,
	severity: SeverityWarning,
	reason:   "did more than the guard's budgets (the limits profile × margin, docs/guard.md) allow: the numbers are estimates, and the margin is what keeps an account clear of them",
	check:    checkBudget,
}

func checkBudget(t *trace) []Finding {
	var out []Finding
	for _, acct := range t.accountsJudged() {
		series := map[limits.Action]*limits.Series{}
		count := map[limits.Action]int{}
		var ev []Evidence
		for _, i := range t.callsOf(acct) {
			c := &t.calls[i]
			if c.action == "" || c.action == limits.SendCode || !c.done || c.err != "" || c.dropped {
				continue
			}
			ls := t.guard.LimitsFor(c.action, t.age(acct))
			if ls == nil {
				continue
			}
			s := series[c.action]
			if s == nil {
				s = &limits.Series{}
				series[c.action] = s
			}
			count[c.action] += c.units
			if v := s.Check(c.arrived, ls, c.units); !v.Allowed {
				ev = append(ev, t.callEvidence(c, fmt.Sprintf("%s: more than %d within %s (the guard's budget)", c.action, v.Limit.Max, fmtDur(v.Limit.Window.D()))))
			}
			s.Record(c.arrived, c.units, limits.KeepFor(ls))
		}
		if len(ev) > 0 {
			out = append(out, t.finding(idBudget, acct, plural(len(ev), "call")+" over the guard's budgets", ev))
		}
	}
	return out
}

// ruleStartupResolves: resolving every username a program knows when it
// starts is the classic way to a long FLOOD_WAIT on
// contacts.resolveUsername (waits of minutes at bot start-up, then a
// day). Resolve lazily and keep the peers.
var ruleStartupResolves = rule{
	id:       idStartupResolves,
	severity: SeverityError,
	reason:   "resolved more usernames right after start-up than the guard allows in the profile's shortest resolve window: resolve lazily and cache peers (access hashes do not change)",
	check:    checkStartupResolves,
}

func checkStartupResolves(t *trace) []Finding {
	var out []Finding
	for _, acct := range t.accountsJudged() {
		idx := t.callsOf(acct)
		if len(idx) == 0 {
			continue
		}
		ls := t.guard.LimitsFor(limits.ResolveUsername, t.age(acct))
		if len(ls) == 0 {
			continue
		}
		shortest := ls[0]
		for _, l := range ls[1:] {
			if l.Window < shortest.Window {
				shortest = l
			}
		}
		startAt := t.calls[idx[0]].arrived
		end := startAt.Add(shortest.Window.D())
		var ev []Evidence
		n := 0
		for _, i := range idx {
			c := &t.calls[i]
			if !c.arrived.Before(end) {
				break
			}
			if c.action != limits.ResolveUsername {
				continue
			}
			if n++; n > shortest.Max {
				ev = append(ev, t.callEvidence(c, fmt.Sprintf("resolve #%d within %s of the first call; the guard allows %d", n, fmtDur(shortest.Window.D()), shortest.Max)))
			}
		}
		if len(ev) > 0 {
			out = append(out, t.finding(idStartupResolves, acct, fmt.Sprintf("%d resolves in the first %s", n, fmtDur(end.Sub(startAt))), ev))
		}
	}
	return out
}

// qrMethods are the QR login methods.
var qrMethods = map[string]bool{"auth.exportLoginToken": true, "auth.importLoginToken": true, "auth.acceptLoginToken": true}

// ruleQRLogin: logging in by QR code (auth.exportLoginToken) from an
// automated client is reported to end in permanent bans; use the phone
// code flow.
var ruleQRLogin = rule{
	id:       idQRLogin,
	severity: SeverityError,
	reason:   "used QR login (auth.exportLoginToken): automated QR logins are reported to end in permanent bans; log in with the code sent to the number",
	check: func(t *trace) []Finding {
		var out []Finding
		for _, acct := range t.accountsJudged() {
			var ev []Evidence
			for _, i := range t.callsOf(acct) {
				if c := &t.calls[i]; qrMethods[c.method] {
					ev = append(ev, t.callEvidence(c, "QR login"))
				}
			}
			if len(ev) > 0 {
				out = append(out, t.finding(idQRLogin, acct, plural(len(ev), "QR login call"), ev))
			}
		}
		return out
	},
}

// fmtDur writes a duration in tgsafety's one format (limits).
func fmtDur(d time.Duration) string { return limits.FormatDuration(d, 0) }

// fmtOffset writes a time offset for reports: milliseconds below a
// second (250ms), tenths of a second below a minute (12.3s), whole
// seconds above (2m5s).
func fmtOffset(d time.Duration) string {
	if d < 0 {
		return "-" + fmtOffset(-d)
	}
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return limits.FormatDuration(d.Round(time.Second), 0)
}
