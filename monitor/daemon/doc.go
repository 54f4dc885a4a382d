// Package daemon holds the metrics of a process that runs accounts: the
// safetyd daemon and its demo. They live under monitor, not in the
// daemon's main package, so that dashboards and alert rules are built from
// the same definitions the daemon registers.
package daemon
