package dedup

import (
	"sync"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
)

// Sink is a monitor.Sink for the daemon: it passes every event to
// next except the signal events the API commits itself through
// Writer.Commit, so that a reported signal is stored once. Wiring:
//
//	sink := dedup.New(writer)
//	mon, _ := monitor.New(monitor.Options{Sink: sink, ...})
//	api.New(api.Deps{Writer: writer, Dedup: sink, ...})
type Sink struct {
	next monitor.Sink

	mu      sync.Mutex
	pending map[key]int
}

type key struct {
	account, method string
	t               int64
	sig             signal.Signal
}

// New returns a Sink passing events on to next.
func New(next monitor.Sink) *Sink {
	return &Sink{next: next, pending: map[key]int{}}
}

// Expect tells d that the API commits the signal event ObserveSignal is
// about to emit for these arguments.
func (d *Sink) Expect(account string, t time.Time, method string, s signal.Signal) {
	k := key{account: account, method: method, t: t.UnixNano(), sig: s}
	d.mu.Lock()
	d.pending[k]++
	d.mu.Unlock()
}

// Record implements monitor.Sink.
func (d *Sink) Record(e monitor.Event) {
	if e.Type == monitor.EventSignal {
		k := key{account: e.Account, method: e.Method, t: e.Time.UnixNano(), sig: e.Signal}
		d.mu.Lock()
		n, ok := d.pending[k]
		if ok {
			if n <= 1 {
				delete(d.pending, k)
			} else {
				d.pending[k] = n - 1
			}
		}
		d.mu.Unlock()
		if ok {
			return
		}
	}
	d.next.Record(e)
}
