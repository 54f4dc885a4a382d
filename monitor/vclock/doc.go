// Package vclock is a manual virtual clock implementing gotd's clock.Clock.
//
// tgsafety's state machine, probes and the test server's policy all run on
// an injected clock so that a day of account life can be replayed in
// milliseconds. gotd/neo's simulator can deadlock when travelled quickly
// (its tickers send on a one-slot channel under the clock lock); this clock
// never blocks: a timer's channel has room for its single value and a
// ticker's tick is dropped when the previous one was not yet received, as
// the standard library's tickers do.
//
// Keep MTProto itself on the system clock (see docs/architecture.md): only
// simulation and monitoring logic should see virtual time.
package vclock
