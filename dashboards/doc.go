// Package dashboards will generate the Grafana dashboards and alert rules
// from the monitor's metric definitions (issue: dashboards). It is empty
// until then.
package dashboards
