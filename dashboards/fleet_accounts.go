package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor"
)

// fleetAccountsRow: one row per account with its state, risk and the ends
// of its limit and freeze, to sort and to click through to the account.
func fleetAccountsRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	// A data link on the account column opens the detail dashboard with
	// the row's job and account selected, on every instance: with
	// replicas the account moves between them.
	link, err := dashboard.NewDashboardLinkBuilder("Account detail").
		Type(dashboard.DashboardLinkTypeLink).
		Url("/d/" + AccountUID + "?var-datasource=${datasource}&var-job=${__data.fields.job}&var-account=${__data.fields.account}&${__url_time_range}").
		Build()
	if err != nil {
		return b.RecordError("accounts table link", err)
	}
	link.Placement = nil // the SDK's default hides links in Grafana 12.4+
	return b.WithRow(dashboard.NewRowBuilder("Accounts")).
		WithPanel(tablePanel("Accounts", "One row per account: current state, risk score, when its limit ends (empty when not limited, Inf when permanent) and when a frozen account is deleted unless appealed. Click an account for its detail dashboard.", "none").
			WithTarget(tableQuery(stateIndexExpr(), "A")).
			WithTarget(tableQuery("max by (job, account) ("+sel(monitor.MetricRiskScore)+")", "B")).
			WithTarget(tableQuery(epochMillis("max by (job, account) ("+sel(monitor.MetricLimitedUntil)+") > 0"), "C")).
			WithTarget(tableQuery(epochMillis("max by (job, account) ("+sel(monitor.MetricFrozenUntil)+") > 0"), "D")).
			WithTransformation(merge()).
			WithTransformation(organize([]string{"Time"}, map[string]string{
				"Value #A": "State", "Value #B": "Risk", "Value #C": "Limited until", "Value #D": "Deleted on",
			})).
			OverrideByName("State", []dashboard.DynamicConfigValue{{Id: "mappings", Value: stateMappings()}}).
			OverrideByName("Risk", []dashboard.DynamicConfigValue{
				{Id: "min", Value: 0}, {Id: "max", Value: 100},
				{Id: "thresholds", Value: thresholdsValue("green", riskWarning, "orange", riskCritical, "red")},
			}).
			OverrideByName("Limited until", []dashboard.DynamicConfigValue{{Id: "unit", Value: units.DatetimeISO}}).
			OverrideByName("Deleted on", []dashboard.DynamicConfigValue{{Id: "unit", Value: units.DatetimeISO}}).
			OverrideByName("account", []dashboard.DynamicConfigValue{{Id: "links", Value: []any{link}}}))
}
