package monitor

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// MetricType is the Prometheus type of a metric definition.
type MetricType string

// The metric types tgsafety uses.
const (
	Counter   MetricType = "counter"
	Gauge     MetricType = "gauge"
	Histogram MetricType = "histogram"
)

// MetricDef describes one exported metric. Dashboards, alert rules and
// docs/metrics.md are generated from or checked against these definitions,
// so a metric cannot be renamed in one place only.
type MetricDef struct {
	Name   string
	Type   MetricType
	Help   string
	Labels []string
	// Buckets are the histogram bucket upper bounds, for histograms.
	Buckets []float64
}

// Label names shared by every tgsafety metric.
const (
	LabelAccount = "account"
	LabelMethod  = "method"
	LabelKind    = "kind"
	LabelState   = "state"
	LabelStatus  = "status"
)

// The monitor core's metrics.
var (
	MetricRPCRequests = MetricDef{
		Name: "tgsafety_rpc_requests_total", Type: Counter,
		Help:   "RPC calls made by the account, by TL method name.",
		Labels: []string{LabelAccount, LabelMethod},
	}
	MetricRPCErrors = MetricDef{
		Name: "tgsafety_rpc_errors_total", Type: Counter,
		Help:   "Failed RPC calls by signal kind; kind=none is a failure without an RPC error (network, context).",
		Labels: []string{LabelAccount, LabelMethod, LabelKind},
	}
	MetricRPCDuration = MetricDef{
		Name: "tgsafety_rpc_duration_seconds", Type: Histogram,
		Help:    "Duration of RPC calls, including failed ones, by method over all accounts.",
		Labels:  []string{LabelMethod},
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}
	MetricFloodWait = MetricDef{
		Name: "tgsafety_flood_wait_seconds", Type: Histogram,
		Help:    "Flood waits (FLOOD_WAIT, FLOOD_PREMIUM_WAIT) received, by method, in seconds.",
		Labels:  []string{LabelAccount, LabelMethod},
		Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400},
	}
	MetricFloodWaitUntil = MetricDef{
		Name: "tgsafety_flood_wait_until_timestamp_seconds", Type: Gauge,
		Help:   "Unix time at which an active flood wait on the method ends; only active waits are exported.",
		Labels: []string{LabelAccount, LabelMethod},
	}
	MetricAccountState = MetricDef{
		Name: "tgsafety_account_state", Type: Gauge,
		Help:   "1, with the account's current state as the state label; one series per account.",
		Labels: []string{LabelAccount, LabelState},
	}
	MetricRiskScore = MetricDef{
		Name: "tgsafety_account_risk_score", Type: Gauge,
		Help:   "Risk score 0-100 from time-decayed, weighted signals (docs/signals.md).",
		Labels: []string{LabelAccount},
	}
	MetricLimitedUntil = MetricDef{
		Name: "tgsafety_account_limited_until_timestamp_seconds", Type: Gauge,
		Help:   "Unix time at which the account's limit ends (known or assumed); +Inf when permanent; only limited accounts have one.",
		Labels: []string{LabelAccount},
	}
	MetricFrozenUntil = MetricDef{
		Name: "tgsafety_account_frozen_until_timestamp_seconds", Type: Gauge,
		Help:   "Unix time at which a frozen account is deleted unless appealed (freeze_until_date); only frozen accounts whose date is known have one.",
		Labels: []string{LabelAccount},
	}
	MetricSpamBotStatus = MetricDef{
		Name: "tgsafety_spambot_status", Type: Gauge,
		Help:   "1, with the account's last SpamBot answer as the status label (unknown until a probe succeeds); one series per account.",
		Labels: []string{LabelAccount, LabelStatus},
	}
	MetricSignals = MetricDef{
		Name: "tgsafety_signals_total", Type: Counter,
		Help:   "Adverse signals observed, by kind (RPC errors and reported signals); a kind's series appears with its first signal.",
		Labels: []string{LabelAccount, LabelKind},
	}
)

// Metrics returns the definitions of every metric the monitor core exports.
func Metrics() []MetricDef {
	return []MetricDef{
		MetricRPCRequests, MetricRPCErrors, MetricRPCDuration, MetricFloodWait,
		MetricFloodWaitUntil, MetricAccountState, MetricRiskScore,
		MetricLimitedUntil, MetricFrozenUntil, MetricSignals, MetricSpamBotStatus,
	}
}

// NewCounterVec builds a counter vector from a definition.
func (d MetricDef) NewCounterVec() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: d.Name, Help: d.Help}, d.Labels)
}

// NewHistogramVec builds a histogram vector from a definition.
func (d MetricDef) NewHistogramVec() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: d.Name, Help: d.Help, Buckets: d.Buckets}, d.Labels)
}

// NewGaugeVec builds a gauge vector from a definition.
func (d MetricDef) NewGaugeVec() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: d.Name, Help: d.Help}, d.Labels)
}

// Desc builds a descriptor, for collectors that compute values at scrape time.
func (d MetricDef) Desc() *prometheus.Desc {
	return prometheus.NewDesc(d.Name, d.Help, d.Labels, nil)
}

// metrics holds the monitor's instruments.
type metrics struct {
	requests  *prometheus.CounterVec
	errors    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	floodWait *prometheus.HistogramVec
	signals   *prometheus.CounterVec

	stateDesc, riskDesc, limitedDesc, frozenDesc, waitUntilDesc, spamBotDesc *prometheus.Desc
}

func newMetrics() *metrics {
	return &metrics{
		requests:      MetricRPCRequests.NewCounterVec(),
		errors:        MetricRPCErrors.NewCounterVec(),
		duration:      MetricRPCDuration.NewHistogramVec(),
		floodWait:     MetricFloodWait.NewHistogramVec(),
		signals:       MetricSignals.NewCounterVec(),
		stateDesc:     MetricAccountState.Desc(),
		riskDesc:      MetricRiskScore.Desc(),
		limitedDesc:   MetricLimitedUntil.Desc(),
		frozenDesc:    MetricFrozenUntil.Desc(),
		waitUntilDesc: MetricFloodWaitUntil.Desc(),
		spamBotDesc:   MetricSpamBotStatus.Desc(),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.errors, m.duration, m.floodWait, m.signals}
}

// forget drops every series of an account, when it is removed. The
// duration histogram has no account label: it is kept.
func (m *metrics) forget(account string) {
	l := prometheus.Labels{LabelAccount: account}
	for _, c := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.requests, m.errors, m.floodWait, m.signals} {
		c.DeletePartialMatch(l)
	}
}

// accountCollector exports the per-account gauges at scrape time, from the
// same snapshot the API serves, so the two always agree and the risk score
// is decayed to the moment of the scrape.
type accountCollector struct{ mon *Monitor }

func (c accountCollector) Describe(ch chan<- *prometheus.Desc) {
	m := c.mon.metrics
	ch <- m.stateDesc
	ch <- m.riskDesc
	ch <- m.limitedDesc
	ch <- m.frozenDesc
	ch <- m.waitUntilDesc
	ch <- m.spamBotDesc
}

func (c accountCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.mon.metrics
	for _, a := range c.mon.Accounts() {
		s := a.Snapshot()
		// One series per enum, the current value's: eight zeros per
		// account were most of an idle fleet's exposition (docs/metrics.md,
		// "Cardinality").
		ch <- prometheus.MustNewConstMetric(m.stateDesc, prometheus.GaugeValue, 1, s.Account, s.State.String())
		ch <- prometheus.MustNewConstMetric(m.riskDesc, prometheus.GaugeValue, s.Risk, s.Account)
		if s.Limit.Active {
			limited := unixSeconds(s.Limit.Until)
			if s.Limit.Permanent {
				limited = math.Inf(1)
			}
			ch <- prometheus.MustNewConstMetric(m.limitedDesc, prometheus.GaugeValue, limited, s.Account)
		}
		if s.Freeze.Active {
			if deleted := unixSeconds(s.Freeze.DeletionDate); deleted > 0 {
				ch <- prometheus.MustNewConstMetric(m.frozenDesc, prometheus.GaugeValue, deleted, s.Account)
			}
		}
		for _, w := range s.FloodWaits {
			ch <- prometheus.MustNewConstMetric(m.waitUntilDesc, prometheus.GaugeValue, unixSeconds(w.Until), s.Account, w.Method)
		}
		current := spambot.Unknown
		if s.SpamBot != nil {
			current = s.SpamBot.State
		}
		ch <- prometheus.MustNewConstMetric(m.spamBotDesc, prometheus.GaugeValue, 1, s.Account, current.String())
	}
}

func unixSeconds(t time.Time) float64 {
	ms := t.UnixMilli()
	if ms <= 0 {
		return 0
	}
	return float64(ms) / 1000
}
