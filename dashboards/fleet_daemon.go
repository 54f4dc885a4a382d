package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/daemon"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// fleetDaemonRow: the daemon's own health, collapsed because operators
// need it only when the account panels look wrong.
func fleetDaemonRow() *dashboard.RowBuilder {
	return dashboard.NewRowBuilder("Daemon internals").
		Collapsed(true).
		WithPanel(timeseriesPanel("Scrape up", "1 while Prometheus scrapes the target, 0 when the scrape fails: a daemon that is down shows 0 here and nothing elsewhere.", units.NoUnit).
			Span(8).
			WithTarget(promQuery("up"+daemonScope(), "{{instance}}")).
			Min(0).Max(1)).
		WithPanel(timeseriesPanel("Clients connected", "Accounts whose MTProto client is connected and signed in, per instance (safetyd only).", units.NoUnit).
			Span(8).
			WithTarget(promQuery("sum by (instance) ("+sel(daemon.MetricClientConnected)+")", "{{instance}}")).
			Min(0)).
		WithPanel(timeseriesPanel("Client restarts", "Client restarts after an error per second, by account (reconnects with backoff).", units.OpsPerSecond).
			Span(8).
			WithTarget(promQuery("sum by (account) ("+rate(daemon.MetricClientRestarts, "")+")", "{{account}}")).
			Min(0)).
		WithPanel(timeseriesPanel("Signal ingest", "Signals posted to /api/v1/signals per second by result: accepted (committed), rejected (4xx), failed (5xx).", units.RequestsPerSecond).
			Span(8).
			WithTarget(promQuery("sum by (result) (rate("+daemon.MetricIngestSignals.Name+daemonScope()+"["+rateInterval+"]))", "{{result}}")).
			Min(0)).
		WithPanel(timeseriesPanel("History store", "Events committed to the history database, dropped (buffer full or not storable) and failed batch writes, per second.", units.OpsPerSecond).
			Span(8).
			WithTarget(promQuery("sum by (instance) (rate("+store.MetricEventsWritten.Name+daemonScope()+"["+rateInterval+"]))", "written {{instance}}")).
			WithTarget(promQuery("sum by (instance) (rate("+store.MetricDroppedEvents.Name+daemonScope()+"["+rateInterval+"]))", "dropped {{instance}}")).
			WithTarget(promQuery("sum by (instance) (rate("+store.MetricWriteErrors.Name+daemonScope()+"["+rateInterval+"]))", "write errors {{instance}}")).
			Min(0)).
		WithPanel(timeseriesPanel("Store batch duration (p99)", "99th percentile of one batch transaction of the history store, fsync included.", units.Seconds).
			Span(8).
			WithTarget(promQuery("histogram_quantile(0.99, sum by (le, instance) (rate("+store.MetricBatchDuration.Name+"_bucket"+daemonScope()+"["+rateInterval+"])))", "{{instance}}")).
			Min(0)).
		WithPanel(timeseriesPanel("RPC duration (p95) by method", "95th percentile of call duration through the monitor middleware, failures included, all accounts together (the histogram has no account label).", units.Seconds).
			Span(12).
			WithTarget(promQuery("histogram_quantile(0.95, sum by (le, method) (rate("+monitor.MetricRPCDuration.Name+"_bucket"+daemonScope()+"["+rateInterval+"])))", "{{method}}")).
			Min(0)).
		WithPanel(tablePanel("Builds", "Which tgsafety version and Go version each instance runs.", "none").
			Span(12).
			WithTarget(tableQuery(daemon.MetricBuildInfo.Name+daemonScope(), "A")).
			WithTransformation(organize([]string{"Time", "Value", "__name__"}, nil)))
}
