package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor"
)

// fleetFloodWaitsRow: how often Telegram makes accounts wait, on which
// methods, for how long, and the waits still running.
func fleetFloodWaitsRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	fw := monitor.MetricFloodWait
	return b.WithRow(dashboard.NewRowBuilder("Flood waits")).
		WithPanel(timeseriesPanel("Flood waits by method", "FLOOD_WAIT and FLOOD_PREMIUM_WAIT answers per second, by TL method, all selected accounts together.", units.OpsPerSecond).
			WithTarget(promQuery("sum by (method) ("+rate(fw, "_count")+")", "{{method}}")).
			Min(0)).
		WithPanel(timeseriesPanel("Flood wait seconds by method", "Seconds of waiting imposed per second of wall time, by method: 60 means Telegram asked for a minute of waiting every second. Long waits on write methods come before limits.", units.Seconds).
			WithTarget(promQuery("sum by (method) ("+rate(fw, "_sum")+")", "{{method}}")).
			Min(0)).
		WithPanel(timeseriesPanel("Longest waits (p95) by method", "95th percentile of the waits received, by method (histogram buckets from 1 s to 1 day).", units.Seconds).
			WithTarget(promQuery("histogram_quantile(0.95, sum by (le, method) ("+rate(fw, "_bucket")+"))", "{{method}}")).
			Min(0)).
		WithPanel(timeseriesPanel("Active waits: time left", "Seconds until each active flood wait ends, per account and method; a line exists only while its wait runs.", units.Seconds).
			WithTarget(promQuery("max by (account, method) ("+sel(monitor.MetricFloodWaitUntil)+") - time()", "{{account}} {{method}}")).
			Min(0))
}
