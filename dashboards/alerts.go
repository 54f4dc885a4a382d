package dashboards

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/daemon"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// Thresholds shared by panels and alerts, so a dashboard's red line is
// where the alert fires.
const (
	// riskWarning: a few recent adverse signals (one PEER_FLOOD alone
	// scores 55, a day-long flood wait 21).
	riskWarning = 40.0
	// riskCritical: two limiting signals, or frozen/banned (floors 90, 100).
	riskCritical = 80.0
	// budgetWarning: one more burst and the guard starts refusing.
	budgetWarning = 0.9
	// longWait is a flood wait on a budgeted method long enough to be a
	// budget spent rather than pacing (three times the monitor's 5-minute
	// LongWait watch threshold, docs/signals.md).
	longWait = 15 * time.Minute
)

// Severities, the values of every alert's severity label.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
)

// RunbookURL is docs/runbook.md as published; each alert links to its
// own section (the lower-cased alert name is the heading's anchor).
const RunbookURL = "https://github.com/tgsafety/tgsafety/blob/main/docs/runbook.md"

// Alert is one alerting rule. The list (Alerts) is rendered both as a
// Prometheus rule file and as Grafana rule groups, so the two cannot
// differ.
type Alert struct {
	// Name is CamelCase with the Tgsafety prefix; it is also the runbook
	// heading.
	Name string
	// Group is the rule group, one per concern.
	Group string
	// Expr is the PromQL; every series it returns is a firing instance.
	Expr string
	// For is how long Expr must hold before the alert fires.
	For time.Duration
	// Severity is SeverityCritical or SeverityWarning.
	Severity string
	// Summary is static text: it must read well in a list of alerts.
	Summary string
	// Description is a template over $labels and $value (Prometheus
	// syntax; the Grafana rendering maps $value to the query's value).
	Description string
}

// RunbookAnchor is the alert's section of docs/runbook.md.
func (a Alert) RunbookAnchor() string { return RunbookURL + "#" + strings.ToLower(a.Name) }

// Rule group names.
const (
	groupAccounts = "tgsafety-accounts"
	groupProbes   = "tgsafety-probes"
	groupDaemon   = "tgsafety-daemon"
)

// by is the labels every per-account alert keeps: which Prometheus job
// and which account, not which process. With replicas (docs/operations.md)
// an account moves between processes: an alert keyed by instance would
// resolve and fire again at every hand-over, its `for` would start over,
// and during the scrape or two both replicas export the account it would
// fire twice. Per-account expressions aggregate instance away (max
// without, or sum by by for counters, whose increases each replica counts
// once).
const by = "job, account"

// perAccount takes the instance label off an expression's series: the
// highest value any replica exports.
func perAccount(expr string) string { return "max without (instance) (" + expr + ")" }

// recentIncrease is how much the counters of selector grew over window.
// A series that appeared within the window counts its whole value only
// where all of it is known to be recent: Prometheus scraped the process
// one window ago (the series appeared since), or the process started
// within the window (its counters began at 0 then). Without that,
// starting Prometheus next to a daemon that has counted for weeks would
// fire for every old count.
func recentIncrease(selector string, window time.Duration) string {
	w := model.Duration(window).String()
	return increaseOf(selector, w, "up offset "+w+" or last_over_time(process_start_time_seconds["+w+"]) > time() - "+strconv.Itoa(int(window.Seconds())))
}

// untilOfState fires for every account in the state (the state series is
// what the alert must never miss), valued by the seconds left until the
// until gauge's time, or 0 where that gauge is missing: it exists only
// while its date is known.
func untilOfState(state, name, until string) string {
	inState := "(" + state + `{state="` + name + `"} == 1)`
	return "max by (" + by + ") ((" + until + " - time()) and on (job, instance, account) " + inState +
		" or on (job, instance, account) " + inState + " * 0)"
}

// Alerts returns every alert, in the order they are rendered.
func Alerts() []Alert {
	state := monitor.MetricAccountState.Name
	spamStale := 3 * probe.DefaultSchedules()[monitor.ProbeSpamBot].Interval
	return []Alert{
		{
			Name: "TgsafetyAccountBanned", Group: groupAccounts, Severity: SeverityCritical, For: 0,
			Expr:        perAccount(state + `{state=~"banned|dead"} == 1`),
			Summary:     "A Telegram account is banned or its session is dead.",
			Description: `Account {{ $labels.account }} is {{ $labels.state }}: every call fails until {{ if eq $labels.state "banned" }}the ban is reversed{{ else }}it logs in again{{ end }}.`,
		},
		{
			Name: "TgsafetyAccountFrozen", Group: groupAccounts, Severity: SeverityCritical, For: 0,
			Expr:    untilOfState(state, "frozen", monitor.MetricFrozenUntil.Name),
			Summary: "A Telegram account is frozen and will be deleted unless appealed.",
			Description: `Account {{ $labels.account }} is frozen: most write methods fail. ` +
				`{{ if gt $value 0.0 }}Telegram deletes it in {{ humanizeDuration $value }} unless an appeal succeeds.{{ else }}The deletion date is not known yet (run the freeze probe).{{ end }}`,
		},
		{
			Name: "TgsafetyAccountLimited", Group: groupAccounts, Severity: SeverityWarning, For: 0,
			Expr:    untilOfState(state, "limited", monitor.MetricLimitedUntil.Name),
			Summary: "A Telegram account is limited to mutual contacts.",
			Description: `Account {{ $labels.account }} is limited: messages and invites to strangers fail with PEER_FLOOD. ` +
				`{{ if gt $value 1e15 }}The limit is permanent until SpamBot says otherwise.{{ else if gt $value 0.0 }}It ends in {{ humanizeDuration $value }} (SpamBot's date, or assumed 24 h after the last PEER_FLOOD).{{ else if lt $value 0.0 }}Its end has passed; the next scrape should show the account out of limited.{{ else }}When it ends is not known.{{ end }}`,
		},
		{
			Name: "TgsafetyPeerFlood", Group: groupAccounts, Severity: SeverityWarning, For: 0,
			Expr:        "sum by (" + by + ") (" + recentIncrease(monitor.MetricSignals.Name+`{kind="peer_flood"}`, 30*time.Minute) + ") > 0",
			Summary:     "Telegram answered PEER_FLOOD to an account.",
			Description: `Account {{ $labels.account }} got {{ $value | humanize }} PEER_FLOOD answers in the last 30 minutes: it wrote to too many strangers and is limited to mutual contacts. Stop cold messages from it now.`,
		},
		{
			Name: "TgsafetyLongFloodWait", Group: groupAccounts, Severity: SeverityWarning, For: 0,
			Expr: "max by (" + by + ", method) (" + monitor.MetricFloodWaitUntil.Name + `{method=~"` + writeMethods() + `"}) - time() > ` +
				strconv.Itoa(int(longWait.Seconds())),
			Summary:     "An account must wait a long time before a write method works again.",
			Description: `Account {{ $labels.account }} is under a flood wait on {{ $labels.method }} for another {{ humanizeDuration $value }}. Waits this long on write methods mean a daily budget is spent; more writes risk PEER_FLOOD.`,
		},
		{
			Name: "TgsafetyRiskHigh", Group: groupAccounts, Severity: SeverityWarning, For: 15 * time.Minute,
			Expr:        perAccount(monitor.MetricRiskScore.Name) + " >= " + ftoa(riskWarning) + " < " + ftoa(riskCritical),
			Summary:     "An account's risk score is high.",
			Description: `Account {{ $labels.account }} has a risk score of {{ $value | printf "%.0f" }} (warning at ` + ftoa(riskWarning) + `): recent adverse signals add up. Look at its signals on the Account detail dashboard.`,
		},
		{
			Name: "TgsafetyRiskCritical", Group: groupAccounts, Severity: SeverityCritical, For: 5 * time.Minute,
			Expr:        perAccount(monitor.MetricRiskScore.Name) + " >= " + ftoa(riskCritical),
			Summary:     "An account's risk score is critical.",
			Description: `Account {{ $labels.account }} has a risk score of {{ $value | printf "%.0f" }} (critical at ` + ftoa(riskCritical) + `): it is limited twice over, frozen or banned.`,
		},
		{
			Name: "TgsafetyBudgetNearlyExhausted", Group: groupAccounts, Severity: SeverityWarning, For: 5 * time.Minute,
			Expr:        perAccount(guard.MetricBudgetUsed.Name) + " > " + ftoa(budgetWarning),
			Summary:     "An account has used more than 90% of a guard budget.",
			Description: `Account {{ $labels.account }} has used {{ $value | humanizePercentage }} of its {{ $labels.budget }} budget{{ if gt $value 1.0 }}: more than the guard allows, so calls bypassed an enforcing guard (observe mode){{ else }}: the guard will soon refuse these calls{{ end }}.`,
		},
		{
			Name: "TgsafetySpamBotProbeStale", Group: groupProbes, Severity: SeverityWarning, For: 30 * time.Minute,
			// The gauge appears with the first answer (a new account's first
			// probe is up to an hour away); "> 0" keeps older daemons, which
			// exported 0 until then, quiet. An account that never gets an
			// answer is TgsafetySpamBotProbeFailing's case.
			Expr:        "(time() - " + perAccount(probe.MetricProbeLastSuccess.Name+`{probe="spambot"}`) + " > " + strconv.Itoa(int(spamStale.Seconds())) + ") and " + perAccount(probe.MetricProbeLastSuccess.Name+`{probe="spambot"}`) + " > 0",
			Summary:     "SpamBot has not been asked successfully for a long time.",
			Description: `The SpamBot probe of account {{ $labels.account }} last got a conclusive answer {{ humanizeDuration $value }} ago (it runs every ` + spamStaleInterval() + `): a limit that only SpamBot can see would go unnoticed.`,
		},
		{
			Name: "TgsafetySpamBotProbeFailing", Group: groupProbes, Severity: SeverityWarning, For: 0,
			Expr:        "sum by (" + by + ") (" + recentIncrease(probe.MetricProbeErrors.Name+`{probe="spambot"}`, 24*time.Hour) + ") >= 3",
			Summary:     "The SpamBot probe keeps failing.",
			Description: `The SpamBot probe of account {{ $labels.account }} failed or was inconclusive {{ $value | humanize }} times in a day (no reply, RPC errors, an answer it could not read). The account shows unknown rather than free.`,
		},
		{
			Name: "TgsafetyClientDisconnected", Group: groupDaemon, Severity: SeverityWarning, For: 15 * time.Minute,
			Expr:        perAccount(daemon.MetricClientConnected.Name) + " == 0 unless on (" + by + ") " + perAccount(state+`{state=~"banned|dead"} == 1`),
			Summary:     "safetyd cannot keep an account's client connected.",
			Description: `No safetyd replica has had a connected client for account {{ $labels.account }} for 15 minutes, and the account is not banned or dead: it keeps reconnecting, so neither its signals nor its probes arrive.`,
		},
		{
			Name: "TgsafetyStoreFailing", Group: groupDaemon, Severity: SeverityWarning, For: 0,
			Expr:        "sum by (job, instance) (increase(" + store.MetricWriteErrors.Name + "[15m]) + increase(" + store.MetricDroppedEvents.Name + "[15m])) > 0",
			Summary:     "safetyd is losing history events.",
			Description: `safetyd on {{ $labels.instance }} failed to store {{ $value | humanize }} events or batches in the last 15 minutes: the history (and the state restored after a restart) has gaps. Metrics and alerts are not affected.`,
		},
		{
			Name: "TgsafetyDaemonDown", Group: groupDaemon, Severity: SeverityCritical, For: 5 * time.Minute,
			Expr:        "up == 0 and on (job, instance) max_over_time(" + daemon.MetricBuildInfo.Name + "[1d])",
			Summary:     "Prometheus cannot scrape a tgsafety daemon.",
			Description: `Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for 5 minutes; it exported tgsafety metrics within the last day. Nothing about its accounts is known while it is down, and no other tgsafety alert can fire for them.`,
		},
		{
			Name: "TgsafetyMetricsAbsent", Group: groupDaemon, Severity: SeverityCritical, For: 15 * time.Minute,
			Expr:        "absent(" + monitor.MetricAccountState.Name + ")",
			Summary:     "No tgsafety account metrics reach Prometheus.",
			Description: `Prometheus has had no ` + monitor.MetricAccountState.Name + ` series for 15 minutes: no monitor is scraped (scrape configuration, network, or every daemon is down), so no other tgsafety alert can fire.`,
		},
	}
}

// writeMethods is a regular expression of every TL method the limits
// profile budgets, except logging in and lookups: the methods that write.
func writeMethods() string {
	p := limits.Default()
	seen := map[string]bool{}
	var ms []string
	for a, ap := range p.Actions {
		switch a {
		case limits.SendCode, limits.ResolveUsername, limits.SearchContacts:
			// Logging in and lookups are budgeted too, but a long wait on
			// them says nothing about writes; resolveUsername's 16 h
			// lockout would otherwise make this alert mostly lookup noise
			// (the flood-wait panels show it).
			continue
		}
		for _, m := range ap.Methods {
			if !seen[m] {
				seen[m] = true
				// Escaped for the regexp, then once more for the
				// PromQL string literal the regexp sits in.
				ms = append(ms, strings.ReplaceAll(regexp.QuoteMeta(m), `\`, `\\`))
			}
		}
	}
	sort.Strings(ms)
	return strings.Join(ms, "|")
}

// spamStaleInterval is the SpamBot probe's default interval, for text.
func spamStaleInterval() string {
	return probe.DefaultSchedules()[monitor.ProbeSpamBot].Interval.String()
}
