package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor"
)

// accountFloodWaitsRow: the waits running now and when they end, and the
// waits received over time.
func accountFloodWaitsRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	fw := monitor.MetricFloodWait
	return b.WithRow(dashboard.NewRowBuilder("Flood waits")).
		WithPanel(tablePanel("Active flood waits", "Each method under an active flood wait and when the wait ends. Calling the method again before then only makes the wait longer.", units.DatetimeISO).
			Span(8).
			WithTarget(tableQuery(epochMillis("max by (method) ("+sel(monitor.MetricFloodWaitUntil)+")"), "A")).
			WithTransformation(organize([]string{"Time"}, map[string]string{"Value": "Ends"}))).
		WithPanel(timeseriesPanel("Active waits: time left", "Seconds until each active wait ends, by method.", units.Seconds).
			Span(16).
			WithTarget(promQuery("max by (method) ("+sel(monitor.MetricFloodWaitUntil)+") - time()", "{{method}}")).
			Min(0)).
		WithPanel(barsPanel("Flood waits received by method", "FLOOD_WAIT and FLOOD_PREMIUM_WAIT answers per interval, by method.", units.Short).
			WithTarget(promQuery("sum by (method) ("+increaseOf(fw.Name+"_count"+scope(), rateInterval, "")+")", "{{method}}")).
			Min(0)).
		WithPanel(timeseriesPanel("Wait seconds by method", "Seconds of waiting imposed per second of wall time, by method.", units.Seconds).
			WithTarget(promQuery("sum by (method) ("+rate(fw, "_sum")+")", "{{method}}")).
			Min(0))
}
