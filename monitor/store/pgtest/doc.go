// Package pgtest gives tests a real, throwaway PostgreSQL server: initdb
// into a temporary directory, the server listening only on a unix socket
// there (run as the postgres user when the tests run as root, since
// PostgreSQL refuses root), a fresh database per test, and everything
// removed when the package's tests end. It is for tests only; the
// daemon connects to the operator's own PostgreSQL.
package pgtest
