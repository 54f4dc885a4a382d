package guard

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/monitor"
)

// Label names the guard adds to monitor's shared ones (account, method).
const (
	// LabelReason is a Reason's String form.
	LabelReason = "reason"
	// LabelBudget is a limits.Action name.
	LabelBudget = "budget"
)

// The guard's metrics, defined once so that dashboards, alert rules and
// docs can be generated from or checked against them.
var (
	// MetricBlocked counts refusals, so an operator sees which budget or
	// state holds an account back (and, in observe mode, what enforcing
	// would cost before turning it on).
	MetricBlocked = monitor.MetricDef{
		Name: "tgsafety_guard_blocked_total", Type: monitor.Counter,
		Help: "Calls the guard refused before they reached Telegram, by reason (budget, limited, frozen, flood_wait); " +
			"in observe mode, the calls it would have refused.",
		Labels: []string{monitor.LabelAccount, monitor.LabelMethod, LabelReason},
	}
	// MetricBudgetUsed shows how close each budget is to the guard's
	// limit, so dashboards and alerts can act before calls are refused.
	MetricBudgetUsed = monitor.MetricDef{
		Name: "tgsafety_budget_used_ratio", Type: monitor.Gauge,
		Help: "Highest fraction used among an action's limits after the guard's margin; " +
			"at 1 the guard refuses the next one (above 1 when calls bypassed an enforcing guard).",
		Labels: []string{monitor.LabelAccount, LabelBudget},
	}
)

// Metrics returns the definitions of every metric the guard exports.
func Metrics() []monitor.MetricDef { return []monitor.MetricDef{MetricBlocked, MetricBudgetUsed} }

// metrics are one guard's instruments. Guards registered on the same
// registerer share them: the first guard registers, the next ones find its
// collectors through prometheus.AlreadyRegisteredError.
type metrics struct {
	blocked *prometheus.CounterVec
	budgets *budgetCollector // nil when not registered
}

func newMetrics(reg prometheus.Registerer, g *Guard) (*metrics, error) {
	m := &metrics{blocked: MetricBlocked.NewCounterVec()}
	if reg == nil {
		return m, nil
	}
	blocked, err := registerShared(reg, m.blocked)
	if err != nil {
		return nil, err
	}
	budgets, err := registerShared(reg, &budgetCollector{desc: MetricBudgetUsed.Desc(), guards: map[string]*Guard{}})
	if err != nil {
		return nil, err
	}
	if err := budgets.add(g); err != nil {
		return nil, err
	}
	m.blocked, m.budgets = blocked, budgets
	return m, nil
}

// registerShared registers c, or returns the collector of the same type
// already registered under the same descriptors.
func registerShared[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("guard: register metrics: %w", err)
}

func (m *metrics) close(g *Guard) {
	if m.budgets == nil {
		return
	}
	m.budgets.remove(g)
	m.blocked.DeletePartialMatch(prometheus.Labels{monitor.LabelAccount: g.name})
}

// budgetCollector exports tgsafety_budget_used_ratio at scrape time from
// each guard's tracker, so the value is current at the moment of the
// scrape (windows slide without traffic).
type budgetCollector struct {
	desc *prometheus.Desc

	mu     sync.Mutex
	guards map[string]*Guard // by account name
}

func (c *budgetCollector) add(g *Guard) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.guards[g.name]; ok {
		return fmt.Errorf("guard: account %q already has a guard registered on this registerer", g.name)
	}
	c.guards[g.name] = g
	return nil
}

func (c *budgetCollector) remove(g *Guard) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.guards[g.name] == g {
		delete(c.guards, g.name)
	}
}

// Describe implements prometheus.Collector.
func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	gs := make([]*Guard, 0, len(c.guards))
	for _, g := range c.guards {
		gs = append(gs, g)
	}
	c.mu.Unlock()
	sort.Slice(gs, func(i, j int) bool { return gs[i].name < gs[j].name })
	for _, g := range gs {
		used := g.Used()
		for _, b := range g.all {
			// Unused budgets are left out: ten zeros per idle account
			// would outweigh everything else it exports.
			if u := used[b.action]; u > 0 {
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, u, g.name, string(b.action))
			}
		}
	}
}
