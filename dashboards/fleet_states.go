package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/tgsafety/tgsafety/monitor"
)

// fleetStatesRow: each account's state over time as a timeline, the
// number of accounts per state, and each account's risk score.
func fleetStatesRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	return b.WithRow(dashboard.NewRowBuilder("States and risk")).
		WithPanel(stateTimelinePanel("Account states", "Each account's state over time (docs/signals.md: the most severe applicable state wins).").
			WithTarget(promQuery(stateIndexExpr(), "{{account}}")).
			Mappings(stateMappings()).
			Thresholds(thresholds("text"))).
		WithPanel(timeseriesPanel("Accounts per state", "Number of accounts in each state.", "none").
			WithTarget(promQuery("count by (state) ("+perAccount(sel(monitor.MetricAccountState))+")", "{{state}}")).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
			FillOpacity(60).
			Min(0)).
		WithPanel(timeseriesPanel("Risk score", "Each account's risk score, 0-100, decayed to the moment of the scrape. Warning at "+ftoa(riskWarning)+", critical at "+ftoa(riskCritical)+".", "none").
			WithTarget(promQuery("max by (account) ("+sel(monitor.MetricRiskScore)+")", "{{account}}")).
			Min(0).Max(100).
			Thresholds(thresholds("green", riskWarning, "orange", riskCritical, "red")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)))
}
