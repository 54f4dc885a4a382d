package service

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// restoreAccount puts an account back as the store has it: its snapshot
// (if any), its newest events into the ring, then every signal stored
// after the snapshot replayed in the order it happened (Event.Seq): after
// a crash the last snapshot can be up to SnapshotEvery older than the last
// acknowledged signal, and an acknowledged PEER_FLOOD must not be
// forgotten however many events came after it or however it was dated.
// The signal events are not stored again; state changes they cause are
// (they may repeat ones stored before the crash). It reads what restore
// needs: the ring and the events after the snapshot, a page at a time.
func (s *Service) restoreAccount(ctx context.Context, acct *monitor.Account, sn monitor.Snapshot, ok bool) (runner.ProbeTimes, error) {
	name := acct.Name()
	ring, err := s.opts.Store.Latest(ctx, name, restoreEvents)
	if err != nil {
		return runner.ProbeTimes{}, fmt.Errorf("load events of %s: %w", name, err)
	}
	if !ok {
		sn = monitor.Snapshot{}
	}
	acct.Restore(sn, ring)
	var after []monitor.Event
	if ok && sn.Seq == 0 {
		// A snapshot from before Event.Seq: its events are told apart by
		// time (rows stored since the upgrade have a Seq and follow).
		old, err := s.opts.Store.Events(ctx, name, sn.At, store.MaxLimit)
		if err != nil {
			return runner.ProbeTimes{}, fmt.Errorf("load events of %s: %w", name, err)
		}
		for _, e := range old {
			if e.Seq == 0 && e.Time.After(sn.At) {
				after = append(after, e)
			}
		}
	}
	n := s.replay(acct, after)
	for seq := sn.Seq; ; {
		page, err := s.opts.Store.After(ctx, name, seq, store.MaxLimit)
		if err != nil {
			return runner.ProbeTimes{}, fmt.Errorf("load events of %s: %w", name, err)
		}
		n += s.replay(acct, page)
		after = append(after, probeEvents(page)...)
		if len(page) < store.MaxLimit {
			break
		}
		seq = page[len(page)-1].Seq
	}
	if n > 0 {
		s.log.Info("Replayed signals stored after the last snapshot", zap.String("account", name), zap.Int("signals", n))
	}
	return runner.LastProbes(sn, after), nil
}

// replay applies the signal events of evs to the account and returns how
// many there were.
func (s *Service) replay(acct *monitor.Account, evs []monitor.Event) int {
	n := 0
	for _, e := range evs {
		if e.Type != monitor.EventSignal {
			continue
		}
		s.dedup.Expect(e.Account, e.Time, e.Method, e.Signal)
		acct.ObserveSignal(e.Time, e.Method, e.Signal)
		n++
	}
	return n
}

// probeEvents returns the probe events of evs.
func probeEvents(evs []monitor.Event) []monitor.Event {
	var out []monitor.Event
	for _, e := range evs {
		if e.Type == monitor.EventProbe {
			out = append(out, e)
		}
	}
	return out
}
