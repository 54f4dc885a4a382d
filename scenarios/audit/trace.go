package audit

import (
	"sort"
	"time"

	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/testserver"
)

// call is one recorded call.
type call struct {
	seq    uint64
	acct   int // index into trace.accounts, or -1 (set by attribute)
	userID int64
	method string
	// err is the RPC error message answered, "" on success; sig its
	// classification.
	err     string
	sig     signal.Signal
	dropped bool
	done    bool // AfterCall seen
	// arrived and answered are the server's real times; sent is the
	// client's, from the message id (see testserver.CallRecord.SentAt).
	arrived, answered, sent time.Time
	conn                    uint64
	key                     [8]byte
	// action and units: what the call spends in the profile when it
	// succeeds (decoded from the request).
	action limits.Action
	units  int
	// cold: a private message to someone who does not know the account;
	// peer is the user a message goes to, classified once asked.
	cold       bool
	peer       int64
	classified bool
	// phoneAcct: auth.sendCode for an audited account's number, else -1.
	phoneAcct int
}

// result is "ok", the RPC error or "dropped".
func (c *call) result() string {
	switch {
	case c.dropped:
		return "dropped"
	case c.err != "":
		return c.err
	case !c.done:
		return "no answer"
	}
	return "ok"
}

// sentAfter reports whether the client sent c after t, the time an
// answer left the server: then it knew the answer (client and server
// share a machine and its clock).
func (c *call) sentAfter(t time.Time) bool { return c.sent.After(t) }

// connRec is one connection's life.
type connRec struct {
	id             uint64
	opened, closed time.Time
	// keys are the auth keys it carried, in order (zero: a key exchange).
	keys []keyUse
	acct int
}

type keyUse struct {
	key [8]byte
	at  time.Time
}

// acctInfo is an audited account as the trace knows it.
type acctInfo struct {
	spec   AccountSpec
	userID int64
	phone  string
}

// trace is everything recorded in a run, attributed to accounts: what
// the rules judge.
type trace struct {
	start    time.Time
	accounts []*acctInfo
	calls    []call
	conns    []*connRec // in opening order
	// keyEvents are the ConnKey events in order: which connection carried
	// which key when.
	keyEvents []testserver.ConnEvent
	// keyOwner maps a signed-in key to its account; provisioned are the
	// keys the audit handed out.
	keyOwner    map[[8]byte]int
	provisioned map[[8]byte]bool
	// profile is the limits profile; guard the guard's numbers (profile
	// scaled by its margin).
	profile, guard *limits.Profile
	// resets are the times faults lifted a state, by account and action
	// (release, unban, unfreeze): a rule judges behaviour since the last
	// one.
	resets map[int]map[Action][]time.Time
	// unattributedUsed is true when something could not be attributed.
	unattributedUsed bool
}

// name is the account's name, or Unattributed for -1.
func (t *trace) name(acct int) string {
	if acct < 0 || acct >= len(t.accounts) {
		return Unattributed
	}
	return t.accounts[acct].spec.Name
}

func (t *trace) accountOrder(name string) int {
	for i, a := range t.accounts {
		if a.spec.Name == name {
			return i
		}
	}
	return len(t.accounts)
}

// attribute gives every call and connection its account: the signed-in
// user of the call, else the account its key ever signed in to, else the
// number auth.sendCode asked for.
func (t *trace) attribute() {
	byUser := map[int64]int{}
	for i, a := range t.accounts {
		byUser[a.userID] = i
	}
	for i := range t.calls {
		c := &t.calls[i]
		if a, ok := byUser[c.userID]; ok && c.userID != 0 {
			t.keyOwner[c.key] = a
		}
	}
	for i := range t.calls {
		c := &t.calls[i]
		c.acct = -1
		if a, ok := byUser[c.userID]; ok && c.userID != 0 {
			c.acct = a
		} else if a, ok := t.keyOwner[c.key]; ok {
			c.acct = a
		} else if c.phoneAcct >= 0 {
			c.acct = c.phoneAcct
		}
		if c.acct < 0 {
			t.unattributedUsed = true
		}
	}
	for _, cn := range t.conns {
		cn.acct = -1
		for _, k := range cn.keys {
			if a, ok := t.keyOwner[k.key]; ok {
				cn.acct = a
				break
			}
		}
		if cn.acct < 0 && len(cn.keys) > 0 {
			t.unattributedUsed = true
		}
	}
	sort.SliceStable(t.calls, func(i, j int) bool { return t.calls[i].seq < t.calls[j].seq })
}

// callsOf returns the indexes of an account's calls, in arrival order.
func (t *trace) callsOf(acct int) []int {
	var out []int
	for i := range t.calls {
		if t.calls[i].acct == acct {
			out = append(out, i)
		}
	}
	return out
}

// accountsJudged lists the account indexes a rule judges: every account,
// and -1 when something was unattributed.
func (t *trace) accountsJudged() []int {
	out := make([]int, 0, len(t.accounts)+1)
	for i := range t.accounts {
		out = append(out, i)
	}
	if t.unattributedUsed {
		out = append(out, -1)
	}
	return out
}

// resetAfter reports whether a fault lifted the state act (release,
// unban, unfreeze) of acct between from and to.
func (t *trace) resetAfter(acct int, act Action, from, to time.Time) bool {
	for _, at := range t.resets[acct][act] {
		if at.After(from) && !at.After(to) {
			return true
		}
	}
	return false
}

// age is the account's age at the start, for the profile's young limits.
func (t *trace) age(acct int) time.Duration {
	if acct < 0 {
		return 0 // an unknown account is judged as a new one
	}
	return t.accounts[acct].spec.Age
}
