package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor/guard"
)

// accountBudgetsRow: how much of each guard budget the account used, and
// what the guard refused.
func accountBudgetsRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	return b.WithRow(dashboard.NewRowBuilder("Guard budgets")).
		WithPanel(timeseriesPanel("Budget use", "Per action, the highest used fraction of its margin-scaled limits. At 100% the guard refuses the next call of that action.", units.PercentUnit).
			WithTarget(promQuery("max by (budget) ("+sel(guard.MetricBudgetUsed)+")", "{{budget}}")).
			Min(0).
			Thresholds(thresholds("green", budgetWarning, "orange", 1.0, "red")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))).
		WithPanel(timeseriesPanel("Guard refusals", "Calls refused locally per second, by reason and method.", units.RequestsPerSecond).
			WithTarget(promQuery("sum by (reason, method) ("+rate(guard.MetricBlocked, "")+")", "{{reason}} {{method}}")).
			Min(0))
}
