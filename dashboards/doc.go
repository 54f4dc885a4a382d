// Package dashboards generates tgsafety's Grafana dashboards and alert
// rules from the metric definitions of the monitor, the probes and the
// guard (Metrics), so that they cannot drift from what is exported. The
// generators themselves arrive with the dashboards issue; today the
// package holds the combined definitions and the check that
// docs/metrics.md matches them.
package dashboards
