package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/tgsafety/tgsafety/monitor"
)

// accountHistoryRow: the account's state and risk over the time range.
func accountHistoryRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	return b.WithRow(dashboard.NewRowBuilder("State and risk over time")).
		WithPanel(stateTimelinePanel("State", "The account's state over time.").
			Height(5).
			WithTarget(promQuery(stateIndexExpr(), "{{account}}")).
			Mappings(stateMappings()).
			Thresholds(thresholds("text"))).
		WithPanel(timeseriesPanel("Risk score", "Risk 0-100 over time. Warning at "+ftoa(riskWarning)+", critical at "+ftoa(riskCritical)+".", "none").
			Span(24).
			WithTarget(promQuery("max by (account) ("+sel(monitor.MetricRiskScore)+")", "{{account}}")).
			Min(0).Max(100).
			Thresholds(thresholds("green", riskWarning, "orange", riskCritical, "red")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)))
}
