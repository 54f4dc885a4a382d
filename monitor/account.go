package monitor

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/clock"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/monitor/signal"
)

// Account is one monitored Telegram account. It is safe for concurrent use;
// create it with Monitor.Account.
type Account struct {
	name string
	mon  *Monitor

	// Read on every RPC without taking mu.
	methods   atomic.Pointer[map[uint32]*methodMetrics] // by TL type id
	methodsMu sync.Mutex                                // serialises copy-on-write of methods
	// gen counts terminal facts (ban, dead session). A call remembers the
	// generation it started in; only a call that started after a terminal
	// fact may clear it by succeeding.
	gen atomic.Uint64
	// budgets is where SnapshotForStore gets the guard's budgets from, and
	// what the last Restore brought for the guard to continue (KeepBudgets).
	budgets struct {
		mu       sync.Mutex
		source   func() map[string][]int64
		restored map[string][]int64
	}
	// needsSuccess is set while a successful call would change the state
	// (nothing seen yet, never authorised, or banned/dead), so the success
	// path can skip mu.
	needsSuccess atomic.Bool
	// waitCount mirrors len(waits), so FloodWaitUntil (the guard asks on
	// every call) skips the lock when no method has a wait recorded.
	waitCount atomic.Int32
	// due is the unix nanoseconds of the next instant a fact expires and
	// the state may change (math.MaxInt64: none), published by every
	// evaluation, so Run refreshes only the accounts with something due.
	due atomic.Int64

	mu   sync.Mutex
	seen bool
	// authorized: the account has been seen signed in (an authorised call
	// succeeded, a probe answered, a limiting signal came, or a restored
	// snapshot says so). Until then AUTH_KEY_UNREGISTERED is a key that
	// has not signed in yet, not a dead session.
	authorized bool
	// notSignedIn is the reason shown while the only thing known is that
	// the key is not signed in yet.
	notSignedIn string
	banned      *terminal
	dead        *terminal
	frozen      *freezeFacts
	limit       *limitFacts
	waits       map[string]*methodFacts
	refusals    []time.Time
	watchUntil  time.Time
	watchReason string
	risk        map[signal.Kind]*riskAcc
	probes      probeFacts

	cur         State
	curSince    time.Time
	curUntil    time.Time
	curReason   string
	evaluatedAt time.Time
	lastSignal  *Event

	events     ring
	seq        uint64 // the last Event.Seq emitted
	pending    []Event
	delivering bool
	// cause names the probe whose answer is being applied, so that state
	// changes it causes say so (and do not request the same probe again).
	cause string
}

type methodMetrics struct {
	name     string
	requests prometheus.Counter
	duration prometheus.Observer
}

// terminal is a fact that holds until a later call proves it wrong.
type terminal struct {
	at     time.Time
	gen    uint64 // calls started in this generation or later can clear it
	reason string
}

type freezeFacts struct {
	since     time.Time
	deletion  time.Time // freeze_until_date: deleted unless appealed
	appealURL string
	reason    string
	// lastEvidence is the latest instant something said "frozen" (a
	// FROZEN_* signal, or the sending of a probe that answered frozen).
	// Only a "not frozen" answer to a request sent after it may clear
	// the freeze; an older request's answer is stale.
	lastEvidence time.Time
}

// evidence records that the account was seen frozen at t.
func (f *freezeFacts) evidence(t time.Time) {
	if t.After(f.lastEvidence) {
		f.lastEvidence = t
	}
}

type limitFacts struct {
	since, until time.Time
	permanent    bool
	untilKnown   bool
	// lastSignal is the latest PEER_FLOOD-like signal: SpamBot's "free"
	// does not lift a limit with such evidence within Policy.LimitHold.
	lastSignal time.Time
	reason     string
}

type methodFacts struct {
	since, until time.Time
	wait         time.Duration
	typ          string
	reason       string      // formatted once, when the wait is recorded
	recent       []time.Time // times of the last RepeatedWaits waits
}

func newAccount(name string, mon *Monitor) *Account {
	a := &Account{
		name:   name,
		mon:    mon,
		waits:  map[string]*methodFacts{},
		risk:   map[signal.Kind]*riskAcc{},
		events: newRing(mon.opts.EventBuffer),
	}
	now := mon.clock.Now()
	a.curSince = now
	a.evaluatedAt = now
	empty := map[uint32]*methodMetrics{}
	a.methods.Store(&empty)
	a.needsSuccess.Store(true)
	a.due.Store(math.MaxInt64) // no fact yet, nothing to expire
	return a
}

// Name returns the operator-chosen account name.
func (a *Account) Name() string { return a.name }

// methodMetrics returns the cached instruments for a request's method,
// keyed by TL type id (cheaper to hash than the name); the first call for
// a method creates them (copy-on-write, so reads never lock).
func (a *Account) methodMetrics(input bin.Encoder) *methodMetrics {
	id := methodID(input)
	if mm, ok := (*a.methods.Load())[id]; ok {
		return mm
	}
	a.methodsMu.Lock()
	defer a.methodsMu.Unlock()
	old := *a.methods.Load()
	if mm, ok := old[id]; ok {
		return mm
	}
	name := MethodName(input)
	mm := &methodMetrics{
		name:     name,
		requests: a.mon.metrics.requests.WithLabelValues(a.name, MethodLabel(name)),
		duration: a.mon.metrics.duration.WithLabelValues(MethodLabel(name)),
	}
	next := make(map[uint32]*methodMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[id] = mm
	a.methods.Store(&next)
	return mm
}

// ObserveSignal records a signal that reached the account some other way
// than its middleware: reported by an application through the daemon's
// API, or replayed from history. t is when it happened; a signal older
// than the last evaluation still counts, but state changes it causes are
// dated no earlier than that evaluation. It returns the signal event it
// emitted (false for signal.None, which is not a signal), with its Seq and
// risk, so that a caller storing the event itself stores exactly that one
// even when another signal reaches the account at the same moment.
func (a *Account) ObserveSignal(t time.Time, method string, s signal.Signal) (Event, bool) {
	if s.Kind == signal.None {
		return Event{}, false
	}
	a.countError(method, s)
	a.mu.Lock()
	ev := a.observeSignalLocked(t, method, s)
	a.mu.Unlock()
	a.flush()
	return ev, true
}

// observeError handles a failed call from the middleware.
func (a *Account) observeError(method string, t time.Time, err error) {
	s := signal.Classify(err)
	a.countError(method, s)
	if s.Kind == signal.None {
		return
	}
	a.mu.Lock()
	a.observeSignalLocked(t, method, s)
	a.mu.Unlock()
	a.flush()
}

func (a *Account) countError(method string, s signal.Signal) {
	m := a.mon.metrics
	method = MethodLabel(method) // bounded by the TL schema, whatever is reported
	m.errors.WithLabelValues(a.name, method, s.Kind.String()).Inc()
	if s.Kind == signal.None {
		return
	}
	// signals_total is counted in observeSignalLocked, which knows
	// whether the error is an adverse signal for this account.
	if s.Kind.ThrottlesMethod() {
		m.floodWait.WithLabelValues(a.name, method).Observe(s.Wait.Seconds())
	}
}

// observeSuccess handles a successful call while needsSuccess is set.
func (a *Account) observeSuccess(method string, callGen uint64, t time.Time) {
	a.mu.Lock()
	at := a.advanceLocked(t)
	a.seen = true
	if requiresAuthorization(method) {
		a.authorizedLocked()
		// A call that started after the ban or session loss and still
		// succeeded proves the account is usable again (ban reversed,
		// new login).
		if a.banned != nil && callGen >= a.banned.gen {
			a.banned = nil
		}
		if a.dead != nil && callGen >= a.dead.gen {
			a.dead = nil
		}
	}
	a.transitionLocked(at)
	a.updateNeedsSuccessLocked()
	a.mu.Unlock()
	a.flush()
}

// requiresAuthorization reports whether success of the method proves the
// session is authorised: help.getConfig and login calls succeed without.
func requiresAuthorization(method string) bool {
	for _, p := range []string{"auth.", "help.", "langpack.", "unknown"} {
		if strings.HasPrefix(method, p) {
			return false
		}
	}
	return true
}

func (a *Account) updateNeedsSuccessLocked() {
	a.needsSuccess.Store(!a.seen || !a.authorized || a.banned != nil || a.dead != nil)
}

// authorizedLocked records that the account has been seen signed in.
func (a *Account) authorizedLocked() {
	a.authorized, a.notSignedIn = true, ""
}

// SignedIn tells the account that its client runs on a session that was
// signed in before, e.g. one loaded from storage written after a
// successful login: AUTH_KEY_UNREGISTERED on it is then a dead session,
// not a key that has yet to sign in. It changes no state by itself.
func (a *Account) SignedIn() {
	a.mu.Lock()
	a.authorizedLocked()
	a.updateNeedsSuccessLocked()
	a.mu.Unlock()
}

// beforeSignIn reports whether s only says that the key is not signed in
// yet: AUTH_KEY_UNREGISTERED is what Telegram answers a fresh key before
// its first sign-in (gotd's auth status check meets it on every first
// login), so it means a dead session only once the account has been seen
// authorised. Every other session error (revoked, expired, duplicated,
// invalid key) needs a session that existed.
func (a *Account) beforeSignIn(s signal.Signal) bool {
	return !a.authorized && s.Kind == signal.SessionDead && s.Type == "AUTH_KEY_UNREGISTERED"
}

// observeSignalLocked applies s and returns the signal event it emitted.
func (a *Account) observeSignalLocked(t time.Time, method string, s signal.Signal) Event {
	at := a.advanceLocked(t)
	what := s.Type + " on " + method
	if a.beforeSignIn(s) {
		// No fact, no risk, not counted as an adverse signal; the event
		// keeps it in the history.
		a.notSignedIn = "not signed in yet: " + what + " (the account has never been seen authorised)"
		st, until, _ := a.evalLocked(at)
		ev := a.emitLocked(Event{
			Time: t, Account: a.name, Type: EventSignal, Method: method, Signal: s,
			From: a.cur, State: st, Until: until, Reason: a.notSignedIn,
		})
		a.transitionLocked(at)
		return ev
	}
	a.mon.metrics.signals.WithLabelValues(a.name, s.Kind.String()).Inc()
	p := &a.mon.policy
	a.seen = true
	switch s.Kind {
	case signal.PeerFlood, signal.Restricted, signal.BannedInChannel, signal.Frozen:
		// Only a signed-in account is limited or frozen.
		a.authorizedLocked()
	}
	if w, ok := p.Weights[s.Kind]; ok {
		acc := a.risk[s.Kind]
		if acc == nil {
			acc = &riskAcc{}
			a.risk[s.Kind] = acc
		}
		acc.add(t, w.HalfLife, w.points(s))
	}
	switch s.Kind {
	case signal.FloodWait, signal.PremiumWait:
		// Keyed by label: methods outside the schema share one entry,
		// so reported names cannot grow the map (docs/signals.md).
		f := a.waits[MethodLabel(method)]
		if f == nil {
			f = &methodFacts{}
			a.waits[MethodLabel(method)] = f
			a.waitCount.Store(int32(len(a.waits)))
		}
		end := t.Add(s.Wait)
		if !f.until.After(at) {
			f.since = t
		}
		if end.After(f.until) {
			f.until, f.wait, f.typ = end, s.Wait, s.Type
			f.reason = fmt.Sprintf("%s of %s on %s", s.Type, s.Wait, method)
		}
		f.recent = appendBounded(f.recent, t, p.RepeatedWaits)
		switch {
		case s.Wait >= p.LongWait:
			a.watchLocked(t, fmt.Sprintf("long %s of %s on %s", s.Type, s.Wait, method))
		case countSince(f.recent, t.Add(-p.RepeatWindow)) >= p.RepeatedWaits:
			a.watchLocked(t, fmt.Sprintf("%d flood waits on %s within %s", p.RepeatedWaits, method, p.RepeatWindow))
		}
	case signal.PeerFlood, signal.Restricted, signal.BannedInChannel:
		l := a.limit
		if l == nil || (!l.permanent && !l.until.After(at)) {
			l = &limitFacts{since: t}
			a.limit = l
		}
		// Within a limit whose end SpamBot stated, a PEER_FLOOD is its
		// symptom; otherwise assume the limit holds LimitHold from now.
		if end := t.Add(p.LimitHold); end.After(l.until) && !l.permanent && !l.untilKnown {
			l.until = end
		}
		// A signal reported late is evidence of the limit but not its
		// latest: the latest decides whether SpamBot's "free" may lift it.
		if !t.Before(l.lastSignal) {
			l.lastSignal = t
			l.reason = what
		}
	case signal.Frozen:
		if a.frozen == nil {
			a.frozen = &freezeFacts{since: t}
		}
		a.frozen.reason = what
		a.frozen.evidence(t)
	case signal.Banned:
		a.banned = &terminal{at: t, gen: a.gen.Add(1), reason: what}
	case signal.SessionDead, signal.Deactivated:
		a.dead = &terminal{at: t, gen: a.gen.Add(1), reason: what}
	case signal.LoginFlood, signal.APIIDFlood, signal.TwoFAReset:
		a.watchLocked(t, what)
	case signal.PeerRefused:
		a.refusals = appendBounded(a.refusals, t, p.PeerRefusals)
		if countSince(a.refusals, t.Add(-p.RepeatWindow)) >= p.PeerRefusals {
			a.watchLocked(t, fmt.Sprintf("%d peer refusals within %s", p.PeerRefusals, p.RepeatWindow))
		}
	}
	a.updateNeedsSuccessLocked()

	st, until, _ := a.evalLocked(at)
	ev := Event{
		Time: t, Account: a.name, Type: EventSignal, Method: method, Signal: s,
		From: a.cur, State: st, Until: until, Reason: what,
	}
	ev = a.emitLocked(ev)
	a.lastSignal = &ev
	a.transitionLocked(at)
	if ce := a.mon.log.Check(zap.DebugLevel, "Signal"); ce != nil {
		ce.Write(zap.String("account", a.name), zap.String("method", method),
			zap.Stringer("kind", s.Kind), zap.String("type", s.Type), zap.Duration("wait", s.Wait))
	}
	return ev
}

// watchLocked records a watch reason seen at t. The reason shown is the
// one that holds longest, i.e. the latest: a signal reported late does
// not replace a newer reason.
func (a *Account) watchLocked(t time.Time, reason string) {
	if end := t.Add(a.mon.policy.WatchFor); !end.Before(a.watchUntil) {
		a.watchUntil = end
		a.watchReason = reason
	}
}

// evalLocked derives the state at t from the facts; it changes nothing.
func (a *Account) evalLocked(t time.Time) (State, time.Time, string) {
	switch {
	case a.banned != nil:
		return Banned, time.Time{}, a.banned.reason
	case a.dead != nil:
		return Dead, time.Time{}, a.dead.reason
	case a.frozen != nil:
		// A freeze has no end date: it lasts until an appeal succeeds.
		// Its deletion date is Freeze.DeletionDate, not the state's end.
		return Frozen, time.Time{}, a.frozen.reason
	case a.limit != nil && (a.limit.permanent || a.limit.until.After(t)):
		if a.limit.permanent {
			return Limited, time.Time{}, a.limit.reason
		}
		return Limited, a.limit.until, a.limit.reason
	}
	var (
		until  time.Time
		reason string
	)
	for _, f := range a.waits {
		if f.until.After(t) && f.until.After(until) {
			until, reason = f.until, f.reason
		}
	}
	switch {
	case !until.IsZero():
		return Throttled, until, reason
	case a.watchUntil.After(t):
		return Watch, a.watchUntil, a.watchReason
	case a.spamBotFailedLocked():
		return Unknown, time.Time{}, spamBotFailedReason
	case a.notSignedIn != "":
		return Unknown, time.Time{}, a.notSignedIn
	case a.seen:
		return OK, time.Time{}, ""
	}
	return Unknown, time.Time{}, ""
}

// nextDeadlineLocked returns the first instant after t at which a fact
// expires and the state may change.
func (a *Account) nextDeadlineLocked(t time.Time) (time.Time, bool) {
	var next time.Time
	consider := func(d time.Time) {
		if d.After(t) && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	for _, f := range a.waits {
		consider(f.until)
	}
	if a.limit != nil && !a.limit.permanent {
		consider(a.limit.until)
	}
	consider(a.watchUntil)
	return next, !next.IsZero()
}

// advanceLocked replays every expiry between the last evaluation and t, so
// that each transition is recorded at the instant it happened however late
// the account is looked at. It returns the time to evaluate at: t, or the
// last evaluation when t is older.
func (a *Account) advanceLocked(t time.Time) time.Time {
	if t.Before(a.evaluatedAt) {
		return a.evaluatedAt
	}
	from := a.evaluatedAt
	for {
		d, ok := a.nextDeadlineLocked(from)
		if !ok || d.After(t) {
			break
		}
		a.transitionLocked(d)
		from = d
	}
	a.transitionLocked(t)
	a.evaluatedAt = t
	a.pruneLocked(t)
	return t
}

// pruneLocked forgets facts that can no longer matter at t.
func (a *Account) pruneLocked(t time.Time) {
	horizon := t.Add(-a.mon.policy.RepeatWindow)
	for m, f := range a.waits {
		if !f.until.After(t) && countSince(f.recent, horizon) == 0 {
			delete(a.waits, m)
		}
	}
	a.waitCount.Store(int32(len(a.waits)))
	if a.limit != nil && !a.limit.permanent && !a.limit.until.After(t) {
		a.limit = nil
	}
}

// transitionLocked re-evaluates at t and records a state change if any.
// Every change of the facts ends here, so it also publishes when the
// account is next due for a refresh.
func (a *Account) transitionLocked(t time.Time) {
	if d, ok := a.nextDeadlineLocked(t); ok {
		a.due.Store(d.UnixNano())
	} else {
		a.due.Store(math.MaxInt64)
	}
	st, until, reason := a.evalLocked(t)
	a.curUntil, a.curReason = until, reason
	if st == a.cur {
		return
	}
	from := a.cur
	a.cur, a.curSince = st, t
	a.emitLocked(Event{
		Time: t, Account: a.name, Type: EventState, Probe: a.cause,
		From: from, State: st, Until: until, Reason: reason,
	})
	lvl := zap.InfoLevel
	if st >= Limited {
		lvl = zap.WarnLevel
	}
	if ce := a.mon.log.Check(lvl, "Account state changed"); ce != nil {
		ce.Write(zap.String("account", a.name), zap.Stringer("from", from),
			zap.Stringer("to", st), zap.String("reason", reason), zap.Time("at", t))
	}
}

// emitLocked sets the event's risk, queues it and returns it as queued.
func (a *Account) emitLocked(ev Event) Event {
	a.seq++
	ev.Seq = a.seq
	ev.Risk = a.riskLocked(ev.Time, ev.State)
	a.events.add(ev)
	a.pending = append(a.pending, ev)
	return ev
}

func (a *Account) riskLocked(t time.Time, st State) float64 {
	p := &a.mon.policy
	raw := 0.0
	for k, acc := range a.risk {
		raw += acc.valueAt(t, p.Weights[k].HalfLife)
	}
	return p.score(raw, st)
}

// flush delivers pending events to the sink and to subscribers, outside mu
// and in order. Whoever finds delivery idle delivers everything queued,
// including events queued meanwhile by other goroutines or by a subscriber
// that observes into the same account.
func (a *Account) flush() {
	a.mu.Lock()
	if a.delivering {
		a.mu.Unlock()
		return
	}
	a.delivering = true
	for len(a.pending) > 0 {
		batch := a.pending
		a.pending = nil
		a.mu.Unlock()
		for _, ev := range batch {
			a.mon.deliver(ev)
		}
		a.mu.Lock()
	}
	a.delivering = false
	a.mu.Unlock()
}

// Refresh brings the account's state up to the clock's current time,
// recording expiries (end of a flood wait, of a limit, of a watch) as
// state changes. Snapshot and the Monitor's refresh loop call it.
func (a *Account) Refresh() {
	a.mu.Lock()
	a.advanceLocked(a.mon.clock.Now())
	a.mu.Unlock()
	a.flush()
}

// Snapshot is an account's state at one instant.
type Snapshot struct {
	Account string `json:"account"`
	State   State  `json:"state"`
	// Since is when the current state was entered.
	Since time.Time `json:"since"`
	// Until is when the current state is expected to end, if known.
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
	Risk   float64   `json:"risk"`
	// FloodWaits are the active waits, by method label (MethodLabel:
	// methods outside the TL schema share "other").
	FloodWaits []FloodWait `json:"flood_waits"`
	Limit      Limit       `json:"limit"`
	Freeze     Freeze      `json:"freeze"`
	LastSignal *Event      `json:"last_signal,omitempty"`
	// SpamBot is the last SpamBot answer, if any probe asked.
	SpamBot *SpamBotStatus `json:"spambot,omitempty"`
	// Probes are the runs of each probe kind, by kind (ProbeSpamBot, ...).
	Probes map[string]ProbeRun `json:"probes,omitempty"`
	// RiskInputs are the decaying accumulators behind Risk, so that a
	// restored account scores exactly as before (see Restore).
	RiskInputs []RiskInput `json:"risk_inputs,omitempty"`
	// Authorized is true once the account has been seen signed in; from
	// then on AUTH_KEY_UNREGISTERED means a dead session (docs/signals.md).
	Authorized bool `json:"authorized"`
	// At is the instant the snapshot describes.
	At time.Time `json:"at"`
	// Seq is the last event (Event.Seq) the snapshot reflects: events of
	// the account with a higher Seq happened after it. 0 in snapshots
	// saved before Seq existed.
	Seq uint64 `json:"seq,omitempty"`
	// Budgets are the calls the account's guard counted against each
	// action's limits (action name -> Unix nanoseconds, oldest first),
	// within the longest window those limits look at. Only stored
	// snapshots carry them (SnapshotForStore): a restarted daemon, or the
	// replica that takes the account over, continues the budgets instead
	// of starting them empty, which would let the account make up to
	// twice its limits around every restart or failover.
	Budgets map[string][]int64 `json:"budgets,omitempty"`
}

// FloodWait is an active wait on one method.
type FloodWait struct {
	Method string        `json:"method"`
	Type   string        `json:"type"`
	Wait   time.Duration `json:"wait"`
	Since  time.Time     `json:"since"`
	Until  time.Time     `json:"until"`
}

// Limit describes a limitation (mutual contacts only).
type Limit struct {
	Active    bool      `json:"active"`
	Since     time.Time `json:"since,omitzero"`
	Until     time.Time `json:"until,omitzero"`
	Permanent bool      `json:"permanent,omitempty"`
	// UntilKnown is false when Until is assumed (PEER_FLOOD says nothing
	// about its length) rather than stated by Telegram.
	UntilKnown bool `json:"until_known,omitempty"`
	// LastSignal is the latest PEER_FLOOD-like signal, however late it
	// was reported: SpamBot's "free" does not lift a limit with such a
	// signal within Policy.LimitHold before the probe.
	LastSignal time.Time `json:"last_signal,omitzero"`
	Reason     string    `json:"reason,omitempty"`
}

// Freeze describes a frozen account.
type Freeze struct {
	Active bool      `json:"active"`
	Since  time.Time `json:"since,omitzero"`
	// DeletionDate is when the account will be deleted unless an appeal
	// succeeds (freeze_until_date). The freeze itself has no end date.
	DeletionDate time.Time `json:"deletion_date,omitzero"`
	AppealURL    string    `json:"appeal_url,omitempty"`
}

// Snapshot returns the account's state now.
func (a *Account) Snapshot() Snapshot {
	a.mu.Lock()
	now := a.advanceLocked(a.mon.clock.Now())
	s := Snapshot{
		Account: a.name, State: a.cur, Since: a.curSince, Until: a.curUntil,
		Reason: a.curReason, Risk: a.riskLocked(now, a.cur), At: now, Seq: a.seq,
		FloodWaits: []FloodWait{},
	}
	for m, f := range a.waits {
		if f.until.After(now) {
			s.FloodWaits = append(s.FloodWaits, FloodWait{Method: m, Type: f.typ, Wait: f.wait, Since: f.since, Until: f.until})
		}
	}
	sort.Slice(s.FloodWaits, func(i, j int) bool { return s.FloodWaits[i].Method < s.FloodWaits[j].Method })
	if l := a.limit; l != nil && (l.permanent || l.until.After(now)) {
		s.Limit = Limit{Active: true, Since: l.since, Until: l.until, Permanent: l.permanent, UntilKnown: l.untilKnown,
			LastSignal: l.lastSignal, Reason: l.reason}
	}
	if f := a.frozen; f != nil {
		s.Freeze = Freeze{Active: true, Since: f.since, DeletionDate: f.deletion, AppealURL: f.appealURL}
	}
	if a.lastSignal != nil {
		ev := *a.lastSignal
		s.LastSignal = &ev
	}
	if sb := a.probes.spamBot; sb != nil {
		cp := *sb
		s.SpamBot = &cp
	}
	if len(a.probes.runs) > 0 {
		s.Probes = make(map[string]ProbeRun, len(a.probes.runs))
		for k, r := range a.probes.runs {
			s.Probes[k] = r
		}
	}
	s.Authorized = a.authorized
	s.RiskInputs = a.riskInputsLocked()
	a.mu.Unlock()
	a.flush()
	return s
}

// SnapshotForStore is Snapshot with the guard's budgets (Snapshot.Budgets):
// what the daemon stores. Views of the account use Snapshot, which does not
// copy them.
func (a *Account) SnapshotForStore() Snapshot {
	s := a.Snapshot()
	a.budgets.mu.Lock()
	source := a.budgets.source
	a.budgets.mu.Unlock()
	if source != nil {
		s.Budgets = source()
	}
	return s
}

// KeepBudgets is how the account's guard takes part in its snapshots:
// source gives the budgets SnapshotForStore stores (it must not call back
// into the account's locks). It returns the budgets to continue: those of
// the guard it replaces, when there was one, or else those the last
// Restore brought.
func (a *Account) KeepBudgets(source func() map[string][]int64) map[string][]int64 {
	a.budgets.mu.Lock()
	prev, restored := a.budgets.source, a.budgets.restored
	a.budgets.source, a.budgets.restored = source, nil
	a.budgets.mu.Unlock()
	if prev != nil {
		return prev()
	}
	return restored
}

// Events returns the most recent events, oldest first (at most
// Options.EventBuffer of them).
func (a *Account) Events() []Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.events.list()
}

func appendBounded(ts []time.Time, t time.Time, n int) []time.Time {
	ts = append(ts, t)
	if len(ts) > n {
		ts = append(ts[:0], ts[len(ts)-n:]...)
	}
	return ts
}

func countSince(ts []time.Time, from time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.Before(from) {
			n++
		}
	}
	return n
}

// Restricted reports, for the guard, whether the account is limited
// (mutual contacts only) or frozen at now. It takes the account's lock
// briefly and does not allocate.
func (a *Account) Restricted(now time.Time) (limited, frozen bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.limit
	limited = l != nil && (l.permanent || l.until.After(now))
	return limited, a.frozen != nil
}

// FloodWaitUntil returns when the active flood wait on method ends, or the
// zero time when there is none.
func (a *Account) FloodWaitUntil(method string, now time.Time) time.Time {
	if a.waitCount.Load() == 0 {
		return time.Time{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.waits[MethodLabel(method)]; f != nil && f.until.After(now) {
		return f.until
	}
	return time.Time{}
}

// Clock returns the clock the account's monitor reads, so that components
// built on an account (guard, probes) share its time.
func (a *Account) Clock() clock.Clock { return a.mon.clock }
