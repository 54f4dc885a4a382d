package dashboards

//lint:file-ignore SA1019 dashboard.Dashboard (v1) is deprecated in favour of dashboardv2, but v1 JSON is what Grafana's import, file provisioning and /api/dashboards/db accept on every supported version.

import (
	"strconv"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/tgsafety/tgsafety/monitor"
)

// Identity shared by both dashboards: a common tag links them, the uids
// are stable so that a re-import replaces instead of duplicating.
const (
	// Tag is on every tgsafety dashboard; the dashboard links list by it.
	Tag = "tgsafety"
	// FleetUID is the Fleet overview dashboard's uid.
	FleetUID = "tgsafety-fleet"
	// AccountUID is the Account detail dashboard's uid.
	AccountUID  = "tgsafety-account"
	titlePrefix = "tgsafety / "
)

// rateInterval is the only range dashboards use: Grafana sizes it to at
// least four scrape intervals, so rate() never sees fewer than two samples.
const rateInterval = "$__rate_interval"

// ds is the panel and variable datasource: whatever the datasource
// variable selects.
func ds() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
}

// scope is the label matchers every dashboard query carries, so that the
// job, instance and account variables filter every panel alike. Panels
// about accounts aggregate instance away (perAccount, in alerts.go): with replicas an
// account moves between processes and must be drawn, and counted, once.
func scope(extra ...string) string {
	m := append([]string{`job=~"$job"`, `instance=~"$instance"`, `account=~"$account"`}, extra...)
	return "{" + strings.Join(m, ", ") + "}"
}

// daemonScope is scope without the account matcher, for per-process
// metrics (store, ingest, build info, up).
func daemonScope(extra ...string) string {
	m := append([]string{`job=~"$job"`, `instance=~"$instance"`}, extra...)
	return "{" + strings.Join(m, ", ") + "}"
}

// sel is a metric of def selected by scope.
func sel(def monitor.MetricDef, extra ...string) string { return def.Name + scope(extra...) }

// rate is rate() of a counter (or a histogram's _count/_sum/_bucket
// series, passed as suffix) over the dashboard's rate interval.
func rate(def monitor.MetricDef, suffix string, extra ...string) string {
	return "rate(" + def.Name + suffix + scope(extra...) + "[" + rateInterval + "])"
}

// increase is how much a counter grew over the dashboard's rate interval.
func increase(def monitor.MetricDef, extra ...string) string {
	return increaseOf(def.Name+scope(extra...), rateInterval, "")
}

// increaseOf is how much the counters of selector grew over window,
// counting a series that appeared within the window from 0. Counters are
// created with their first increment (docs/metrics.md, "Cardinality"), and
// increase() alone never sees that first step: the first PEER_FLOOD of an
// account would count nothing. A series absent one window ago counts its
// whole value, where newIf (matched on job and instance; "" for always)
// says the whole value is recent; every other series counts its
// increase.
func increaseOf(selector, window, newIf string) string {
	// last_over_time: a series that ended within the window (its replica
	// handed the account over, or died) still counts.
	fresh := "(last_over_time(" + selector + "[" + window + "]) unless " + selector + " offset " + window + ")"
	if newIf != "" {
		fresh = "(" + fresh + " and on (job, instance) (" + newIf + "))"
	}
	return fresh + " or increase(" + selector + "[" + window + "])"
}

// stateIndexExpr maps each account's current state to its monitor.State
// number (unknown 0 … dead 7), so that a state timeline can show one
// series per account; stateMappings turns the numbers back into names.
// Both are generated from monitor.States(), so a new state cannot be
// missing from one of them. An account exports only its current state's
// series, so the terms are joined with or; max by account keeps one value
// per account when two replicas export it during a hand-over.
func stateIndexExpr(extra ...string) string {
	var terms []string
	for _, st := range monitor.States() {
		terms = append(terms, "("+sel(monitor.MetricAccountState, append(extra, `state="`+st.String()+`"`)...)+" * "+strconv.Itoa(int(st))+")")
	}
	return "max by (job, account) (\n  " + strings.Join(terms, "\n  or ") + "\n)"
}

// stateColors are the colours of the states, from calm to severe.
var stateColors = map[monitor.State]string{
	monitor.Unknown:   "text",
	monitor.OK:        "green",
	monitor.Watch:     "yellow",
	monitor.Throttled: "orange",
	monitor.Limited:   "red",
	monitor.Frozen:    "purple",
	monitor.Banned:    "dark-red",
	monitor.Dead:      "#4b4b4b",
}

// stateMappings turns stateIndexExpr's numbers into state names and colours.
func stateMappings() []dashboard.ValueMapping {
	opts := map[string]dashboard.ValueMappingResult{}
	for _, st := range monitor.States() {
		opts[strconv.Itoa(int(st))] = dashboard.ValueMappingResult{
			Text: cog.ToPtr(st.String()), Color: cog.ToPtr(stateColors[st]), Index: cog.ToPtr(int32(st)),
		}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}}
}

// promQuery is a range query drawn with legend.
func promQuery(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(ds()).Expr(expr).LegendFormat(legend).Range()
}

// instantQuery is an instant query for stats and tables: one value per
// series, as of the end of the time range.
func instantQuery(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(ds()).Expr(expr).LegendFormat(legend).Instant()
}

// tableQuery is an instant query in table format, one row per series.
func tableQuery(expr, refID string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(ds()).Expr(expr).Instant().
		Format(prometheus.PromQueryFormatTable).RefId(refID)
}

// thresholds builds absolute thresholds: base colour, then (value, colour)
// steps.
func thresholds(base string, steps ...any) *dashboard.ThresholdsConfigBuilder {
	ts := []dashboard.Threshold{{Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		ts = append(ts, dashboard.Threshold{Value: cog.ToPtr(steps[i].(float64)), Color: steps[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

// timeseriesPanel is the default time series: lines, a table legend with
// last and max values, a tooltip listing every series sorted.
func timeseriesPanel(title, description, unit string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Unit(unit).
		Datasource(ds()).
		Height(8).Span(12).
		LineWidth(1).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		DrawStyle(common.GraphDrawStyleLine).
		GradientMode(common.GraphGradientModeNone).
		SpanNulls(common.BoolOrFloat64{Bool: cog.ToPtr(false)}).
		AxisBorderShow(false).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementRight).
			ShowLegend(true).
			Calcs([]string{"lastNotNull", "max"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending)).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeOff))
}

// barsPanel is a time series drawn as bars, for counts per interval.
func barsPanel(title, description, unit string) *timeseries.PanelBuilder {
	return timeseriesPanel(title, description, unit).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))
}

// statPanel is a single big number. Orientation is set explicitly: the
// SDK leaves it "", which is not in the schema's enum.
func statPanel(title, description, unit string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Unit(unit).
		Datasource(ds()).
		Height(4).Span(4).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Orientation(common.VizOrientationAuto).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeNone).
		TextMode(common.BigValueTextModeAuto).
		JustifyMode(common.BigValueJustifyModeAuto)
}

// stateTimelinePanel shows one lane per series. The tooltip's mode and
// sort are set because the SDK's defaults ("") are not valid enums.
func stateTimelinePanel(title, description string) *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().
		Title(title).
		Description(description).
		Unit("none").
		Datasource(ds()).
		Height(10).Span(24).
		ShowValue(common.VisibilityModeAuto).
		MergeValues(true).
		RowHeight(0.9).
		FillOpacity(80).
		LineWidth(0).
		AlignValue(common.TimelineValueAlignmentLeft).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeSingle).
			Sort(common.SortOrderNone))
}

// tablePanel is a table whose footer is off but has a valid reducer: the
// SDK writes reducer null, which the schema rejects.
func tablePanel(title, description, unit string) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title(title).
		Description(description).
		Unit(unit).
		Datasource(ds()).
		Height(8).Span(24).
		CellHeight(common.TableCellHeightSm).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"}))
}

// organize hides the columns a table does not need and renames the rest.
func organize(exclude []string, rename map[string]string) dashboard.DataTransformerConfig {
	ex := map[string]bool{}
	for _, e := range exclude {
		ex[e] = true
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
		"excludeByName": ex, "renameByName": rename, "indexByName": map[string]int{},
	}}
}

// merge joins several table queries into one table, row by shared labels.
func merge() dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}
}

// datasourceVariable selects the Prometheus to query.
func datasourceVariable() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder("datasource").
		Label("Data source").
		Type("prometheus").
		Multi(false).
		IncludeAll(false)
}

// queryVariable is a label_values variable on the datasource variable,
// refreshed when the time range changes so that new accounts appear.
func queryVariable(name, label, query string, multi bool) *dashboard.QueryVariableBuilder {
	v := dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Datasource(ds()).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(multi).
		IncludeAll(multi)
	if multi {
		v = v.AllValue(".+").Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		})
	}
	return v
}

// jobInstanceVariables are the job and instance variables, chained, taken
// from tgsafety_account_state: every process running the monitor exports
// it (a library user's own process as well as safetyd).
func jobInstanceVariables() []*dashboard.QueryVariableBuilder {
	st := monitor.MetricAccountState.Name
	return []*dashboard.QueryVariableBuilder{
		queryVariable("job", "Job", "label_values("+st+", job)", true),
		queryVariable("instance", "Instance", "label_values("+st+`{job=~"$job"}, instance)`, true),
	}
}

// accountQuery lists the accounts of the selected jobs and instances.
func accountQuery() string {
	return "label_values(" + monitor.MetricAccountState.Name + `{job=~"$job", instance=~"$instance"}, account)`
}

// baseDashboard holds the settings both dashboards share: read-only (code
// is the source of truth), UTC-free browser time, shared crosshair, and a
// dropdown of the sibling dashboards by tag.
func baseDashboard(title, uid, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(titlePrefix+title).
		Uid(uid).
		Description(description).
		Tags([]string{Tag, "generated"}).
		Readonly().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Timepicker(dashboard.NewTimePickerBuilder().
			RefreshIntervals([]string{"10s", "30s", "1m", "5m", "15m", "1h"})).
		Link(dashboard.NewDashboardLinkBuilder("tgsafety").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{Tag}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true))
}

// thresholdsValue is thresholds in the raw form field overrides take.
func thresholdsValue(base string, steps ...any) map[string]any {
	ts := []map[string]any{{"color": base, "value": nil}}
	for i := 0; i+1 < len(steps); i += 2 {
		ts = append(ts, map[string]any{"value": steps[i], "color": steps[i+1]})
	}
	return map[string]any{"mode": "absolute", "steps": ts}
}

// ftoa formats a threshold for a description or an expression.
// epochMillis turns a Unix-seconds timestamp expression into the epoch
// milliseconds Grafana's date units (dateTimeAsIso, dateTimeFromNow)
// expect; without it every date reads as January 1970.
func epochMillis(expr string) string { return "(" + expr + ") * 1000" }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
