package audit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tgsafety/tgsafety/monitor/signal"
)

// ruleFloodWaitRetry: FLOOD_WAIT_X says "not this method for X seconds".
// A call of the same method sent after the answer and before the wait
// ends is a retry the client should not have made; Telegram answers it
// with a longer wait, and repeated violations escalate to a day.
var ruleFloodWaitRetry = rule{
	id:       idFloodWaitRetry,
	severity: SeverityError,
	reason:   "called a method again before its FLOOD_WAIT expired: Telegram escalates the wait (seconds, minutes, then a day) and counts it against the account",
	check:    checkFloodWaitRetry,
}

func checkFloodWaitRetry(t *trace) []Finding {
	var out []Finding
	for _, acct := range t.accountsJudged() {
		idx := t.callsOf(acct)
		var ev []Evidence
		seen := map[int]bool{}
		methods := map[string]int{}
		for n, i := range idx {
			w := &t.calls[i]
			if w.sig.Kind != signal.FloodWait || !w.done {
				continue
			}
			until := w.answered.Add(w.sig.Wait)
			for _, j := range idx[n+1:] {
				c := &t.calls[j]
				if c.method != w.method || seen[j] || !c.sentAfter(w.answered) || !c.sent.Before(until) {
					continue
				}
				seen[j] = true
				methods[c.method]++
				ev = append(ev, t.callEvidence(c, fmt.Sprintf("sent %s after %s (call #%d), %s before the wait ended",
					fmtOffset(c.sent.Sub(w.answered)), w.err, w.seq, fmtOffset(until.Sub(c.sent)))))
			}
		}
		if len(ev) == 0 {
			continue
		}
		sort.SliceStable(ev, func(a, b int) bool { return ev[a].Seq < ev[b].Seq })
		out = append(out, t.finding(idFloodWaitRetry, acct, "called "+countList(methods)+" before a FLOOD_WAIT expired", ev))
	}
	return out
}

// countList renders counts as "contacts.resolveUsername 3 times,
// messages.sendMessage once", sorted by name.
func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + times(m[k])
	}
	return strings.Join(parts, ", ")
}

func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}
