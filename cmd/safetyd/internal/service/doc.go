// Package service is the daemon's core, shared by `safetyd run` and
// `safetyd demo` so that the demo shows exactly the production code path:
// one monitor, one store writer, one probe recorder, one runner (package
// runner: gotd client, guard, probe scheduler) per account, and the HTTP
// interface (package api, package status and /metrics). New builds it;
// Start restores every account from the store before anything is
// acknowledged; Reload applies a new configuration; Shutdown stops in
// order so that nothing acknowledged is lost. Serve runs all of it as a
// process does: locks, store, listener, SIGHUP, ordered shutdown.
package service
