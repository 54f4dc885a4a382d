package audit

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

	// calls holds call seq in calls[(seq-1)/chunkSize][(seq-1)%chunkSize]:
	// the server numbers every call, so the slots fill densely, a call's
	// AfterCall finds its BeforeCall's record without a lookup, and
	// growing never copies what is kept. Records hold no pointers (names
	// are interned), so the garbage collector never scans them.
	calls     [][]stored
	names     []string
	nameIdx   map[string]uint16
	conns     map[uint64]*connRec
	connOrder []*connRec
	keyEvents []testserver.ConnEvent
	// droppedCalls and droppedEvents count what the cap left out.
	droppedCalls, droppedEvents int
	// counts are exact whatever the cap: per account (index+1; 0 is
	// unattributed), per interned method name.
	counts [][]*MethodStats
	// methodIdx caches the interned name of each request type.
	methodIdx map[uint32]uint16
	// lastAdvance is when BeforeCall last moved the virtual clock (Unix
	// nanoseconds).
	lastAdvance atomic.Int64
	connected   map[int]bool
	lastSeq     uint64
	exec        *executor
	// coldWanted counts the armed faults that wait for a cold DM.
	coldWanted atomic.Int32
}

func newRecorder(maxRecords int, progress func(string, ...any)) *recorder {
	return &recorder{max: maxRecords, progress: progress, byUser: map[int64]int{}, byPhone: map[string]int{},
		keyOwner: map[[8]byte]int{}, provisioned: map[[8]byte]bool{}, names: []string{""}, nameIdx: map[string]uint16{"": 0}, methodIdx: map[uint32]uint16{},
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

// chunkSize is how many calls one allocation of the store holds.
const chunkSize = 1024

// slot returns the record of call seq, or nil beyond the cap. r.mu is
// held.
func (r *recorder) slot(seq uint64) *stored {
	if seq == 0 || seq > uint64(r.max) {
		return nil
	}
	i := int((seq - 1) / chunkSize)
	for len(r.calls) <= i {
		r.calls = append(r.calls, make([]stored, chunkSize))
	}
	return &r.calls[i][(seq-1)%chunkSize]
}

// stored is a call as the recorder keeps it: no pointers, times in Unix
// nanoseconds, names interned.
type stored struct {
	seq                     uint64
	arrived, answered, sent int64
	conn                    uint64
	key                     [8]byte
	peer, userID            int64
	units                   int32
	method, err             uint16
	code                    int16
	phoneAcct               int16
	action                  uint8
	flags                   uint8
}

const (
	flagDone = 1 << iota
	flagDropped
	flagCold
	flagClassified
)

// storedActions numbers the actions a stored call may spend.
var storedActions = []limits.Action{"", limits.DMContact, limits.DMNonContact, limits.ResolveUsername,
	limits.JoinChannel, limits.Invite, limits.ImportContacts, limits.SendCode}

// maxNames bounds the interned names; beyond it a name is "(other)".
const maxNames = 1<<16 - 1

// intern returns the index of a name. r.mu is held.
func (r *recorder) intern(name string) uint16 {
	if i, ok := r.nameIdx[name]; ok {
		return i
	}
	if len(r.names) >= maxNames {
		return r.intern("(other)")
	}
	i := uint16(len(r.names))
	r.names = append(r.names, name)
	r.nameIdx[name] = i
	return i
}

// pack turns a call into its record; method is its interned name. r.mu
// is held.
func (r *recorder) pack(c *call, method uint16) stored {
	st := stored{seq: c.seq, arrived: nanos(c.arrived), answered: nanos(c.answered), sent: nanos(c.sent), conn: c.conn,
		key: c.key, peer: c.peer, userID: c.userID, units: int32(c.units), method: method, code: int16(c.sig.Code),
		phoneAcct: int16(c.phoneAcct)}
	if c.action != "" {
		st.action = uint8(max(0, slices.Index(storedActions, c.action)))
	}
	if c.err != "" {
		st.err = r.intern(c.err)
	}
	for _, f := range []struct {
		set  bool
		flag uint8
	}{{c.done, flagDone}, {c.dropped, flagDropped}, {c.cold, flagCold}, {c.classified, flagClassified}} {
		if f.set {
			st.flags |= f.flag
		}
	}
	return st
}

// unpack turns a record back into a call. r.mu is held.
func (r *recorder) unpack(st *stored) call {
	c := call{seq: st.seq, arrived: unnanos(st.arrived), answered: unnanos(st.answered), sent: unnanos(st.sent), conn: st.conn,
		key: st.key, peer: st.peer, userID: st.userID, units: int(st.units), method: r.names[st.method], err: r.names[st.err],
		phoneAcct: int(st.phoneAcct), action: storedActions[st.action], done: st.flags&flagDone != 0,
		dropped: st.flags&flagDropped != 0, cold: st.flags&flagCold != 0, classified: st.flags&flagClassified != 0}
	if c.err != "" {
		c.sig = signal.Parse(int(st.code), c.err)
	}
	return c
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func unnanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// BeforeCall records a call and fires the faults it triggers, before
// the server handles it: an injected error or a ban meets this very call.
func (r *recorder) BeforeCall(rec testserver.CallRecord) {
	if now := rec.Arrived.UnixNano(); r.clk != nil && now-r.lastAdvance.Load() > int64(10*time.Millisecond) {
		// Virtual time follows real time: the client's timers are real.
		// The ticker moves it too; within 10 ms is close enough.
		r.lastAdvance.Store(now)
		r.clk.AdvanceTo(rec.Arrived)
	}
	// Most calls need no decoding and no fault: their record is written
	// straight away; a call struct is made only when needed.
	st := stored{seq: rec.Seq, arrived: rec.Arrived.UnixNano(), sent: sentAt(&rec).UnixNano(), conn: rec.Conn,
		key: rec.AuthKeyID, phoneAcct: -1}
	var c call
	decoded := decodes(rec.TypeID)
	if decoded {
		c = call{seq: rec.Seq, method: rec.Method, arrived: rec.Arrived, conn: rec.Conn, key: rec.AuthKeyID, phoneAcct: -1}
		r.decode(&c, &rec)
		st.peer, st.units, st.phoneAcct, st.userID = c.peer, int32(c.units), int16(c.phoneAcct), c.userID
		if c.action != "" {
			st.action = uint8(max(0, slices.Index(storedActions, c.action)))
		}
		if c.cold {
			st.flags |= flagCold
		}
		if c.classified {
			st.flags |= flagClassified
		}
	}

	r.mu.Lock()
	acct := r.acctOf(0, st.key, int(st.phoneAcct))
	r.lastSeq = max(r.lastSeq, st.seq)
	mi, ok := r.methodIdx[rec.TypeID]
	if !ok {
		mi = r.intern(rec.Method)
		r.methodIdx[rec.TypeID] = mi
	}
	st.method = mi
	if sl := r.slot(st.seq); sl != nil {
		*sl = st
	} else {
		r.droppedCalls++
	}
	var fire []*faultState
	if r.exec != nil && r.exec.armedCalls > 0 {
		if !decoded {
			c = r.unpack(&st)
		}
		fire = r.exec.onCallLocked(acct, &c)
	}
	r.mu.Unlock()
	for _, fs := range fire {
		r.exec.fire(fs, &c)
	}
}

// decodes reports whether decode reads a request of this type.
func decodes(id uint32) bool {
	switch id {
	case tg.MessagesSendMessageRequestTypeID, tg.ContactsResolveUsernameRequestTypeID, tg.ContactsImportContactsRequestTypeID,
		tg.ChannelsJoinChannelRequestTypeID, tg.ChannelsInviteToChannelRequestTypeID, tg.AuthSendCodeRequestTypeID:
		return true
	}
	return false
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
	sl := r.slot(rec.Seq)
	if sl == nil || sl.seq != rec.Seq {
		// Over the cap: counted, and seen by the faults, not kept.
		tmp := r.pack(&call{seq: rec.Seq, arrived: rec.Arrived, conn: rec.Conn, key: rec.AuthKeyID, phoneAcct: -1}, r.intern(rec.Method))
		sl = &tmp
	}
	sl.flags |= flagDone
	if rec.Dropped {
		sl.flags |= flagDropped
	}
	sl.answered = rec.Answered.UnixNano()
	if rec.Err != nil {
		sl.err, sl.code = r.intern(rec.Err.Message), int16(rec.Err.Code)
	}
	// Whom the key signs in: known for the sessions handed out, asked of
	// the server (its lock) for a key not seen signed in yet and after a
	// call that may sign in.
	owner, known := r.keyOwner[rec.AuthKeyID]
	if !known || rec.Err == nil && strings.HasPrefix(rec.Method, "auth.") {
		if a, ok := r.byUser[rec.UserID()]; ok && (!known || a != owner) {
			r.keyOwner[rec.AuthKeyID] = a
			owner, known = a, true
		}
	}
	if known {
		sl.userID = r.accounts[owner].userID
	}
	acct := r.acctOf(sl.userID, sl.key, int(sl.phoneAcct))
	r.count(acct, sl)
	var delivered []*faultState
	var c call
	if r.exec != nil && r.exec.awaiting > 0 {
		c = r.unpack(sl)
		delivered = r.exec.afterCallLocked(acct, &c)
	}
	r.mu.Unlock()
	for _, fs := range delivered {
		r.exec.delivered(fs, &c)
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

func (r *recorder) count(acct int, st *stored) {
	for len(r.counts) < len(r.accounts)+1 {
		r.counts = append(r.counts, nil)
	}
	row := r.counts[acct+1]
	for len(row) <= int(st.method) {
		row = append(row, nil)
	}
	r.counts[acct+1] = row
	ms := row[st.method]
	if ms == nil {
		ms = &MethodStats{Method: r.names[st.method]}
		row[st.method] = ms
	}
	ms.Calls++
	switch {
	case st.flags&flagDropped != 0:
		ms.Dropped++
	case st.err != 0:
		if ms.Errors == nil {
			ms.Errors = map[string]int{}
		}
		ms.Errors[r.names[st.err]]++
	default:
		ms.OK++
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
	// The sender, by the key (the server tells only after the call).
	r.mu.Lock()
	if a, ok := r.keyOwner[c.key]; ok {
		c.userID = r.accounts[a].userID
	}
	r.mu.Unlock()
	switch rec.TypeID {
	case tg.MessagesSendMessageRequestTypeID:
		// The id, the flags, then the peer; nothing else is read. Whom a
		// message to a user goes to (a cold DM?) is asked of the server
		// later (classify), or now when a fault waits for a cold DM.
		c.action, c.units = limits.DMContact, 1
		if _, err := b.ID(); err != nil {
			return
		}
		if _, err := b.Uint32(); err != nil {
			return
		}
		if id, err := b.ID(); err == nil && id == tg.InputPeerUserTypeID {
			if uid, err := b.Long(); err == nil {
				c.peer = uid
				if r.coldWanted.Load() > 0 {
					r.classify(c)
				}
			}
		}
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

// classify asks the server whether a message to a user is a cold DM.
// It takes the server's lock: the recorder does it for every message
// only once the client is gone (trace), and during the run only while a
// fault waits for a cold DM.
func (r *recorder) classify(c *call) {
	if c.peer == 0 || c.userID == 0 || r.srv == nil {
		return
	}
	c.action = r.srv.DMAction(c.userID, c.peer)
	c.cold, c.classified = c.action == limits.DMNonContact, true
}

// trace hands the recorded run to the rules. The client must be gone.
func (r *recorder) trace(profile *limits.Profile, guardMargin float64) *trace {
	r.mu.Lock()
	defer r.mu.Unlock()
	var calls []call
	for _, ch := range r.calls {
		for i := range ch {
			if ch[i].seq != 0 {
				c := r.unpack(&ch[i])
				if c.peer != 0 && !c.classified {
					r.classify(&c)
				}
				calls = append(calls, c)
			}
		}
	}
	t := &trace{start: r.start, accounts: r.accounts, calls: calls, keyEvents: slices.Clone(r.keyEvents),
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
		if st == nil {
			continue
		}
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
