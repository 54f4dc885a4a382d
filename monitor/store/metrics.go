package store

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/monitor"
)

// Store metric definitions. They have no labels: the store is one per
// daemon, and per-account rates are already in tgsafety_signals_total.
var (
	MetricEventsWritten = monitor.MetricDef{
		Name: "tgsafety_store_events_written_total", Type: monitor.Counter,
		Help: "Events committed to the history store.",
	}
	MetricDroppedEvents = monitor.MetricDef{
		Name: "tgsafety_store_dropped_events_total", Type: monitor.Counter,
		Help: "Events recorded but not stored: buffer full, writer closed, unencodable event or failed transaction. Acknowledged (committed) events are never dropped.",
	}
	MetricBatchDuration = monitor.MetricDef{
		Name: "tgsafety_store_batch_seconds", Type: monitor.Histogram,
		Help:    "Duration of one batch transaction of the history store, including its fsync.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}
	MetricWriteErrors = monitor.MetricDef{
		Name: "tgsafety_store_write_errors_total", Type: monitor.Counter,
		Help: "Batch transactions of the history store that failed; their events are dropped or their Commit fails.",
	}
)

// Metrics returns the store's metric definitions, so that dashboards and
// docs/metrics.md can be checked against them.
func Metrics() []monitor.MetricDef {
	return []monitor.MetricDef{MetricEventsWritten, MetricDroppedEvents, MetricBatchDuration, MetricWriteErrors}
}

// writerMetrics are the Writer's instruments.
type writerMetrics struct {
	written prometheus.Counter
	dropped prometheus.Counter
	batch   prometheus.Observer
	errors  prometheus.Counter
}

func newWriterMetrics(reg prometheus.Registerer, log *zap.Logger) writerMetrics {
	counter := func(d monitor.MetricDef) prometheus.Counter {
		return register(reg, log, prometheus.NewCounter(prometheus.CounterOpts{Name: d.Name, Help: d.Help}))
	}
	return writerMetrics{
		written: counter(MetricEventsWritten),
		dropped: counter(MetricDroppedEvents),
		batch: register(reg, log, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: MetricBatchDuration.Name, Help: MetricBatchDuration.Help, Buckets: MetricBatchDuration.Buckets,
		})),
		errors: counter(MetricWriteErrors),
	}
}

// register registers c on reg (nil: not at all). When an identical
// collector is already registered (a second Writer on the same registry)
// it returns that one, so both count into the same series; any other
// failure is logged rather than fatal, because losing a metric must not
// stop the daemon from storing history.
func register[C prometheus.Collector](reg prometheus.Registerer, log *zap.Logger, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		log.Warn("Cannot register store metric", zap.Error(err))
	}
	return c
}
