// Package monitor watches Telegram accounts driven by MTProto clients and
// tells their operators how close each one is to being punished.
//
// Every RPC an account makes passes through the account's Middleware, which
// classifies the outcome (package signal) without changing or delaying the
// call. An Account folds those signals, and later the results of active
// probes, into a State (ok, watch, throttled, limited, frozen, banned, dead
// or unknown), a set of active flood waits and a risk score from 0 to 100.
// A Monitor holds the accounts, exports them as Prometheus metrics, keeps a
// bounded ring of recent events per account, hands every event to a Sink
// and tells subscribers about state changes.
//
// All time comes from an injected clock.Clock, so the state machine runs on
// virtual time in tests and simulations: the time at which a flood wait or a
// limit ends is a deadline, and an account evaluated later replays every
// transition at its exact time.
//
// The state model and the risk formula are described in docs/signals.md;
// the metrics in docs/metrics.md.
package monitor
