package audit

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/phone"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/vclock"
	"github.com/tgsafety/tgsafety/testserver"
)

// DefaultMaxRecords bounds what a run keeps: calls and connection events
// each. A busy client makes a few thousand calls in two minutes; 100,000
// records take about 15 MB.
const DefaultMaxRecords = 100_000

// recorder is the audit's testserver.Observer: it keeps every call and
// connection event (up to a cap, counting the rest), counts calls per
// account and method exactly, and runs the fault plan on the calls it
// sees.
type recorder struct {
	srv   *testserver.Server
	clk   *vclock.Clock
	max   int
	start time.Time
	// progress reports what happens while the client runs.
	progress func(format string, args ...any)

	mu       sync.Mutex
	accounts []*acctInfo
	byUser   map[int64]int
	byPhone  map[string]int
	keyOwner map[[8]byte]int
	// provisioned keys are the sessions the audit handed out.
	provisioned map[[8]byte]bool

	calls     []call
	pending   map[uint64]int // seq -> index in calls, between BeforeCall and AfterCall
	conns     map[uint64]*connRec
	connOrder []*connRec
	keyEvents []testserver.ConnEvent
	// droppedCalls and droppedEvents count what the cap left out.
	droppedCalls, droppedEvents int
	// counts are exact whatever the cap: per account (index+1; 0 is
	// unattributed), per method.
	counts    []map[string]*MethodStats
	connected map[int]bool
	lastSeq   uint64
	exec      *executor
}

func newRecorder(maxRecords int, progress func(string, ...any)) *recorder {
	return &recorder{max: maxRecords, progress: progress, byUser: map[int64]int{}, byPhone: map[string]int{},
		keyOwner: map[[8]byte]int{}, provisioned: map[[8]byte]bool{}, pending: map[uint64]int{},
		conns: map[uint64]*connRec{}, connected: map[int]bool{}}
}

// addAccount registers an audited account and the session handed to it.
func (r *recorder) addAccount(a *acctInfo, key [8]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := len(r.accounts)
	r.accounts = append(r.accounts, a)
	r.byUser[a.userID] = i
	r.byPhone[digits(a.phone)] = i
	r.keyOwner[key] = i
	r.provisioned[key] = true
}

// acctOf attributes a call by its user, its key or the number it asks a
// login code for; -1 when none is known. r.mu is held.
func (r *recorder) acctOf(userID int64, key [8]byte, phoneAcct int) int {
	if a, ok := r.byUser[userID]; ok && userID != 0 {
		return a
	}
	if a, ok := r.keyOwner[key]; ok {
		return a
	}
	return phoneAcct
}

// BeforeCall records a call and fires the faults it triggers, before
// the server handles it: an injected error or a ban meets this very call.
func (r *recorder) BeforeCall(rec testserver.CallRecord) {
	if r.clk != nil {
		// Virtual time follows real time: the client's timers are real.
		r.clk.AdvanceTo(time.Now())
	}
	c := call{seq: rec.Seq, userID: rec.UserID, method: rec.Method, arrived: rec.Arrived, conn: rec.Conn,
		key: rec.AuthKeyID, sent: sentAt(&rec), phoneAcct: -1}
	r.decode(&c, &rec)

	r.mu.Lock()
	acct := r.acctOf(c.userID, c.key, c.phoneAcct)
	r.lastSeq = max(r.lastSeq, c.seq)
	if len(r.calls) < r.max {
		r.pending[c.seq] = len(r.calls)
		r.calls = append(r.calls, c)
	} else {
		r.droppedCalls++
	}
	var fire []*faultState
	if r.exec != nil {
		fire = r.exec.onCallLocked(acct, &c)
	}
	r.mu.Unlock()
	for _, fs := range fire {
		r.exec.fire(fs, &c)
	}
}

// sentAt is when the client sent the call by its own clock, from the
// MTProto message id: Unix seconds in the upper 32 bits and the fraction
// of the second in the lower, which libraries write differently
// (nanoseconds in gotd, nanoseconds × 4 in Telethon and GramJS, a 2^32
// fraction in TDLib). The readings are ordered (nanoseconds ≥ ×4 ≥ 2^32),
// and a call cannot be sent after it arrived (client and server share a
// machine and its clock): the latest reading no later than the arrival
// is the library's. A message id far from the arrival (a clock that is
// off, made-up ids) gives the arrival.
func sentAt(rec *testserver.CallRecord) time.Time {
	sec := rec.MsgID >> 32
	f := int64(uint32(rec.MsgID))
	latest := rec.Arrived.Add(2 * time.Millisecond)
	for _, ns := range [...]int64{f, f >> 2, f * int64(time.Second) >> 32} {
		if ns >= int64(time.Second) {
			continue
		}
		if s := time.Unix(sec, ns); !s.After(latest) {
			if rec.Arrived.Sub(s) > 30*time.Second {
				break
			}
			return s
		}
	}
	return rec.Arrived
}

// AfterCall completes the call's record, counts it, and notes the faults
// it delivered.
func (r *recorder) AfterCall(rec testserver.CallRecord) {
	r.mu.Lock()
	var c *call
	if i, ok := r.pending[rec.Seq]; ok {
		delete(r.pending, rec.Seq)
		c = &r.calls[i]
	} else {
		c = &call{seq: rec.Seq, method: rec.Method, arrived: rec.Arrived, conn: rec.Conn, key: rec.AuthKeyID, phoneAcct: -1}
	}
	c.done, c.answered, c.dropped, c.userID = true, rec.Answered, rec.Dropped, rec.UserID
	if rec.Err != nil {
		c.err = rec.Err.Message
		c.sig = signal.Parse(rec.Err.Code, rec.Err.Message)
	}
	if a, ok := r.byUser[rec.UserID]; ok && rec.UserID != 0 {
		r.keyOwner[rec.AuthKeyID] = a // signed in with this key
	}
	acct := r.acctOf(c.userID, c.key, c.phoneAcct)
	r.count(acct, c)
	var delivered []*faultState
	if r.exec != nil {
		delivered = r.exec.afterCallLocked(acct, c)
	}
	cc := *c
	r.mu.Unlock()
	for _, fs := range delivered {
		r.exec.delivered(fs, &cc)
	}
}

// MethodStats counts one method's calls by answer.
type MethodStats struct {
	Method  string `json:"method"`
	Calls   int    `json:"calls"`
	OK      int    `json:"ok"`
	Dropped int    `json:"dropped,omitempty"`
	// Errors counts RPC errors by message.
	Errors map[string]int `json:"errors,omitempty"`
}

func (r *recorder) count(acct int, c *call) {
	for len(r.counts) < len(r.accounts)+1 {
		r.counts = append(r.counts, map[string]*MethodStats{})
	}
	m := r.counts[acct+1]
	st := m[c.method]
	if st == nil {
		st = &MethodStats{Method: c.method}
		m[c.method] = st
	}
	st.Calls++
	switch {
	case c.dropped:
		st.Dropped++
	case c.err != "":
		if st.Errors == nil {
			st.Errors = map[string]int{}
		}
		st.Errors[c.err]++
	default:
		st.OK++
	}
}

// ConnEvent records a connection's life; the first connection of each
// account is a progress line.
func (r *recorder) ConnEvent(e testserver.ConnEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cn := r.conns[e.Conn]
	if cn == nil {
		cn = &connRec{id: e.Conn, opened: e.Time}
		if len(r.connOrder) < r.max {
			r.conns[e.Conn] = cn
			r.connOrder = append(r.connOrder, cn)
		} else {
			r.droppedEvents++
			return
		}
	}
	switch e.Kind {
	case testserver.ConnClosed:
		cn.closed = e.Time
	case testserver.ConnKey:
		if len(r.keyEvents) >= r.max {
			r.droppedEvents++
			return
		}
		r.keyEvents = append(r.keyEvents, e)
		cn.keys = append(cn.keys, keyUse{key: e.Key, at: e.Time})
		if a, ok := r.keyOwner[e.Key]; ok && !r.connected[a] {
			r.connected[a] = true
			r.progress("+%s %s: connected (connection %d)", fmtOffset(e.Time.Sub(r.start)), r.accounts[a].spec.Name, e.Conn)
		}
	}
}

// decode reads what the policy would spend from the request: whom a
// message goes to (a cold DM?), how many contacts an import holds, which
// number a login code is for. Only the few methods the rules need are
// decoded, and only their first fields.
func (r *recorder) decode(c *call, rec *testserver.CallRecord) {
	b := &bin.Buffer{Buf: rec.Body}
	switch rec.TypeID {
	case tg.MessagesSendMessageRequestTypeID:
		// flags, then peer: the rest of the message is not read.
		if _, err := b.ID(); err != nil {
			return
		}
		if _, err := b.Uint32(); err != nil {
			return
		}
		peer, err := tg.DecodeInputPeer(b)
		if err != nil {
			return
		}
		switch p := peer.(type) {
		case *tg.InputPeerUser:
			if c.userID != 0 && r.srv != nil {
				c.action = r.srv.DMAction(c.userID, p.UserID)
			}
		case *tg.InputPeerSelf, *tg.InputPeerChannel, *tg.InputPeerChat:
			c.action = limits.DMContact
		}
		c.cold, c.units = c.action == limits.DMNonContact, 1
	case tg.ContactsResolveUsernameRequestTypeID:
		var req tg.ContactsResolveUsernameRequest
		if req.Decode(b) == nil && !strings.EqualFold(strings.TrimPrefix(req.Username, "@"), spambot.Username) {
			c.action, c.units = limits.ResolveUsername, 1
		}
	case tg.ContactsImportContactsRequestTypeID:
		var req tg.ContactsImportContactsRequest
		if req.Decode(b) == nil {
			c.action, c.units = limits.ImportContacts, len(req.Contacts)
		}
	case tg.ChannelsJoinChannelRequestTypeID:
		c.action, c.units = limits.JoinChannel, 1
	case tg.ChannelsInviteToChannelRequestTypeID:
		var req tg.ChannelsInviteToChannelRequest
		if req.Decode(b) == nil {
			n := 0
			for _, u := range req.Users {
				if iu, ok := u.(*tg.InputUser); ok && r.srv != nil && r.srv.DMAction(c.userID, iu.UserID) == limits.DMContact {
					continue
				}
				n++
			}
			c.action, c.units = limits.Invite, n
		}
	case tg.AuthSendCodeRequestTypeID:
		var req tg.AuthSendCodeRequest
		if req.Decode(b) == nil {
			c.action, c.units = limits.SendCode, 1
			r.mu.Lock()
			if a, ok := r.byPhone[digits(req.PhoneNumber)]; ok && digits(req.PhoneNumber) != "" {
				c.phoneAcct = a
			}
			r.mu.Unlock()
		}
	}
}

// trace hands the recorded run to the rules. The client must be gone.
func (r *recorder) trace(profile *limits.Profile, guardMargin float64) *trace {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &trace{start: r.start, accounts: r.accounts, calls: slices.Clone(r.calls), keyEvents: slices.Clone(r.keyEvents),
		keyOwner: map[[8]byte]int{}, provisioned: r.provisioned, profile: profile, guard: profile.Scaled(guardMargin),
		resets: map[int]map[Action][]time.Time{}}
	for k, v := range r.keyOwner {
		t.keyOwner[k] = v
	}
	for _, cn := range r.connOrder {
		cp := *cn
		cp.keys = slices.Clone(cn.keys)
		t.conns = append(t.conns, &cp)
	}
	if r.exec != nil {
		for _, fs := range r.exec.faults {
			if !fs.fired {
				continue
			}
			switch fs.f.Action {
			case ActRelease, ActUnban, ActUnfreeze:
				if t.resets[fs.acct] == nil {
					t.resets[fs.acct] = map[Action][]time.Time{}
				}
				t.resets[fs.acct][fs.f.Action] = append(t.resets[fs.acct][fs.f.Action], fs.firedAt)
			}
		}
	}
	t.attribute()
	return t
}

// methodStats returns an account's counts sorted by method.
func (r *recorder) methodStats(acct int) []MethodStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	if acct+1 >= len(r.counts) {
		return nil
	}
	var out []MethodStats
	for _, st := range r.counts[acct+1] {
		cp := *st
		if st.Errors != nil {
			cp.Errors = map[string]int{}
			for k, v := range st.Errors {
				cp.Errors[k] = v
			}
		}
		out = append(out, cp)
	}
	slices.SortFunc(out, func(a, b MethodStats) int { return strings.Compare(a.Method, b.Method) })
	return out
}

// String renders the counts as "12 (ok 10, FLOOD_WAIT_10 1, dropped 1)".
func (m MethodStats) String() string {
	parts := []string{fmt.Sprintf("ok %d", m.OK)}
	errs := make([]string, 0, len(m.Errors))
	for e := range m.Errors {
		errs = append(errs, e)
	}
	slices.Sort(errs)
	for _, e := range errs {
		parts = append(parts, fmt.Sprintf("%s %d", e, m.Errors[e]))
	}
	if m.Dropped > 0 {
		parts = append(parts, fmt.Sprintf("dropped %d", m.Dropped))
	}
	return fmt.Sprintf("%d (%s)", m.Calls, strings.Join(parts, ", "))
}

// digits is a phone number's digits, "" when it is not one.
func digits(s string) string {
	d, _ := phone.Digits(s)
	return d
}
