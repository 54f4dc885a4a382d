// Package api is the daemon's JSON HTTP API (docs/api.md): account states
// and histories for dashboards and scripts (read-only, no token), probe
// requests and the ingest endpoint through which applications report RPC
// errors the middleware did not see (bearer token). A reported signal is
// acknowledged (202) only once the store has committed it.
//
// It reads the daemon through Deps, not through the service, so that its
// tests wire a real monitor and store without a running fleet.
package api
