package daemon

import (
	"errors"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/monitor"
)

// Label names of the daemon metrics.
const (
	LabelVersion   = "version"
	LabelGoVersion = "goversion"
	LabelResult    = "result"
)

// Ingest results of POST /api/v1/signals, one label value each.
const (
	IngestAccepted = "accepted"
	IngestRejected = "rejected"
	IngestFailed   = "failed"
)

// Daemon metric definitions.
var (
	MetricBuildInfo = monitor.MetricDef{
		Name: "tgsafety_build_info", Type: monitor.Gauge,
		Help:   "Always 1; the labels say which build runs, so a dashboard can show versions across a fleet of daemons.",
		Labels: []string{LabelVersion, LabelGoVersion},
	}
	MetricClientConnected = monitor.MetricDef{
		Name: "tgsafety_client_connected", Type: monitor.Gauge,
		Help:   "1 while the account's MTProto client is connected and signed in, 0 while it reconnects or has stopped (banned, dead, no session).",
		Labels: []string{monitor.LabelAccount},
	}
	MetricClientRestarts = monitor.MetricDef{
		Name: "tgsafety_client_restarts_total", Type: monitor.Counter,
		Help:   "Times the account's client was started again after it stopped with an error (reconnects with backoff).",
		Labels: []string{monitor.LabelAccount},
	}
	MetricIngestSignals = monitor.MetricDef{
		Name: "tgsafety_ingest_signals_total", Type: monitor.Counter,
		Help:   "Signals reported to POST /api/v1/signals: accepted (committed, then acknowledged), rejected (bad input, 4xx) or failed (not committed, 5xx).",
		Labels: []string{LabelResult},
	}
	MetricReplicaLeases = monitor.MetricDef{
		Name: "tgsafety_replica_leases", Type: monitor.Gauge,
		Help: "Accounts this daemon runs: with a PostgreSQL fleet, those whose lease it holds (summed over replicas, the fleet); with SQLite, every configured account.",
	}
)

// Metrics returns the daemon's metric definitions.
func Metrics() []monitor.MetricDef {
	return []monitor.MetricDef{MetricBuildInfo, MetricClientConnected, MetricClientRestarts, MetricIngestSignals, MetricReplicaLeases}
}

// Instruments are the registered daemon metrics.
type Instruments struct {
	Connected *prometheus.GaugeVec
	Restarts  *prometheus.CounterVec
	Ingest    *prometheus.CounterVec
	// Leases is tgsafety_replica_leases.
	Leases prometheus.Gauge
}

// Register creates the daemon metrics on reg and sets tgsafety_build_info
// for version. It fails when reg already has them: a daemon registers once.
func Register(reg prometheus.Registerer, version string) (*Instruments, error) {
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricBuildInfo.Name, Help: MetricBuildInfo.Help}, MetricBuildInfo.Labels)
	build.WithLabelValues(version, runtime.Version()).Set(1)
	in := &Instruments{
		Connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricClientConnected.Name, Help: MetricClientConnected.Help}, MetricClientConnected.Labels),
		Restarts:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricClientRestarts.Name, Help: MetricClientRestarts.Help}, MetricClientRestarts.Labels),
		Ingest:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricIngestSignals.Name, Help: MetricIngestSignals.Help}, MetricIngestSignals.Labels),
		Leases:    prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricReplicaLeases.Name, Help: MetricReplicaLeases.Help}),
	}
	for _, r := range []string{IngestAccepted, IngestRejected, IngestFailed} {
		in.Ingest.WithLabelValues(r)
	}
	if reg == nil {
		return in, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{build, in.Connected, in.Restarts, in.Ingest, in.Leases} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return in, nil
}

// Forget deletes an account's series, for an account removed from the
// configuration on reload.
func (in *Instruments) Forget(account string) {
	in.Connected.DeleteLabelValues(account)
	in.Restarts.DeleteLabelValues(account)
}
