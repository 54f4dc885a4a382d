// Package limits is tgsafety's executable limits profile: per action (DM to
// a non-contact, username resolve, channel join, ...) the windows and daily
// budgets within which Telegram tolerates an account, stricter values for
// young accounts, what Telegram does when they are exceeded, and where every
// number comes from.
//
// Telegram publishes limits for bots only. For user accounts every number
// is an observation or an estimate, so each one carries its source. The
// same profile drives the test server's simulated anti-abuse policy and the
// guard that keeps a real account inside its budgets, so what the tests
// prove is what the guard enforces.
//
// A profile is YAML (see docs/limits.md); Default returns the embedded one
// and Load reads a file with errors that name the file, line and field.
package limits
