// Package testserver is a simulated Telegram for tests: an in-process
// MTProto server, built on gotd's tgtest, that real gotd clients connect to
// (over an in-memory transport or TCP) and that answers like Telegram's
// anti-abuse system — escalating flood waits, PEER_FLOOD and growing
// limits, bans, freezes, and a @SpamBot that tells an account where it
// stands — on a virtual clock, so a day of account life takes milliseconds.
//
// The policy is driven by the limits profile (monitor/limits) that the
// guard also enforces. Tests drive the world through the control API
// (CreateAccount, Session, Limit, Ban, Freeze, Inject, Advance, ...), in Go
// or over HTTP (ControlHandler). See docs/testserver.md.
package testserver
