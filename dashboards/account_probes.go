package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"strconv"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// accountProbesRow: what SpamBot said over time and how fresh each probe is.
func accountProbesRow(b *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	return b.WithRow(dashboard.NewRowBuilder("Probes")).
		WithPanel(stateTimelinePanel("SpamBot answers", "The last conclusive SpamBot answer over time.").
			Height(5).
			WithTarget(promQuery(spamBotIndexExpr(), "SpamBot")).
			Mappings(spamBotMappings()).
			Thresholds(thresholds("text"))).
		WithPanel(timeseriesPanel("Probe age", "Time since each probe's last conclusive run; it resets at every success.", units.Seconds).
			WithTarget(promQuery("time() - max by (probe) ("+sel(probe.MetricProbeLastSuccess)+" > 0)", "{{probe}}")).
			Min(0)).
		WithPanel(barsPanel("Probe errors", "Failed or inconclusive runs per interval, by probe.", units.Short).
			WithTarget(promQuery("sum by (probe) ("+increase(probe.MetricProbeErrors)+")", "{{probe}}")).
			Min(0))
}

// spamBotIndexExpr maps the SpamBot status to its spambot.State number,
// like stateIndexExpr does for account states.
func spamBotIndexExpr() string {
	var terms []string
	for _, st := range spambot.States() {
		terms = append(terms, "("+sel(monitor.MetricSpamBotStatus, `status="`+st.String()+`"`)+" * "+strconv.Itoa(int(st))+")")
	}
	return "max by (job, account) (\n  " + strings.Join(terms, "\n  or ") + "\n)"
}

// spamBotColors colours SpamBot's answers.
var spamBotColors = map[string]string{
	"unknown": "text", "free": "green", "limited_temporary": "orange", "limited_permanent": "red", "frozen": "purple",
}

// spamBotMappings turns spamBotIndexExpr's numbers back into answers.
func spamBotMappings() []dashboard.ValueMapping {
	opts := map[string]dashboard.ValueMappingResult{}
	for _, st := range spambot.States() {
		c, ok := spamBotColors[st.String()]
		if !ok {
			c = "text"
		}
		opts[strconv.Itoa(int(st))] = dashboard.ValueMappingResult{Text: cog.ToPtr(st.String()), Color: cog.ToPtr(c), Index: cog.ToPtr(int32(st))}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}}
}
