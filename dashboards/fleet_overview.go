package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/tgsafety/tgsafety/monitor"
)

// fleetOverviewRow: how many accounts there are and how many need a look,
// as stats that read 0 rather than "No data" on a quiet fleet.
func fleetOverviewRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	state := func(states string) string {
		return "count(" + perAccount(sel(monitor.MetricAccountState, `state=~"`+states+`"`)) + ") or vector(0)"
	}
	return b.WithRow(dashboard.NewRowBuilder("Overview")).
		WithPanel(statPanel("Accounts", "Accounts monitored by the selected jobs and instances (each account exports one state series; an account two replicas export during a hand-over counts once).", "none").
			WithTarget(instantQuery("count("+perAccount(sel(monitor.MetricAccountState))+") or vector(0)", "accounts")).
			Thresholds(thresholds("blue"))).
		WithPanel(statPanel("Healthy", "Accounts in state ok.", "none").
			WithTarget(instantQuery(state("ok"), "ok")).
			Thresholds(thresholds("green"))).
		WithPanel(statPanel("At risk", "Accounts whose risk score is at least the warning threshold ("+ftoa(riskWarning)+"; docs/signals.md explains the score).", "none").
			WithTarget(instantQuery("count("+perAccount(sel(monitor.MetricRiskScore))+" >= "+ftoa(riskWarning)+") or vector(0)", "at risk")).
			Thresholds(thresholds("green", 1.0, "orange"))).
		WithPanel(statPanel("Throttled or watch", "Accounts under an active flood wait (throttled) or showing signals that often precede punishment (watch).", "none").
			WithTarget(instantQuery(state("throttled|watch"), "throttled or watch")).
			Thresholds(thresholds("green", 1.0, "yellow"))).
		WithPanel(statPanel("Limited", "Accounts limited to mutual contacts (PEER_FLOOD, USER_RESTRICTED, SpamBot).", "none").
			WithTarget(instantQuery(state("limited"), "limited")).
			Thresholds(thresholds("green", 1.0, "red"))).
		WithPanel(statPanel("Frozen, banned or dead", "Accounts that cannot work until an operator acts: frozen (deleted unless appealed), banned, or with a dead session.", "none").
			WithTarget(instantQuery(state("frozen|banned|dead"), "frozen, banned or dead")).
			Thresholds(thresholds("green", 1.0, "dark-red")))
}
