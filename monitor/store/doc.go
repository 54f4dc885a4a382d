// Package store is the daemon's durable history: every event the monitor
// emits (classified signals, probe results, state changes) and the latest
// snapshot of every account, so that a restarted daemon resumes with the
// state and risk it had instead of starting every account at "unknown".
//
// # Interface
//
// Store is an interface, and the daemon depends on nothing else. SQLite
// implements it with one local file, which is enough for one daemon. A
// fleet split across several daemons will want one shared database; a
// second implementation (PostgreSQL, say) then only has to provide the six
// methods, and nothing in the method set assumes a single writer or a local
// file: events are appended, never updated; snapshots are upserted per
// account and an older snapshot never replaces a newer one, so daemons that
// own different accounts cannot overwrite each other and a daemon that
// lost ownership late cannot roll an account back.
//
// # Durability
//
// SQLite runs in WAL mode (readers never block the writer, one fsync per
// commit rather than two) with synchronous=FULL: a transaction that
// returned is on stable storage, and survives power loss as well as a
// crash or SIGKILL of the daemon. synchronous=NORMAL would survive a
// process crash too (the write only has to reach the operating system), but
// may lose the last transactions on power loss, and the API promises that
// an acknowledged event is never lost; FULL costs one fsync per
// transaction, which batching amortises (see the benchmarks in
// bench_test.go). busy_timeout lets a second process (a backup, sqlite3 on
// the command line) hold the database briefly without failing writes;
// foreign keys are enforced. Writes go through one connection, whose page
// cache stays warm from one batch to the next; reads use a small pool of
// read-only connections and never wait for a write.
//
// The database file is created with mode 0600 before SQLite opens it, and
// the -wal and -shm files are given the database file's permissions after
// opening, whatever the process umask: the history names accounts and
// describes what they did.
//
// # Schema and migrations
//
// The schema is a list of migrations applied in order, each in its own
// transaction together with the row that records it in schema_migrations.
// Opening a database runs the missing ones; opening it again runs none. A
// database written by a newer build (a schema version this build does not
// know) is refused with a SchemaVersionError naming both versions, rather
// than being written with assumptions that no longer hold.
//
// Events are stored as JSON (monitor.Event's own encoding) next to the few
// columns that queries select on (account, time) or that an operator
// filters on with sqlite3 (type). When Event gains a field, old rows
// decode with the field's zero value and new rows keep it, without a
// migration; only a new query column needs one. The
// encoding round-trips exactly (times to the nanosecond, with their zone
// offset; risk as the same float64), and an event that cannot be encoded
// (an enum value outside its table, a NaN risk, a year outside 0-9999) is
// refused before anything is written, because a row that cannot be read
// back would break every later read of the account's history.
//
// # Batching
//
// Append writes all its events in one transaction with one prepared
// statement, so the cost of the fsync is shared by the whole batch. Writer
// turns the monitor's stream of single events into such batches: it is the
// monitor's Sink. It has two entry points with different promises:
//
//   - Record is called on the path of a failed RPC and never waits for the
//     disk. It puts the event in a bounded buffer (WriterOptions.Buffer
//     events) and returns. When the buffer is full, because the disk
//     cannot keep up or is failing, the event is dropped, counted in
//     tgsafety_store_dropped_events_total and logged at most once a second:
//     slowing the account's RPCs down to the speed of the disk would be
//     worse than a gap in the history, and the account's state, which is
//     kept in memory and snapshotted, does not depend on the history.
//     Events of a batch whose transaction fails are dropped and counted the
//     same way.
//   - Commit is for events that someone is told were stored (the API
//     answers 202 to POST /api/v1/signals only after Commit returns nil).
//     It waits for room in the buffer, then until the transaction holding
//     its events has committed, and returns that transaction's error. If
//     its context ends first it returns the context's error and the events
//     may or may not be stored: the client was not told they were, and
//     retries.
//
// A batch is written when it holds WriterOptions.MaxBatch events, when
// WriterOptions.MaxDelay has passed since its first event, or at once when
// a Commit is waiting. Events that arrive while a transaction is being
// written make up the next batch, so under load batches grow on their own
// (group commit) and Commit's latency stays about one transaction.
//
// Measured with bench_test.go on a 2-vCPU VM (ext4 on a virtual disk,
// about 0.3 ms per fsync): Append of one event about 2,000 events/s (one
// fsync each), of 100 about 17,000, of 1000 about 30,000 (28,000-36,000);
// Record through a Writer whose buffer drops nothing about 27,000-31,000
// written events/s (BenchmarkWriterNoDrops; with the default buffer the
// benchmark records faster than that and the excess is dropped); concurrent
// one-event Commits from 32 goroutines about 11,000-17,000 events/s. The
// transpiled SQLite spends most of its time in B-tree work and page I/O,
// not in Go.
//
// # Retention
//
// Prune deletes events older than a given time, in chunks so that appends
// are never held up for long; PruneOlderThan applies a retention period
// (DefaultRetention, 90 days, when none is configured). Snapshots are not
// pruned: there is one per account. Deleted pages are reused by later
// events; the file does not shrink unless it is vacuumed.
//
// # Metrics
//
// Metrics lists the store's metric definitions. The Writer exports them,
// on WriterOptions.Registerer or, when that is nil, on the Options.Registerer
// of the store it writes to.
package store
