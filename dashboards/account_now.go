package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/daemon"
)

// accountNowRow: where the account stands right now.
func accountNowRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	return b.WithRow(dashboard.NewRowBuilder("Now")).
		WithPanel(statPanel("State", "The account's current state (docs/signals.md).", "none").
			WithTarget(instantQuery(stateIndexExpr(), "{{account}}")).
			Mappings(stateMappings()).
			ColorMode("background").
			Thresholds(thresholds("text"))).
		WithPanel(statPanel("Risk score", "Risk 0-100 from time-decayed, weighted signals; limited accounts never read below 60, frozen below 90.", "none").
			WithTarget(instantQuery("max("+sel(monitor.MetricRiskScore)+")", "risk")).
			Min(0).Max(100).
			Thresholds(thresholds("green", riskWarning, "orange", riskCritical, "red"))).
		WithPanel(statPanel("Limit ends", "When the account's limit ends, as SpamBot stated or assumed 24 h after the last PEER_FLOOD; Inf when permanent, no value when not limited.", units.DateTimeFromNow).
			WithTarget(instantQuery(epochMillis("max("+sel(monitor.MetricLimitedUntil)+") > 0"), "limit ends")).
			NoValue("not limited")).
		WithPanel(statPanel("Deleted unless appealed", "freeze_until_date of a frozen account: the date Telegram deletes it unless an appeal succeeds. No value when not frozen or not known yet.", units.DateTimeFromNow).
			WithTarget(instantQuery(epochMillis("max("+sel(monitor.MetricFrozenUntil)+") > 0"), "deleted")).
			NoValue("not frozen")).
		WithPanel(statPanel("SpamBot says", "The last conclusive SpamBot answer (unknown until a probe got one).", "none").
			WithTarget(instantQuery("max by (status) ("+sel(monitor.MetricSpamBotStatus)+")", "{{status}}")).
			TextMode("name").
			ColorMode("none")).
		WithPanel(statPanel("Client connected", "1 while safetyd's client for the account is connected and signed in; 0 while it reconnects or after it stopped (banned, dead, no session). No value outside safetyd.", units.Bool).
			WithTarget(instantQuery("max("+sel(daemon.MetricClientConnected)+")", "connected")).
			Thresholds(thresholds("red", 1.0, "green")))
}
