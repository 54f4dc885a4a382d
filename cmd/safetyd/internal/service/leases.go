package service

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/api"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// A replica of a PostgreSQL fleet runs only the accounts whose lease it
// holds (store.Leases): it restores and starts an account when it takes
// its lease, stops it, saves its snapshot and flushes its events before
// giving it back, and stops it at once when the lease is lost. Reports
// for accounts it does not hold go to the store's inbox, and reports in
// the inbox for accounts it holds are applied here.

// Inbox is what a replica needs of the shared store for reports: the
// PostgreSQL store (store.Postgres).
type Inbox interface {
	Enqueue(ctx context.Context, events []monitor.Event) error
	Inbox(ctx context.Context, account string, n int) ([]store.InboxItem, error)
	Deliver(ctx context.Context, ids []int64, events []monitor.Event) error
	LeaseHolders(ctx context.Context) (map[string]store.LeaseHolder, error)
}

// undelivered are inbox reports applied to their account whose delivery
// to the store failed (not fenced): they are retried as they are, never
// applied twice.
type undelivered struct {
	ids    []int64
	events []monitor.Event
}

// followLeases starts and stops accounts as this replica's leases come
// and go, until ctx ends.
func (s *Service) followLeases(ctx context.Context) {
	l := s.opts.Leases
	pending := map[string]undelivered{}
	retry := s.opts.Wall.Ticker(5 * time.Second)
	defer retry.Stop()
	events := make(chan []store.LeaseEvent)
	go func() {
		defer close(events)
		for {
			evs, err := l.Events(ctx)
			if err != nil {
				return
			}
			select {
			case events <- evs:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var evs []store.LeaseEvent
		select {
		case <-ctx.Done():
			return
		case evs = <-events:
		case <-retry.C():
			for name := range pending {
				s.drainInbox(ctx, name, pending)
			}
			continue
		}
		s.applyLeaseEvents(ctx, evs, pending)
		s.inst.Leases.Set(float64(len(l.Held())))
	}
}

func (s *Service) applyLeaseEvents(ctx context.Context, evs []store.LeaseEvent, pending map[string]undelivered) {
	// Leases lost and given back are stopped together (stops): a replica
	// that lost 150 leases at once stopped and flushed them one by one for
	// over a minute, while a later term of some of them began elsewhere.
	var st stops
	var snaps map[string]monitor.Snapshot
	for _, e := range evs {
		if ctx.Err() != nil {
			// Shutting down: what is left is given back by Close; an
			// account restored now could not read the store.
			break
		}
		log := s.log.With(zap.String("account", e.Account), zap.Int64("epoch", e.Epoch))
		switch e.Kind {
		case store.LeaseTaken:
			s.applyStops(ctx, &st, pending)
			s.terms.set(e.Account, e.Epoch)
			s.mu.Lock()
			a, ok := s.cfg.Account(e.Account)
			started := false
			if ok {
				if last, err := s.addLocked(e.Account, &snaps); err == nil {
					s.startLocked(a, last)
					started = true
				} else {
					log.Error("Cannot restore the account of a lease taken; giving the lease back", zap.Error(err))
				}
			}
			s.mu.Unlock()
			if started {
				log.Info("Lease taken; account started")
				s.drainInbox(ctx, e.Account, pending)
			} else {
				s.terms.end(e.Account)
				s.opts.Leases.GiveBack(e.Account, e.Epoch)
			}
		case store.LeaseGive:
			st.give = append(st.give, e)
		case store.LeaseLost:
			// The gate refuses every call already (its term ended); the
			// client stops with the others lost in this batch, and nothing
			// is saved: another replica may hold the account now.
			s.terms.end(e.Account)
			st.lost = append(st.lost, e)
			log.Warn("Lease lost; account stopped", zap.String("reason", e.Why))
		case store.LeaseInbox:
			s.applyStops(ctx, &st, pending)
			s.drainInbox(ctx, e.Account, pending)
		}
		if s.opts.LeaseApplied != nil && e.Kind != store.LeaseGive && e.Kind != store.LeaseLost {
			s.opts.LeaseApplied(e)
		}
	}
	s.applyStops(ctx, &st, pending)
}

// stops are the lease events whose accounts stop together.
type stops struct{ give, lost []store.LeaseEvent }

func accountsOf(evs []store.LeaseEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Account
	}
	return out
}

// applyStops stops the accounts of st's events at once: every client in
// parallel, one snapshot commit for those given back, one flush; then the
// given-back leases go (Done), their terms ending only after their last
// events are stored, and the lost ones' events were refused.
func (s *Service) applyStops(ctx context.Context, st *stops, pending map[string]undelivered) {
	if len(st.give) == 0 && len(st.lost) == 0 {
		return
	}
	all := append(append([]store.LeaseEvent(nil), st.give...), st.lost...)
	give, lost := accountsOf(st.give), accountsOf(st.lost)
	s.mu.Lock()
	s.stopAllLocked(append(append([]string(nil), give...), lost...))
	s.removeAllLocked(give, true)
	s.removeAllLocked(lost, false)
	s.mu.Unlock()
	// What the lost terms queued is refused now (their terms ended),
	// before a later term of those accounts can be restored; what the
	// given-back ones queued is stored.
	if err := s.writer.Flush(ctx); err != nil && len(st.give) > 0 {
		// The writer has reported the events it could not store; keeping
		// the leases would not store them either.
		s.log.Warn("Cannot flush the events of accounts given back", zap.Int("accounts", len(st.give)), zap.Error(err))
	}
	for _, e := range st.give {
		s.terms.end(e.Account)
		delete(pending, e.Account)
		e.Done()
	}
	for _, e := range st.lost {
		delete(pending, e.Account)
	}
	if len(st.give) > 0 {
		s.log.Info("Leases given back to balance the fleet", zap.Strings("accounts", give))
	}
	if s.opts.LeaseApplied != nil {
		for _, e := range all {
			s.opts.LeaseApplied(e)
		}
	}
	*st = stops{}
}

// drainInbox applies the reports waiting for a held account and moves
// them into its history; reports applied earlier but not delivered are
// delivered first.
func (s *Service) drainInbox(ctx context.Context, name string, pending map[string]undelivered) {
	in := s.opts.Inbox
	if p, ok := pending[name]; ok {
		if !s.deliver(ctx, name, p, pending) {
			return
		}
	}
	acct, ok := s.mon.Lookup(name)
	if !ok {
		return
	}
	for {
		items, err := in.Inbox(ctx, name, store.MaxLimit)
		if err != nil {
			s.log.Warn("Cannot read reports waiting for an account; retrying", zap.String("account", name), zap.Error(err))
			return
		}
		if len(items) == 0 {
			return
		}
		var d undelivered
		for _, it := range items {
			e := it.Event
			s.dedup.Expect(name, e.Time, e.Method, e.Signal)
			ev, _ := acct.ObserveSignal(e.Time, e.Method, e.Signal)
			d.ids = append(d.ids, it.ID)
			d.events = append(d.events, ev)
		}
		if !s.deliver(ctx, name, d, pending) || len(items) < store.MaxLimit {
			return
		}
	}
}

// deliver stores applied inbox reports; false when they are kept for a
// retry.
func (s *Service) deliver(ctx context.Context, name string, d undelivered, pending map[string]undelivered) bool {
	err := s.opts.Inbox.Deliver(ctx, d.ids, d.events)
	switch {
	case err == nil:
		delete(pending, name)
		s.log.Info("Reports from other replicas applied", zap.String("account", name), zap.Int("signals", len(d.ids)))
		return true
	case errors.Is(err, store.ErrFenced):
		// The account moved on; its new holder applies them.
		delete(pending, name)
		return false
	default:
		pending[name] = d
		s.log.Warn("Cannot store reports from other replicas; retrying", zap.String("account", name), zap.Error(err))
		return false
	}
}

// gate is the runners' Gate on a fleet: the lease is held and trusted,
// in the term the account's runner started under. A runner of an earlier
// term, not stopped yet when this replica takes the account again, must
// not connect: its client would resume its old MTProto session next to
// the new runner's, and Telegram answers AUTH_KEY_DUPLICATED (the
// three-replica test saw this after a replica lost and retook leases).
func (s *Service) gate(account string) bool {
	held, ok := s.opts.Leases.TrustedEpoch(account)
	if !ok {
		return false
	}
	run, ok := s.terms.Epoch(account)
	return ok && run == held
}

// terms are the lease terms this replica runs its accounts under: the
// store's fence (store.Fence). A term begins when its lease is taken and
// ends when the account stops, so that events the account produced in an
// earlier term, written late, are refused even when the replica holds
// the account again by then.
type terms struct {
	replica string
	mu      sync.Mutex
	epochs  map[string]int64
}

func newTerms(replica string) *terms { return &terms{replica: replica, epochs: map[string]int64{}} }

// Replica implements store.Fence.
func (t *terms) Replica() string { return t.replica }

// Epoch implements store.Fence.
func (t *terms) Epoch(account string) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.epochs[account]
	return e, ok
}

func (t *terms) set(account string, epoch int64) {
	t.mu.Lock()
	t.epochs[account] = epoch
	t.mu.Unlock()
}

func (t *terms) end(account string) {
	t.mu.Lock()
	delete(t.epochs, account)
	t.mu.Unlock()
}

// replicaFleet is the API's view of the accounts other replicas run.
type replicaFleet struct{ s *Service }

// Configured reads the account names a reload published: ingest asks it
// while holding off restores, which run under s.mu, so it must not wait
// for s.mu.
func (f replicaFleet) Configured(name string) bool {
	return (*f.s.configured.Load())[name]
}

func (f replicaFleet) Enqueue(ctx context.Context, events []monitor.Event) error {
	return f.s.opts.Inbox.Enqueue(ctx, events)
}

func (f replicaFleet) Remote(ctx context.Context) ([]api.Remote, error) {
	s := f.s
	s.mu.Lock()
	names := make([]string, len(s.cfg.Accounts))
	for i, a := range s.cfg.Accounts {
		names[i] = a.Name
	}
	s.mu.Unlock()
	holders, err := s.opts.Inbox.LeaseHolders(ctx)
	if err != nil {
		return nil, err
	}
	snaps, err := s.opts.Store.LoadSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]monitor.Snapshot, len(snaps))
	for _, sn := range snaps {
		byName[sn.Account] = sn
	}
	out := make([]api.Remote, 0, len(names))
	for _, n := range names {
		sn, ok := byName[n]
		if !ok {
			sn = monitor.Snapshot{Account: n, State: monitor.Unknown}
		}
		out = append(out, api.Remote{Snapshot: sn, Replica: holders[n].Replica})
	}
	return out, nil
}

// details is Remote as the status page shows it.
func (f replicaFleet) details(ctx context.Context) ([]view.Detail, error) {
	remote, err := f.Remote(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]view.Detail, len(remote))
	for i, rm := range remote {
		out[i] = view.RemoteOf(rm.Snapshot, rm.Replica)
	}
	return out, nil
}
