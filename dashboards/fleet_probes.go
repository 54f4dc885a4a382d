package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/probe"
)

// fleetProbesRow: what SpamBot last said about each account, and how
// fresh each probe's knowledge is.
func fleetProbesRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	return b.WithRow(dashboard.NewRowBuilder("SpamBot and probes")).
		WithPanel(tablePanel("SpamBot status", "The last conclusive SpamBot answer per account (free, limited_temporary, limited_permanent, frozen; unknown until a probe got an answer). docs/probes.md explains how answers change the state.", "none").
			Span(8).
			WithTarget(tableQuery(perAccount(sel(monitor.MetricSpamBotStatus)), "A")).
			WithTransformation(organize([]string{"Time", "Value", "job"}, map[string]string{"status": "SpamBot"}))).
		WithPanel(timeseriesPanel("Probe age", "Time since each probe's last conclusive run, per account and probe. It grows by one second per second between runs; a line that keeps growing past the probe's interval is a stale probe.", units.Seconds).
			Span(8).
			WithTarget(promQuery("time() - max by (account, probe) ("+sel(probe.MetricProbeLastSuccess)+" > 0)", "{{account}} {{probe}}")).
			Min(0)).
		WithPanel(barsPanel("Probe errors", "Failed or inconclusive probe runs per interval, by probe (timeouts, RPC errors, unparsable answers).", units.Short).
			Span(8).
			WithTarget(promQuery("sum by (probe) ("+increase(probe.MetricProbeErrors)+")", "{{probe}}")).
			Min(0))
}
