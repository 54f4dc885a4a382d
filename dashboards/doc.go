// Package dashboards generates tgsafety's Grafana dashboards and alert
// rules from the metric definitions of the monitor, the probes, the guard,
// the store and the daemon (Metrics), so that they cannot drift from what
// is exported.
//
// Layout, after grafana-foundation-sdk's own examples: common.go holds the
// small factories (panels, queries, variables), fleet.go and account.go
// assemble the two dashboards from one file per row (fleet_*.go,
// account_*.go), finish.go repairs the SDK's known bad defaults, alerts.go
// is the one list of alerts and rules.go renders it for Prometheus and for
// Grafana. Files renders everything; gen (make dashboards) writes it into
// generated/, and the tests fail when the committed files are stale, when
// the JSON does not validate against the SDK's schemas (schema/), when an
// expression names a metric or label the real registry does not export,
// when promtool rejects a rule or its unit tests, or when a real
// Prometheus scraping safetyd demo gets no data for a query. See
// docs/dashboards.md.
package dashboards
