// Package scenarios is where tgsafety tests client behaviour against the
// simulated Telegram (testserver) with real gotd clients on virtual time.
// Today it holds the integration tests of the monitor, probes and guard
// (including the decisive one: the guard keeps 200 cold DMs a day from
// ever reaching PEER_FLOOD). The declarative scenario files, their runner
// and the Ginkgo suite arrive with the scenarios issue.
package scenarios
