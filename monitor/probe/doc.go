// Package probe actively reads an account's status, because passive
// signals only show trouble once Telegram has already punished a call.
//
// There is one file per probe kind: spambot (asks @SpamBot), freeze
// (help.getAppConfig), self (the self user's flags, on every connect) and
// sessions (account.getAuthorizations). Each probe reports its result to
// the account (monitor.Account.Observe*). A Scheduler runs an account's
// probes on the injected clock, with an interval, random jitter and a hard
// floor per kind: asking SpamBot too often is itself suspicious, so no
// request — not even an operator's or a PEER_FLOOD's — runs a probe before
// its floor. See docs/probes.md.
package probe
