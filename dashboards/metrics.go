package dashboards

import (
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/daemon"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// Metrics returns every metric definition tgsafety exports: the monitor
// core's, the probes', the guard's, the store's and the daemon's. Dashboards and alert rules are
// built from and checked against this list, so they cannot name a metric
// that does not exist.
func Metrics() []monitor.MetricDef {
	var out []monitor.MetricDef
	out = append(out, monitor.Metrics()...)
	out = append(out, probe.Metrics()...)
	out = append(out, guard.Metrics()...)
	out = append(out, store.Metrics()...)
	return append(out, daemon.Metrics()...)
}
