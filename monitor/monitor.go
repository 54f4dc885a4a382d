package monitor

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gotd/td/clock"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/monitor/phone"
)

// Options configures a Monitor. The zero value is usable.
type Options struct {
	// Clock is the time source. Defaults to clock.System.
	Clock clock.Clock
	// Logger receives state changes (info/warn) and signals (debug).
	// Defaults to zap.NewNop.
	Logger *zap.Logger
	// Registerer receives the monitor's collectors. Nil means the metrics
	// are kept but not registered anywhere.
	Registerer prometheus.Registerer
	// Sink receives every event. Nil discards them (the per-account ring
	// still keeps the recent ones).
	Sink Sink
	// Policy tunes the state machine and the risk score. Nil means
	// DefaultPolicy().
	Policy *Policy
	// EventBuffer is how many recent events each account keeps in memory.
	// Defaults to 256.
	EventBuffer int
	// RefreshInterval is how often Run re-evaluates every account so that
	// expiries are noticed without traffic. Defaults to 1 s.
	RefreshInterval time.Duration
}

func (o *Options) setDefaults() {
	if o.Clock == nil {
		o.Clock = clock.System
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 256
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = time.Second
	}
}

// Monitor holds the monitored accounts and exports them.
type Monitor struct {
	opts    Options
	clock   clock.Clock
	log     *zap.Logger
	policy  Policy
	metrics *metrics

	mu       sync.RWMutex
	accounts map[string]*Account

	subMu sync.RWMutex
	// subs are the subscribers by account, "" for every account: a
	// runner and a probe scheduler per account, each called for every
	// state change of 3,000, were 5% of a large demo's CPU.
	subs    map[string]map[int]func(Event)
	nextSub int
}

// New creates a Monitor and registers its collectors.
func New(opts Options) (*Monitor, error) {
	opts.setDefaults()
	policy := DefaultPolicy()
	if opts.Policy != nil {
		policy = *opts.Policy
	}
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	m := &Monitor{
		opts:     opts,
		clock:    opts.Clock,
		log:      opts.Logger,
		policy:   policy,
		metrics:  newMetrics(),
		accounts: map[string]*Account{},
		subs:     map[string]map[int]func(Event){},
	}
	if opts.Registerer != nil {
		for _, c := range append(m.metrics.collectors(), accountCollector{m}) {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register monitor metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Account returns the account with the given name, creating it on first
// use. The name appears in metric labels, logs and the API, so it must be
// an operator-chosen name and never a phone number; ValidateName says what
// is accepted.
func (m *Monitor) Account(name string) (*Account, error) {
	m.mu.RLock()
	a, ok := m.accounts[name]
	m.mu.RUnlock()
	if ok {
		return a, nil
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.accounts[name]; ok {
		return a, nil
	}
	a = newAccount(name, m)
	m.accounts[name] = a
	return a, nil
}

// Lookup returns an existing account.
func (m *Monitor) Lookup(name string) (*Account, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, ok := m.accounts[name]
	return a, ok
}

// Remove stops monitoring an account and drops its metric series. Its
// middleware keeps working but reports into a detached account.
func (m *Monitor) Remove(name string) bool {
	m.mu.Lock()
	_, ok := m.accounts[name]
	delete(m.accounts, name)
	m.mu.Unlock()
	if ok {
		m.metrics.forget(name)
	}
	return ok
}

// Accounts returns the monitored accounts sorted by name.
func (m *Monitor) Accounts() []*Account {
	m.mu.RLock()
	out := make([]*Account, 0, len(m.accounts))
	for _, a := range m.accounts {
		out = append(out, a)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Subscribe calls fn for every state change of every account, in order per
// account, until the returned function is called. fn runs on the goroutine
// that caused the change (often an RPC call): it must not block.
func (m *Monitor) Subscribe(fn func(Event)) (cancel func()) { return m.subscribe("", fn) }

// SubscribeAccount is Subscribe for the state changes of one account:
// what a per-account watcher wants, at a cost that does not grow with
// the fleet. An empty name (no account has it) subscribes to nothing.
func (m *Monitor) SubscribeAccount(name string, fn func(Event)) (cancel func()) {
	if name == "" {
		return func() {}
	}
	return m.subscribe(name, fn)
}

func (m *Monitor) subscribe(account string, fn func(Event)) (cancel func()) {
	m.subMu.Lock()
	id := m.nextSub
	m.nextSub++
	if m.subs[account] == nil {
		m.subs[account] = map[int]func(Event){}
	}
	m.subs[account][id] = fn
	m.subMu.Unlock()
	return func() {
		m.subMu.Lock()
		delete(m.subs[account], id)
		if len(m.subs[account]) == 0 {
			delete(m.subs, account)
		}
		m.subMu.Unlock()
	}
}

func (m *Monitor) deliver(ev Event) {
	if m.opts.Sink != nil {
		m.opts.Sink.Record(ev)
	}
	if ev.Type != EventState {
		return
	}
	m.subMu.RLock()
	defer m.subMu.RUnlock()
	for _, fn := range m.subs[""] {
		fn(ev)
	}
	if ev.Account == "" {
		return
	}
	for _, fn := range m.subs[ev.Account] {
		fn(ev)
	}
}

// Run re-evaluates accounts each RefreshInterval until ctx ends, so that
// expiries become state changes (and reach subscribers) even when an
// account makes no calls and nobody reads it.
//
// Each tick refreshes only the accounts with a fact expiring by then
// (Account.due): refreshing all 3,000 accounts of a demo every simulated
// second was an eighth of its CPU. Every sweepEvery-th tick refreshes
// every account, so a fact whose expiry some path failed to publish is
// still seen within that many ticks.
func (m *Monitor) Run(ctx context.Context) error {
	t := m.clock.Ticker(m.opts.RefreshInterval)
	defer t.Stop()
	var accts []*Account
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
			now := m.clock.Now().UnixNano()
			all := tick%sweepEvery == 0
			m.mu.RLock()
			accts = accts[:0]
			for _, a := range m.accounts {
				if all || a.due.Load() <= now {
					accts = append(accts, a)
				}
			}
			m.mu.RUnlock()
			for _, a := range accts {
				a.Refresh()
			}
			clear(accts) // keep no removed account alive
		}
	}
}

// sweepEvery is how many of Run's ticks pass between refreshes of every
// account.
const sweepEvery = 60

// MaxNameLength bounds account names, which are metric label values.
const MaxNameLength = 64

// ValidateName reports why a name cannot be an account name: empty, too
// long, characters outside letters, digits and "._-@", or shaped like a
// phone number (phone.Like: 7 or more digits, however written; names end
// up in labels and logs, phone numbers must not). Errors about such names
// do not repeat the name.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("account name is empty")
	}
	if phone.Like(name) {
		return fmt.Errorf("account name looks like a phone number (%d or more digits); choose a name that does not identify the number (the name is not shown)", phone.MinDigits)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("account name is longer than %d bytes", MaxNameLength)
	}
	for _, r := range name {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))) && !strings.ContainsRune("._-@", r) {
			return fmt.Errorf("account name %s: character %q not allowed (use letters, digits, '.', '_', '-', '@')", strconv.Quote(name), r)
		}
	}
	return nil
}
