package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor"
)

// accountSignalsRow: the account's adverse signals by kind, and its calls
// and errors by method.
func accountSignalsRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	return b.WithRow(dashboard.NewRowBuilder("Signals")).
		WithPanel(barsPanel("Adverse signals by kind", "Adverse signals per interval by kind, from RPC errors and reported signals (docs/signals.md).", units.Short).
			WithTarget(promQuery("sum by (kind) ("+increase(monitor.MetricSignals)+") > 0", "{{kind}}")).
			Min(0)).
		WithPanel(timeseriesPanel("RPC errors by method and kind", "Failed calls per second, by TL method and signal kind.", units.RequestsPerSecond).
			WithTarget(promQuery("sum by (method, kind) ("+rate(monitor.MetricRPCErrors, "")+")", "{{method}} {{kind}}")).
			Min(0)).
		WithPanel(timeseriesPanel("RPC calls by method", "Calls per second through the monitor middleware, by TL method.", units.RequestsPerSecond).
			Span(24).
			WithTarget(promQuery("sum by (method) ("+rate(monitor.MetricRPCRequests, "")+")", "{{method}}")).
			Min(0))
}
