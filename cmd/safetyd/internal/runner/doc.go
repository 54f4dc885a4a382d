// Package runner keeps one account's gotd client running for the daemon:
// connect through the guard and monitor middlewares, run the account's
// probes on schedule, reconnect with backoff after failures, and stop for
// good when Telegram says the account or its session is gone (401),
// because reconnecting a banned account only adds failed logins to its
// record. Everything runners share (monitor, metrics, clocks, how to
// connect) comes in an Env from the service.
package runner
