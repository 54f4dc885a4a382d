// Package audit runs a client program against the simulated Telegram and
// judges how it behaves: `scenario-run audit -- COMMAND` and, for teams
// that test in Go, Run with a function driving gotd clients.
//
// A run starts the test server on loopback with an Observer (testserver),
// creates the accounts with ready sessions, hands their details to the
// client in its environment (env.go; docs/audit.md), and records every
// call and connection the server sees. A fault plan (plan.go, strict YAML
// like scenario files) provokes Telegram's reactions — FLOOD_WAIT,
// PEER_FLOOD, dropped connections, limits, freezes, bans, revoked
// sessions — at a time or on the Nth call of a method (faults.go). When
// the client ends, or its time is up, rules (rule_*.go, one kind per
// file, listed in rules.go) judge the recording: each has an id, a
// severity and a one-line reason, and a broken rule names the calls that
// broke it. The Report says, per account, what it called, which faults
// it met and how it reacted, and which rules it broke.
//
// The package lives under scenarios because it is the same kind of thing
// (client behaviour judged against the simulation) and needs what
// scenarios may import: the test server and the monitor's profile,
// signals and guard numbers. Time is real time here: the client is
// another process with its own timers, so the server's virtual clock is
// moved with the real one.
package audit
