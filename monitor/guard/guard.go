package guard

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/clock"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/limits"
)

// Mode says whether the guard refuses calls or only reports them, so that
// an operator can watch what a guard would do before letting it act.
type Mode uint8

// The modes. The zero value is Enforce, so a guard configured without a
// mode protects the account.
const (
	// Enforce refuses a call that would break a budget or reach Telegram
	// while it is known to refuse it, with a *BlockedError.
	Enforce Mode = iota
	// Observe never refuses or delays a call: it counts and logs what
	// Enforce would have refused.
	Observe
)

// String returns "enforce" or "observe", the names ParseMode accepts.
func (m Mode) String() string {
	switch m {
	case Enforce:
		return "enforce"
	case Observe:
		return "observe"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode reads a mode from configuration or a command line.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "enforce":
		return Enforce, nil
	case "observe":
		return Observe, nil
	}
	return Enforce, fmt.Errorf("guard: unknown mode %q (enforce or observe)", s)
}

// MarshalText writes the mode's name, so configuration and API output
// read "enforce"/"observe" rather than a number.
func (m Mode) MarshalText() ([]byte, error) {
	if m > Observe {
		return nil, fmt.Errorf("guard: invalid mode %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText reads a mode name, so Mode can sit in YAML or JSON config.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Reason says why a call was refused; its String form is the reason label
// of tgsafety_guard_blocked_total, so the names are part of the interface.
type Reason uint8

// The reasons, in the order the guard checks them.
const (
	// ReasonFrozen: the account is frozen and the call writes; only
	// SpamBot stays reachable.
	ReasonFrozen Reason = iota + 1
	// ReasonLimited: the account is limited to mutual contacts and the
	// call reaches strangers (a cold DM, an invite).
	ReasonLimited
	// ReasonFloodWait: Telegram imposed a wait on the method that has not
	// ended; calling again now would only prolong it.
	ReasonFloodWait
	// ReasonBudget: the call would exceed the profile's limit (scaled by
	// the margin) for its action.
	ReasonBudget
)

// String returns the label value: "budget", "limited", "frozen" or
// "flood_wait".
func (r Reason) String() string {
	switch r {
	case ReasonBudget:
		return "budget"
	case ReasonLimited:
		return "limited"
	case ReasonFrozen:
		return "frozen"
	case ReasonFloodWait:
		return "flood_wait"
	}
	return "unknown"
}

// MarshalText writes the reason's label value, for JSON in the API.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Reasons returns every reason, so exporters and docs can list them.
func Reasons() []Reason { return []Reason{ReasonBudget, ReasonLimited, ReasonFrozen, ReasonFloodWait} }

// DefaultMargin is the fraction of each profile limit the guard allows
// when Options.Margin is zero: the profile's numbers are estimates, and
// stopping at 80% leaves room for what the guard cannot see (other
// devices, other apps on the same account).
const DefaultMargin = 0.8

// Options configures a Guard. The zero value is usable.
type Options struct {
	// Profile holds the budgets. Nil means limits.Default().
	Profile *limits.Profile
	// Margin is the fraction of each profile limit the guard allows, in
	// (0, 1]. Zero means DefaultMargin.
	Margin float64
	// Mode is Enforce (the zero value) or Observe.
	Mode Mode
	// MaxWait lets a call wait (on the account's clock) for an active
	// flood wait on its method that ends within MaxWait, instead of being
	// refused. Zero fails fast.
	MaxWait time.Duration
	// Created is when the account was registered, for the profile's
	// stricter young-account limits. Zero treats the account as young.
	Created time.Time
	// Registerer receives the guard's collectors. Nil keeps the metrics
	// unregistered. Several guards may share one registerer, one per
	// account name.
	Registerer prometheus.Registerer
	// Logger receives refusals (info). Nil means zap.NewNop.
	Logger *zap.Logger
}

func (o *Options) setDefaults() {
	if o.Profile == nil {
		o.Profile = limits.Default()
	}
	if o.Margin == 0 {
		o.Margin = DefaultMargin
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

func (o *Options) validate() error {
	if !(o.Margin > 0 && o.Margin <= 1) {
		return fmt.Errorf("guard: Options.Margin must be in (0, 1], got %v", o.Margin)
	}
	if o.Mode > Observe {
		return fmt.Errorf("guard: Options.Mode: invalid mode %d (Enforce or Observe)", uint8(o.Mode))
	}
	if o.MaxWait < 0 {
		return fmt.Errorf("guard: Options.MaxWait must not be negative, got %s", o.MaxWait)
	}
	if err := o.Profile.Validate(); err != nil {
		return fmt.Errorf("guard: Options.Profile: %w", err)
	}
	return nil
}

// budget is one action's limits after the margin.
type budget struct {
	action limits.Action
	adult  []limits.Limit
	young  []limits.Limit // adult when the profile has no young limits
	keep   limits.Keep    // the history Tracker.Record needs
	series *limits.Series // this action's history in the tracker: no lookup by name per call
}

// Guard keeps one account inside its budgets. It is safe for concurrent
// use; create it with New and install Middleware on the account's client.
type Guard struct {
	acct    *monitor.Account
	name    string
	clk     clock.Clock
	log     *zap.Logger
	mode    Mode
	maxWait time.Duration

	young      bool      // Created unknown: always young
	youngUntil time.Time // Created + YoungAccountAge

	budgets [actCount]*budget // nil: the profile does not budget the action
	all     []*budget         // every action of the profile, sorted by name

	metrics *metrics

	mu       sync.Mutex
	tracker  *limits.Tracker
	inflight [actCount]int // actions admitted whose calls have not returned
	last     time.Time     // latest time recorded, so records stay ordered
	peers    map[int64]peerFlags
}

// New creates the guard of an account. Options are validated; an error
// names the offending field.
func New(acct *monitor.Account, opts Options) (*Guard, error) {
	if acct == nil {
		return nil, fmt.Errorf("guard: account is nil")
	}
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	scaled := opts.Profile.Scaled(opts.Margin)
	g := &Guard{
		acct:    acct,
		name:    acct.Name(),
		clk:     acct.Clock(),
		log:     opts.Logger,
		mode:    opts.Mode,
		maxWait: opts.MaxWait,
		young:   opts.Created.IsZero(),
		tracker: limits.NewTracker(),
		peers:   map[int64]peerFlags{},
	}
	if !g.young {
		g.youngUntil = opts.Created.Add(scaled.YoungAccountAge.D())
	}
	byName := map[limits.Action]*budget{}
	for _, a := range scaled.ActionNames() {
		ap := scaled.Actions[a]
		b := &budget{action: a, adult: ap.Limits, young: ap.Limits, keep: limits.KeepFor(ap.Limits, ap.Young),
			series: g.tracker.Series(a)}
		if len(ap.Young) > 0 {
			b.young = ap.Young
		}
		byName[a] = b
		g.all = append(g.all, b)
	}
	for i, name := range actNames {
		if name != "" {
			g.budgets[i] = byName[name]
		}
	}
	m, err := newMetrics(opts.Registerer, g)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	// Continue the budgets the account's stored snapshot (or the guard
	// this one replaces) counted: a restart or a hand-over to another
	// replica must not give the account its whole budget again.
	now := g.clk.Now()
	for action, times := range acct.KeepBudgets(g.budgetTimes) {
		if b := byName[limits.Action(action)]; b != nil {
			b.series.Restore(times, now, b.keep)
			if n := len(times); n > 0 && times[n-1] <= now.UnixNano() {
				if t := time.Unix(0, times[n-1]); t.After(g.last) {
					g.last = t
				}
			}
		}
	}
	return g, nil
}

// budgetTimes is the guard's part of its account's stored snapshots
// (monitor.Snapshot.Budgets): every budgeted action's counted calls that
// its limits still look at.
func (g *Guard) budgetTimes() map[string][]int64 {
	now := g.clk.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var out map[string][]int64
	for _, b := range g.all {
		if ts := b.series.Times(now, b.keep); len(ts) > 0 {
			if out == nil {
				out = map[string][]int64{}
			}
			out[string(b.action)] = ts
		}
	}
	return out
}

// Close stops exporting the guard's series (when its account is no longer
// guarded, e.g. after monitor.Remove), so that the account name can be
// guarded again on the same registerer. The middleware keeps working.
func (g *Guard) Close() { g.metrics.close(g) }

// limitsFor returns the limits that apply to b at now.
func (g *Guard) limitsFor(b *budget, now time.Time) []limits.Limit {
	if g.young || now.Before(g.youngUntil) {
		return b.young
	}
	return b.adult
}

// Middleware returns the telegram.Middleware that applies the guard to
// every call. Install it outside (before) the account's monitor
// middleware, so that refused calls, which never reach Telegram, are not
// counted as RPCs.
func (g *Guard) Middleware() telegram.Middleware { return middleware{g} }

type middleware struct{ g *Guard }

func (mw middleware) Handle(next tg.Invoker) telegram.InvokeFunc {
	g := mw.g
	return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
		r := classify(input)
		switch r.kind {
		case reqSpamBot:
		case reqPass:
			if err := g.passFloodWait(ctx, r.method); err != nil {
				return err
			}
		default:
			return g.invoke(ctx, next, &r, input, output)
		}
		err := next.Invoke(ctx, input, output)
		if err == nil {
			var s sources
			s.fromResult(output)
			g.learn(&s)
		}
		return err
	}
}

// verdict is the outcome of the checks, kept on the stack; a BlockedError
// is built from it only when a call is refused.
type verdict struct {
	reason Reason // 0: allowed
	action act
	limit  limits.Limit
	n      int
	until  time.Time
}

// passFloodWait applies an active flood wait to a call the guard does not
// budget. The common case costs one short critical section of the account
// and no clock read: FloodWaitUntil at the zero time returns every wait
// the account still remembers (active or recently expired), and only then
// is the clock read to see whether it is active.
func (g *Guard) passFloodWait(ctx context.Context, method string) error {
	var deadline time.Time
	for {
		until := g.acct.FloodWaitUntil(method, time.Time{})
		if until.IsZero() {
			return nil
		}
		now := g.clk.Now()
		if !until.After(now) {
			return nil
		}
		if deadline.IsZero() {
			deadline = now.Add(g.maxWait)
		}
		waitable := g.maxWait > 0 && !until.After(deadline)
		switch {
		case g.mode == Observe:
			if !waitable {
				_ = g.refuse(method, verdict{reason: ReasonFloodWait, until: until}, now)
			}
			return nil
		case !waitable:
			return g.refuse(method, verdict{reason: ReasonFloodWait, until: until}, now)
		}
		if err := g.sleep(ctx, method, until.Sub(now)); err != nil {
			return err
		}
	}
}

// invoke runs a call that spends budget: checks, then the call, then the
// record.
func (g *Guard) invoke(ctx context.Context, next tg.Invoker, r *request, input bin.Encoder, output bin.Decoder) error {
	var (
		p        plan
		deadline time.Time
	)
	for {
		now := g.clk.Now()
		if deadline.IsZero() {
			deadline = now.Add(g.maxWait)
		}
		limited, frozen := g.acct.Restricted(now)
		wait := g.acct.FloodWaitUntil(r.method, now)

		g.mu.Lock()
		p = g.planLocked(r)
		var v verdict
		switch {
		case frozen && p.write:
			v = verdict{reason: ReasonFrozen}
		case limited && p.stranger != actNone:
			v = verdict{reason: ReasonLimited, action: p.stranger}
		case wait.After(now):
			v = verdict{reason: ReasonFloodWait, until: wait}
		default:
			v = g.checkLocked(&p, now)
		}
		waitable := v.reason == ReasonFloodWait && g.maxWait > 0 && !wait.After(deadline)
		if v.reason == 0 || g.mode == Observe {
			for _, u := range p.uses[:p.k] {
				g.inflight[u.a] += u.n
			}
			g.mu.Unlock()
			if v.reason != 0 && !waitable {
				// Observe: counted and logged, never refused or delayed.
				_ = g.refuse(r.method, v, now)
			}
			break
		}
		g.mu.Unlock()
		if waitable {
			if err := g.sleep(ctx, r.method, wait.Sub(now)); err != nil {
				return err
			}
			continue // the account may have changed while waiting
		}
		return g.refuse(r.method, v, now)
	}
	return g.call(ctx, next, &p, input, output)
}

// checkLocked checks every action of the plan against its budget,
// counting the calls already admitted and still running, so concurrent
// calls cannot overshoot together.
func (g *Guard) checkLocked(p *plan, now time.Time) verdict {
	for _, u := range p.uses[:p.k] {
		b := g.budgets[u.a]
		if b == nil {
			continue
		}
		ls := g.limitsFor(b, now)
		res := b.series.Check(now, ls, u.n+g.inflight[u.a])
		if !res.Allowed {
			v := verdict{reason: ReasonBudget, action: u.a, limit: res.Limit, n: u.n}
			if res.Retry.After(now) {
				v.until = res.Retry
			}
			return v
		}
	}
	return verdict{}
}

// call invokes next and settles the admitted actions: released in any
// case, recorded only when the call succeeded. A failed call is not
// counted: an RPC error (FLOOD_WAIT, PEER_FLOOD, ...) means Telegram did
// not perform it; see the package documentation for the other failures.
func (g *Guard) call(ctx context.Context, next tg.Invoker, p *plan, input bin.Encoder, output bin.Decoder) (err error) {
	ok := false
	defer func() { g.settle(p, ok) }()
	err = next.Invoke(ctx, input, output)
	ok = err == nil
	if ok {
		var s sources
		s.fromResult(output)
		g.learn(&s)
	}
	return err
}

func (g *Guard) settle(p *plan, ok bool) {
	var now time.Time
	if ok {
		now = g.clk.Now()
	}
	g.mu.Lock()
	if ok && now.Before(g.last) {
		now = g.last // the tracker needs times in order
	}
	for _, u := range p.uses[:p.k] {
		g.inflight[u.a] -= u.n
		if b := g.budgets[u.a]; ok && b != nil {
			b.series.Record(now, u.n, b.keep)
			g.last = now
		}
	}
	g.mu.Unlock()
}

// sleep waits d on the account's clock, or until ctx ends.
func (g *Guard) sleep(ctx context.Context, method string, d time.Duration) error {
	if ce := g.log.Check(zap.DebugLevel, "Waiting for flood wait"); ce != nil {
		ce.Write(zap.String("account", g.name), zap.String("method", method), zap.Duration("wait", d))
	}
	t := g.clk.Timer(d)
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		clock.StopTimer(t)
		return fmt.Errorf("guard: waiting for the flood wait on %s: %w", method, ctx.Err())
	}
}

// refuse counts and logs a refusal and returns its error. In observe mode
// the caller ignores the error: the call proceeds.
func (g *Guard) refuse(method string, v verdict, now time.Time) error {
	e := &BlockedError{
		Account: g.name, Method: method, Reason: v.reason,
		Limit: v.limit, Count: v.n, Until: v.until,
	}
	if v.action != actNone {
		e.Action = actNames[v.action]
	}
	if v.reason == ReasonLimited {
		if l := g.acct.Snapshot().Limit; l.Active && !l.Permanent {
			e.Until = l.Until
		}
	}
	g.metrics.blocked.WithLabelValues(g.name, monitor.MethodLabel(method), v.reason.String()).Inc()
	msg := "Call blocked"
	if g.mode == Observe {
		msg = "Call would be blocked (observe mode)"
	}
	if ce := g.log.Check(zap.InfoLevel, msg); ce != nil {
		fields := []zap.Field{
			zap.String("account", g.name), zap.String("method", method),
			zap.Stringer("reason", v.reason),
		}
		if e.Action != "" {
			fields = append(fields, zap.String("action", string(e.Action)))
		}
		if v.reason == ReasonBudget {
			fields = append(fields, zap.Int("limit_max", e.Limit.Max), zap.Stringer("limit_window", e.Limit.Window))
		}
		if !e.Until.IsZero() {
			fields = append(fields, zap.Time("until", e.Until), zap.Duration("in", e.Until.Sub(now)))
		}
		ce.Write(fields...)
	}
	return e
}

// BlockedError is returned, in Enforce mode, instead of calling Telegram:
// the call would have spent budget the account does not have, or reached
// Telegram while it is known to refuse it (and to punish retries).
// Retrying before Until is refused again.
type BlockedError struct {
	// Account is the operator-chosen account name (never a phone number).
	Account string
	// Method is the TL method name, e.g. "messages.sendMessage".
	Method string
	// Reason says which check refused the call; callers branch on it
	// (wait for Until, stop writing to strangers, appeal to SpamBot).
	Reason Reason
	// Action is the budget (Reason budget) or the stranger-reaching
	// action (Reason limited).
	Action limits.Action
	// Limit is the limit, after the margin, that the call would exceed
	// (Reason budget).
	Limit limits.Limit
	// Count is how many actions the call would spend (Reason budget).
	Count int
	// Until is when the call could pass: the budget frees up, the flood
	// wait or the limitation ends. Zero when unknown.
	Until time.Time
}

// Error describes the refusal with the account's operator-chosen name and
// the method, never with phone numbers, usernames or message text.
func (e *BlockedError) Error() string {
	var b strings.Builder
	b.WriteString("guard: ")
	b.WriteString(e.Method)
	b.WriteString(" blocked for account ")
	b.WriteString(strconv.Quote(e.Account))
	b.WriteString(": ")
	switch e.Reason {
	case ReasonBudget:
		fmt.Fprintf(&b, "budget %s (%d per %s)", e.Action, e.Limit.Max, e.Limit.Window)
		if e.Count > e.Limit.Max {
			fmt.Fprintf(&b, " cannot take %d at once", e.Count)
			return b.String()
		}
		b.WriteString(" exhausted")
	case ReasonLimited:
		b.WriteString("account is limited to mutual contacts")
		if e.Action != "" {
			fmt.Fprintf(&b, " (%s)", e.Action)
		}
	case ReasonFrozen:
		b.WriteString("account is frozen; only SpamBot is reachable")
	case ReasonFloodWait:
		b.WriteString("flood wait")
	default:
		b.WriteString(e.Reason.String())
	}
	if !e.Until.IsZero() {
		b.WriteString(" until ")
		b.WriteString(e.Until.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// Observe feeds the guard an incoming update, so it learns who wrote
// first (a limited account may answer them) and contact flags carried by
// users in updates. Wrap the client's UpdateHandler with Handler, or call
// it from yours.
func (g *Guard) Observe(_ context.Context, u tg.UpdatesClass) {
	var s sources
	s.fromUpdates(u)
	g.learn(&s)
}

// Handler wraps an update handler so that every update passes through
// Observe first.
func (g *Guard) Handler(next telegram.UpdateHandler) telegram.UpdateHandler {
	return telegram.UpdateHandlerFunc(func(ctx context.Context, u tg.UpdatesClass) error {
		g.Observe(ctx, u)
		if next == nil {
			return nil
		}
		return next.Handle(ctx, u)
	})
}

// Used returns, for every action of the profile, the highest fraction used
// among its limits after the margin (0 to 1, more when other clients
// overspent): 1 means the guard refuses the next one. The API and tests
// read it; tgsafety_budget_used_ratio exports it.
func (g *Guard) Used() map[limits.Action]float64 {
	now := g.clk.Now()
	out := make(map[limits.Action]float64, len(g.all))
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.all {
		out[b.action] = g.usedLocked(b, now)
	}
	return out
}

func (g *Guard) usedLocked(b *budget, now time.Time) float64 {
	hi := 0.0
	for _, f := range b.series.Used(now, g.limitsFor(b, now)) {
		hi = math.Max(hi, f)
	}
	return hi
}
