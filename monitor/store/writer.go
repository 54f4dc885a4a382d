package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/clock"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/monitor"
)

// WriterOptions configures a Writer. The zero value gives the defaults.
type WriterOptions struct {
	// MaxBatch is how many events one transaction holds at most (default
	// 1000): large enough to amortise the fsync, small enough that a
	// transaction holds the write lock only a few milliseconds. One
	// Commit's events are never split, so a batch exceeds MaxBatch when a
	// single Commit does.
	MaxBatch int
	// MaxDelay is how long a recorded event may wait for its batch to fill
	// (default 50ms); a waiting Commit does not wait for it. It is real
	// time, not the monitor's clock: it batches I/O, it does not simulate
	// anything.
	MaxDelay time.Duration
	// Clock measures MaxDelay; nil means the system clock. Tests inject a
	// manual clock so that "written after MaxDelay" needs no sleeping.
	Clock clock.Clock
	// Buffer is how many events may be accepted and not yet written
	// (default 65536; an event takes about 200 bytes in the queue, plus
	// its strings). Beyond it Record drops events and Commit waits, so a
	// stalled disk cannot exhaust memory.
	Buffer int
	// Logger receives drop and write-error reports; nil means none.
	Logger *zap.Logger
	// Registerer receives the metrics (Metrics). Nil means the
	// Registerer of the store's Options, if the store is an SQLite opened
	// with one; otherwise the metrics are not registered.
	Registerer prometheus.Registerer
}

// Defaults of WriterOptions.
const (
	DefaultMaxBatch = 1000
	DefaultMaxDelay = 50 * time.Millisecond
	DefaultBuffer   = 65536
)

// Writer batches events from many goroutines into few transactions: it is
// the monitor's Sink, and the path by which the API stores reported
// signals. Record never blocks and may drop; Commit blocks and never
// acknowledges an event that is not committed (see the package
// documentation). Run must be running for events to be written before
// Close.
type Writer struct {
	st       Store
	log      *zap.Logger
	maxBatch int
	maxDelay time.Duration
	clock    clock.Clock
	buffer   int
	m        writerMetrics

	mu sync.Mutex
	// queue holds accepted events not yet taken by a flush.
	queue []entry
	// waiting counts the events in queue; unfinished those in queue plus
	// those being written, which Buffer bounds.
	waiting, unfinished int
	// urgent is set while a Commit waits in queue.
	urgent bool
	closed bool
	// space is closed (and replaced) whenever unfinished shrinks, to wake
	// Commits waiting for room.
	space chan struct{}

	wake     chan struct{} // capacity 1: something to look at
	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	// flushing is a lock (capacity 1) that a flush holds, so batches are
	// written in order and Close can give up waiting when its ctx ends.
	flushing chan struct{}
	// Reused by the flush holding flushing.
	spare []entry
	batch []monitor.Event

	lastDropLog atomic.Int64 // unix nanoseconds
	dropsToLog  atomic.Int64
	// failing is set while the last write failed (disk full, I/O error)
	// and cleared by the next that succeeds.
	failing atomic.Bool
}

// entry is one queued Record event or one Commit call.
type entry struct {
	ev   monitor.Event   // Record
	evs  []monitor.Event // Commit
	done chan error      // Commit: receives the transaction's result
}

func (e *entry) len() int {
	if e.done != nil {
		return len(e.evs)
	}
	return 1
}

var _ monitor.Sink = (*Writer)(nil)

// NewWriter returns a Writer that writes to st. Start its Run loop, and
// Close it before closing st.
func NewWriter(st Store, opts WriterOptions) *Writer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Clock == nil {
		opts.Clock = clock.System
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	reg := opts.Registerer
	if reg == nil {
		if p, ok := st.(interface{ metricsRegisterer() prometheus.Registerer }); ok {
			reg = p.metricsRegisterer()
		}
	}
	return &Writer{
		st:       st,
		log:      opts.Logger,
		maxBatch: opts.MaxBatch,
		maxDelay: opts.MaxDelay,
		clock:    opts.Clock,
		buffer:   opts.Buffer,
		m:        newWriterMetrics(reg, opts.Logger),
		space:    make(chan struct{}),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		flushing: make(chan struct{}, 1),
	}
}

// Failing reports whether the last write to the store failed: the daemon
// is not ready while nothing it acknowledges could be stored.
func (w *Writer) Failing() bool { return w.failing.Load() }

// Record implements monitor.Sink. It never blocks the RPC path: it queues
// the event and returns. When Buffer events are already waiting, after
// Close, or when the event cannot be encoded, the event is dropped and
// counted in tgsafety_store_dropped_events_total (and logged at most once
// a second), because a gap in the history is better than RPCs slowed to
// the speed of a struggling disk.
func (w *Writer) Record(e monitor.Event) {
	if err := checkEvent(e); err != nil {
		w.drop(1, "unencodable event", err)
		return
	}
	w.mu.Lock()
	if w.closed || w.unfinished >= w.buffer {
		closed := w.closed
		w.mu.Unlock()
		if closed {
			w.drop(1, "writer closed", nil)
		} else {
			w.drop(1, "buffer full", nil)
		}
		return
	}
	w.queue = append(w.queue, entry{ev: e})
	w.waiting++
	w.unfinished++
	n := w.waiting
	w.mu.Unlock()
	// Run only needs waking to start the delay and when a batch is full.
	if n == 1 || n == w.maxBatch {
		w.signal()
	}
}

// Commit stores events and returns once the transaction holding them has
// committed, with its error: the API acknowledges reported signals only
// after it returns nil. It waits for room in the buffer rather than drop.
// It returns ErrClosed after Close, an error for an event that cannot be
// encoded (storing nothing), and ctx's error if ctx ends first, in which
// case the events may still be written. The events are copied.
func (w *Writer) Commit(ctx context.Context, events []monitor.Event) error {
	if len(events) == 0 {
		return nil
	}
	for i, e := range events {
		if err := checkEvent(e); err != nil {
			return fmt.Errorf("store: event %d (%s, %s): %w", i, e.Account, e.Type, err)
		}
	}
	ent := entry{evs: slices.Clone(events), done: make(chan error, 1)}
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		// A Commit larger than the buffer goes in alone.
		if w.unfinished == 0 || w.unfinished+len(ent.evs) <= w.buffer {
			w.queue = append(w.queue, ent)
			w.waiting += len(ent.evs)
			w.unfinished += len(ent.evs)
			w.urgent = true
			w.mu.Unlock()
			break
		}
		space := w.space
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-space:
		}
	}
	w.signal()
	select {
	case err := <-ent.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run is the batching loop: it writes a batch when MaxBatch events wait,
// when the first waiting event is MaxDelay old, or at once for a Commit.
// When ctx ends it writes what is queued (without ctx's cancellation, so
// the last batch is not aborted) and returns ctx's error, or that write's
// error; after Close it returns nil. Events recorded after Run returned
// are written by Close.
func (w *Writer) Run(ctx context.Context) error {
	wctx := context.WithoutCancel(ctx)
	timer := w.clock.Timer(w.maxDelay)
	timer.Stop()
	defer timer.Stop()
	armed := false
	for {
		w.mu.Lock()
		n, urgent := w.waiting, w.urgent
		w.mu.Unlock()
		if n > 0 && (urgent || n >= w.maxBatch) {
			if armed {
				timer.Stop()
				armed = false
			}
			_ = w.flush(wctx)
			continue
		}
		if n > 0 && !armed {
			timer.Reset(w.maxDelay)
			armed = true
		}
		select {
		case <-ctx.Done():
			if err := w.flush(wctx); err != nil {
				return err
			}
			return ctx.Err()
		case <-w.stop:
			_ = w.flush(wctx)
			return nil
		case <-w.wake:
		case <-timer.C():
			armed = false
			_ = w.flush(wctx)
		}
	}
}

// Close stops accepting events (Record drops, Commit returns ErrClosed),
// writes everything queued and returns the first write error, or ctx's
// error if ctx ends before the queue is written. It works whether or not
// Run is running, and stops Run.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	close(w.space) // wake Commits waiting for room: they see closed
	w.space = make(chan struct{})
	w.mu.Unlock()
	w.stopOnce.Do(func() { close(w.stop) })
	return w.flush(ctx)
}

// Flush writes everything queued now and returns the first write error: a
// replica giving an account back calls it before it releases the lease,
// so that nothing observed while it held the account is left unwritten.
func (w *Writer) Flush(ctx context.Context) error { return w.flush(ctx) }

// flush writes everything queued when it starts, in batches of at most
// MaxBatch events (one Commit is never split), and returns the first
// error. Every Commit in a batch gets the batch's result.
func (w *Writer) flush(ctx context.Context) error {
	select {
	case w.flushing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.flushing }()

	w.mu.Lock()
	entries := w.queue
	w.queue = w.spare[:0]
	w.waiting = 0
	w.urgent = false
	w.mu.Unlock()

	var first error
	for i := 0; i < len(entries); {
		batch := w.batch[:0]
		records := 0
		j := i
		for ; j < len(entries); j++ {
			e := &entries[j]
			if len(batch) > 0 && len(batch)+e.len() > w.maxBatch {
				break
			}
			if e.done != nil {
				batch = append(batch, e.evs...)
			} else {
				batch = append(batch, e.ev)
				records++
			}
		}
		err := w.write(ctx, batch)
		var fenced *FencedError
		if errors.As(err, &fenced) {
			// The other accounts' events were written: only the Commits
			// and records of the fenced accounts failed.
			refused := make(map[string]bool, len(fenced.Accounts))
			for _, a := range fenced.Accounts {
				refused[a] = true
			}
			dropped := 0
			for k := i; k < j; k++ {
				e := &entries[k]
				if e.done == nil {
					if refused[e.ev.Account] {
						dropped++
					}
					continue
				}
				var cerr error
				for _, ev := range e.evs {
					if refused[ev.Account] {
						cerr = err
						break
					}
				}
				e.done <- cerr
			}
			w.drop(dropped, "the account's lease moved to another replica", nil)
		} else {
			for k := i; k < j; k++ {
				if entries[k].done != nil {
					entries[k].done <- err
				}
			}
			if err != nil {
				if first == nil {
					first = err
				}
				w.drop(records, "write failed", err)
			}
		}
		w.mu.Lock()
		w.unfinished -= len(batch)
		close(w.space)
		w.space = make(chan struct{})
		w.mu.Unlock()
		clear(batch) // release strings while idle
		w.batch = batch[:0]
		i = j
	}
	clear(entries)
	w.spare = entries[:0]
	return first
}

// write appends one batch and counts it.
func (w *Writer) write(ctx context.Context, batch []monitor.Event) error {
	start := time.Now()
	err := w.st.Append(ctx, batch)
	w.m.batch.Observe(time.Since(start).Seconds())
	if errors.Is(err, ErrFenced) {
		// The store works; some accounts are another replica's now.
		w.failing.Store(false)
		return err
	}
	w.failing.Store(err != nil)
	if err != nil {
		w.m.errors.Inc()
		w.log.Error("Store write failed", zap.Int("events", len(batch)), zap.Error(err))
		return err
	}
	w.m.written.Add(float64(len(batch)))
	return nil
}

// drop counts n dropped events and logs them at most once a second, with
// the number dropped since the last log line, so that a flood of drops
// does not become a flood of log lines.
func (w *Writer) drop(n int, why string, err error) {
	if n == 0 {
		return
	}
	w.m.dropped.Add(float64(n))
	w.dropsToLog.Add(int64(n))
	now := time.Now().UnixNano()
	last := w.lastDropLog.Load()
	if now-last < int64(time.Second) || !w.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	fields := []zap.Field{zap.String("reason", why), zap.Int64("dropped", w.dropsToLog.Swap(0))}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	w.log.Warn("Store dropped events", fields...)
}
