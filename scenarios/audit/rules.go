package audit

import (
	"fmt"
	"sort"
	"time"
)

// Severity says what a broken rule does to the verdict.
type Severity string

// The severities. A broken rule at SeverityError fails the audit (exit
// 1); a warning is reported; an off rule is not judged.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityOff     Severity = "off"
)

// ParseSeverity reads error, warning or off.
func ParseSeverity(s string) (Severity, error) {
	switch v := Severity(s); v {
	case SeverityError, SeverityWarning, SeverityOff:
		return v, nil
	}
	return "", fmt.Errorf("severity must be error, warning or off, got %q", s)
}

// rule is one judgement of the client's behaviour. Each lives in a file
// of its own (rule_*.go); rules lists them in report order.
type rule struct {
	id       string
	severity Severity
	// reason says in one line why breaking it matters.
	reason string
	// check returns what broke the rule, per account, from the trace.
	check func(t *trace) []Finding
}

// The rules' ids: public names (plan files, JSON, JUnit cases).
const (
	idFloodWaitRetry    = "flood-wait-retry"
	idPeerFloodIgnored  = "peer-flood-ignored"
	idCallsAfterBan     = "calls-after-ban"
	idFrozenWrites      = "writes-while-frozen"
	idCallsAfterRevoke  = "calls-after-revoke"
	idReconnectStorm    = "reconnect-storm"
	idAuthKeys          = "auth-keys"
	idConcurrentSession = "concurrent-session"
	idLogins            = "logins"
	idBudget            = "budget"
	idStartupResolves   = "startup-resolve-burst"
	idQRLogin           = "qr-login"
)

// rules is the registry, in the order the report lists them.
var rules = []*rule{
	&ruleFloodWaitRetry,
	&rulePeerFloodIgnored,
	&ruleCallsAfterBan,
	&ruleCallsAfterRevoke,
	&ruleReconnectStorm,
	&ruleAuthKeys,
	&ruleLogins,
	&ruleBudget,
	&ruleStartupResolves,
	&ruleConcurrentSession,
	&ruleQRLogin,
	&ruleFrozenWrites,
}

func ruleByID(id string) *rule {
	for _, r := range rules {
		if r.id == id {
			return r
		}
	}
	return nil
}

// RuleIDs returns every rule's id, in report order.
func RuleIDs() []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.id
	}
	return out
}

// RuleInfo describes a rule for documentation and `scenario-run audit
// --rules`.
type RuleInfo struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Reason   string   `json:"reason"`
}

// Rules returns every rule with its default severity and reason.
func Rules() []RuleInfo {
	out := make([]RuleInfo, len(rules))
	for i, r := range rules {
		out[i] = RuleInfo{ID: r.id, Severity: r.severity, Reason: r.reason}
	}
	return out
}

// Finding is one rule broken by one account, with the calls (or
// connections) that broke it.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Account is the audit's name for the account, or Unattributed.
	Account string `json:"account"`
	// Reason is the rule's one-line reason.
	Reason string `json:"reason"`
	// Summary says what the account did.
	Summary  string     `json:"summary"`
	Evidence []Evidence `json:"evidence"`
	// MoreEvidence counts evidence left out of the list (maxEvidence).
	MoreEvidence int `json:"more_evidence,omitempty"`
}

// Unattributed names the account of calls and connections whose auth key
// never signed in to an audited account (a fresh key that never logged
// in, QR login attempts).
const Unattributed = "(unattributed)"

// maxEvidence bounds the evidence listed per finding: enough to see the
// pattern.
const maxEvidence = 10

// Evidence is one call or connection that broke a rule.
type Evidence struct {
	// At is the time since the start of the audit (real time).
	At time.Duration `json:"at_ns"`
	// Seq is the call's number (0 for a connection).
	Seq    uint64 `json:"seq,omitempty"`
	Method string `json:"method,omitempty"`
	// Result is "ok", the RPC error, or "dropped".
	Result string `json:"result,omitempty"`
	Conn   uint64 `json:"conn,omitempty"`
	// Note says why this call is evidence.
	Note string `json:"note"`
}

// String renders the evidence on one line.
func (e Evidence) String() string {
	s := "+" + fmtOffset(e.At)
	if e.Method != "" {
		s += " " + e.Method
		if e.Result != "" {
			s += " → " + e.Result
		}
	}
	if e.Conn != 0 {
		s += fmt.Sprintf(" (conn %d)", e.Conn)
	}
	if e.Note != "" {
		s += ": " + e.Note
	}
	return s
}

// finding builds a Finding of rule id for an account from evidence, capping
// the list.
func (t *trace) finding(id string, acct int, summary string, ev []Evidence) Finding {
	f := Finding{Rule: id, Account: t.name(acct), Summary: summary, Evidence: ev}
	if len(ev) > maxEvidence {
		f.Evidence, f.MoreEvidence = ev[:maxEvidence], len(ev)-maxEvidence
	}
	return f
}

// callEvidence is a call as evidence.
func (t *trace) callEvidence(c *call, note string) Evidence {
	return Evidence{At: c.arrived.Sub(t.start), Seq: c.seq, Method: c.method, Result: c.result(), Conn: c.conn, Note: note}
}

// judge runs every rule that is not off, with the plan's severities, and
// sorts the findings by account, then rule order.
func judge(t *trace, severity map[string]Severity) []Finding {
	var out []Finding
	for _, r := range rules {
		sev := r.severity
		if s, ok := severity[r.id]; ok {
			sev = s
		}
		if sev == SeverityOff {
			continue
		}
		for _, f := range r.check(t) {
			f.Severity, f.Reason = sev, r.reason
			out = append(out, f)
		}
	}
	order := map[string]int{}
	for i, r := range rules {
		order[r.id] = i
	}
	sort.SliceStable(out, func(i, j int) bool {
		ai, aj := t.accountOrder(out[i].Account), t.accountOrder(out[j].Account)
		if ai != aj {
			return ai < aj
		}
		return order[out[i].Rule] < order[out[j].Rule]
	})
	return out
}
