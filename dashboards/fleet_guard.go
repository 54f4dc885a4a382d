package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor/guard"
)

// fleetGuardRow: calls the guard refused before Telegram could punish
// them, and how close each budget is to its limit.
func fleetGuardRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	return b.WithRow(dashboard.NewRowBuilder("Guard")).
		WithPanel(timeseriesPanel("Guard refusals by reason", "Calls refused locally per second, by reason: budget, limited, frozen, flood_wait (in observe mode, calls that would have been refused). docs/guard.md.", units.RequestsPerSecond).
			WithTarget(promQuery("sum by (reason) ("+rate(guard.MetricBlocked, "")+")", "{{reason}}")).
			Min(0)).
		WithPanel(timeseriesPanel("Budget use", "Per account and action, the highest used fraction of its margin-scaled limits. At 100% the guard refuses the next call; above 100% calls bypassed an enforcing guard (observe mode).", units.PercentUnit).
			WithTarget(promQuery("max by (account, budget) ("+sel(guard.MetricBudgetUsed)+")", "{{account}} {{budget}}")).
			Min(0).
			Thresholds(thresholds("green", budgetWarning, "orange", 1.0, "red")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)))
}
