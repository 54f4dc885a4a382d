// Package view is how the daemon shows an account to the outside: the
// JSON shape the API answers with and the status page renders (both read
// the same monitor snapshot through it, so they never disagree), and the
// order of urgency of the states that tables and legends follow.
package view
