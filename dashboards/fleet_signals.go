package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor"
)

// limitingKinds are the signal kinds that limit or end an account, drawn
// per account because each one needs an operator's attention.
const limitingKinds = `kind=~"peer_flood|restricted|banned_in_channel|frozen|banned|deactivated|session_dead"`

// fleetSignalsRow: PEER_FLOOD and the other adverse signals, and the RPC
// traffic they come out of.
func fleetSignalsRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	return b.WithRow(dashboard.NewRowBuilder("Adverse signals")).
		WithPanel(barsPanel("PEER_FLOOD and other limiting signals", "PEER_FLOOD, USER_RESTRICTED, USER_BANNED_IN_CHANNEL, freezes, bans, deleted accounts and dead sessions per account, counted per interval. Each one changes the account's state.", units.Short).
			WithTarget(promQuery("sum by (account, kind) ("+increase(monitor.MetricSignals, limitingKinds)+") > 0", "{{account}} {{kind}}")).
			Min(0)).
		WithPanel(timeseriesPanel("Adverse signals by kind", "Every adverse signal per second by kind (docs/signals.md lists the kinds), all selected accounts together.", units.OpsPerSecond).
			WithTarget(promQuery("sum by (kind) ("+rate(monitor.MetricSignals, "")+")", "{{kind}}")).
			Min(0)).
		WithPanel(timeseriesPanel("RPC calls by method", "Calls made through the monitor middleware per second, by TL method.", units.RequestsPerSecond).
			WithTarget(promQuery("sum by (method) ("+rate(monitor.MetricRPCRequests, "")+")", "{{method}}")).
			Min(0)).
		WithPanel(timeseriesPanel("RPC errors by kind", "Failed calls per second by signal kind; kind none is a failure without an RPC error (network, cancelled context).", units.RequestsPerSecond).
			WithTarget(promQuery("sum by (kind) ("+rate(monitor.MetricRPCErrors, "")+")", "{{kind}}")).
			Min(0))
}
