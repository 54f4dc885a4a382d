package probe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/monitor"
)

// Probe metric definitions; the SpamBot status gauge is exported by the
// monitor itself (monitor.MetricSpamBotStatus) from the account snapshot.
var (
	MetricProbeLastSuccess = monitor.MetricDef{
		Name: "tgsafety_probe_last_success_timestamp_seconds", Type: monitor.Gauge,
		Help:   "Unix time of the probe's last conclusive run; no series until one succeeded.",
		Labels: []string{monitor.LabelAccount, LabelProbe},
	}
	MetricProbeErrors = monitor.MetricDef{
		Name: "tgsafety_probe_errors_total", Type: monitor.Counter,
		Help:   "Probe runs that failed or were inconclusive (the account's state then says unknown for SpamBot); no series until one failed.",
		Labels: []string{monitor.LabelAccount, LabelProbe},
	}
)

// LabelProbe is the probe kind label.
const LabelProbe = "probe"

// Metrics returns the probe metric definitions.
func Metrics() []monitor.MetricDef {
	return []monitor.MetricDef{MetricProbeLastSuccess, MetricProbeErrors}
}

// Recorder holds the probe instruments shared by every account's scheduler.
type Recorder struct {
	lastSuccess *prometheus.GaugeVec
	errors      *prometheus.CounterVec
}

// NewRecorder creates the probe metrics and registers them on reg (nil:
// not registered).
func NewRecorder(reg prometheus.Registerer) (*Recorder, error) {
	m := &Recorder{lastSuccess: MetricProbeLastSuccess.NewGaugeVec(), errors: MetricProbeErrors.NewCounterVec()}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lastSuccess, m.errors} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Forget drops an account's series.
func (m *Recorder) Forget(account string) {
	l := prometheus.Labels{monitor.LabelAccount: account}
	m.lastSuccess.DeletePartialMatch(l)
	m.errors.DeletePartialMatch(l)
}

// Restore sets a probe's last success from the daemon's history after a
// restart, so that tgsafety_probe_last_success_timestamp_seconds is there
// (and staleness alerts can judge it) in the hours until the probe next
// runs. A zero t changes nothing.
func (m *Recorder) Restore(account, kind string, t time.Time) {
	if t.IsZero() {
		return
	}
	m.lastSuccess.WithLabelValues(account, kind).Set(float64(t.UnixMilli()) / 1000)
}

// Observe records one run's outcome: an error counts, a success sets the
// last-success time to now. Series appear with an account's first run
// (or Restore), not before: zeros for every account and probe were a
// large part of an idle fleet's exposition (docs/metrics.md).
func (m *Recorder) Observe(account, kind string, now time.Time, err error) {
	if err != nil {
		m.errors.WithLabelValues(account, kind).Inc()
		return
	}
	m.lastSuccess.WithLabelValues(account, kind).Set(float64(now.UnixMilli()) / 1000)
}
