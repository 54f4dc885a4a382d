// Package httpserver is the daemon's HTTP listener: timeouts sized for
// small, quick requests, a cap on connections that closes the idlest one
// rather than refusing a scrape, and a Host check that answers 421 to
// names the operator did not configure (DNS rebinding).
package httpserver
