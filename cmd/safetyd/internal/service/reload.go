package service

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/monitor"
)

// Reload applies a new configuration: added accounts start, removed ones
// stop (and their metrics go), changed ones restart; the others are not
// touched. Keys that need a restart keep their old values and are listed
// in the plan.
func (s *Service) Reload(next *config.Config) config.ReloadPlan {
	s.mu.Lock()
	defer s.mu.Unlock()
	plan := s.cfg.PlanReload(next)
	// Keep what needs a restart; take the rest.
	kept := *next
	kept.Telegram, kept.SessionsDir, kept.Store, kept.HTTP = s.cfg.Telegram, s.cfg.SessionsDir, s.cfg.Store, s.cfg.HTTP
	s.cfg = &kept
	s.publishAccounts()
	if l := s.opts.Leases; l != nil {
		// The leases follow the accounts: added ones get a lease row and
		// are taken by whichever replica has room, removed ones are given
		// back (stopped, saved) by their holder.
		names := make([]string, len(s.cfg.Accounts))
		for i, a := range s.cfg.Accounts {
			names[i] = a.Name
		}
		if err := l.SetAccounts(s.ctx, names); err != nil {
			s.log.Error("Cannot update the fleet's accounts; the lease rows keep the old list", zap.Error(err))
		}
		for _, name := range plan.Changed {
			if r, ok := s.runners[name]; ok {
				last := r.LastProbes()
				s.stopLocked(name)
				a, _ := s.cfg.Account(name)
				s.startLocked(a, last)
			}
		}
		return plan
	}
	for _, name := range plan.Removed {
		s.stopLocked(name)
		s.removeLocked(name, true)
	}
	s.inst.Leases.Set(float64(len(s.cfg.Accounts)))
	for _, name := range plan.Changed {
		var last runner.ProbeTimes
		if r, ok := s.runners[name]; ok {
			last = r.LastProbes()
		}
		s.stopLocked(name)
		a, _ := s.cfg.Account(name)
		s.startLocked(a, last)
	}
	var snaps map[string]monitor.Snapshot
	for _, name := range plan.Added {
		a, _ := s.cfg.Account(name)
		last, err := s.addLocked(name, &snaps)
		if err != nil {
			// Not monitored until a later reload or restart can read
			// what the store knows of it.
			s.log.Error("Cannot restore an added account; not started", zap.String("account", name), zap.Error(err))
			continue
		}
		s.startLocked(a, last)
	}
	return plan
}

// removeLocked forgets an account a reload removed (or whose lease went),
// after saving its final snapshot when save: if the account comes back,
// it comes back as it left (restoreAccount), not as a fresh account.
// Reports are held off meanwhile, so that none applied to the account
// after its snapshot can be numbered again by the account that replaces
// it. A lost lease saves nothing: the account's new holder writes its
// state. s.mu is held.
func (s *Service) removeLocked(name string, save bool) {
	s.removeAllLocked([]string{name}, save)
}

// removeAllLocked is removeLocked for several accounts, their snapshots
// saved in one commit. s.mu is held.
func (s *Service) removeAllLocked(names []string, save bool) {
	if len(names) == 0 {
		return
	}
	s.restoring.Lock()
	defer s.restoring.Unlock()
	if save {
		var snaps []monitor.Snapshot
		for _, name := range names {
			if acct, ok := s.mon.Lookup(name); ok {
				snaps = append(snaps, acct.SnapshotForStore())
			}
		}
		if len(snaps) > 0 {
			if err := s.commitSnapshots(s.ctx, snaps); err != nil {
				s.log.Warn("Cannot save the snapshots of removed accounts", zap.Int("accounts", len(snaps)), zap.Error(err))
			}
		}
	}
	for _, name := range names {
		s.mon.Remove(name)
		s.rec.Forget(name)
		s.inst.Forget(name)
	}
}

// addLocked creates an account a reload added (or whose lease was taken)
// and restores it from the store as start-up does: one that was here
// before (removed by an earlier reload, or configured before a restart)
// resumes where it was. Reports are refused (holdForIngest) from the
// account's creation to the end of its restore: one applied in between
// would be acknowledged and then overwritten. The stored snapshots are
// loaded into *snaps once per reload. An account that cannot be restored
// is not created: started fresh, it would call an account the store
// knows to be limited ok, and number its events from 1 again. s.mu is
// held.
func (s *Service) addLocked(name string, snaps *map[string]monitor.Snapshot) (runner.ProbeTimes, error) {
	s.restoring.Lock()
	defer s.restoring.Unlock()
	acct, err := s.mon.Account(name)
	if err != nil {
		return runner.ProbeTimes{}, err
	}
	if *snaps == nil {
		loaded, err := s.opts.Store.LoadSnapshots(s.ctx)
		if err != nil {
			s.mon.Remove(name)
			return runner.ProbeTimes{}, fmt.Errorf("load snapshots: %w", err)
		}
		*snaps = make(map[string]monitor.Snapshot, len(loaded))
		for _, sn := range loaded {
			(*snaps)[sn.Account] = sn
		}
	}
	sn, found := (*snaps)[name]
	last, err := s.restoreAccount(s.ctx, acct, sn, found)
	if err != nil {
		s.mon.Remove(name)
		return runner.ProbeTimes{}, err
	}
	return last, nil
}

// reload applies the configuration file again (SIGHUP). A file with
// problems changes nothing: the daemon keeps running on the old one.
func reload(d Setup, svc *Service) {
	log := d.Log
	next, err := config.LoadConfig(d.ConfigPath)
	if err == nil {
		_, err = next.Resolve(os.Getenv, false)
	}
	if err != nil {
		var lines []string
		var ce *config.ConfigError
		if errors.As(err, &ce) {
			lines = ce.Lines()
		} else {
			lines = []string{err.Error()}
		}
		log.Error("Reload refused; keeping the running configuration", zap.Strings("problems", lines))
		return
	}
	if err := d.Level.UnmarshalText([]byte(next.Log.Level)); err != nil {
		log.Warn("Bad log level on reload", zap.Error(err))
	}
	plan := svc.Reload(next)
	log.Info("Configuration reloaded",
		zap.Strings("added", plan.Added), zap.Strings("removed", plan.Removed), zap.Strings("restarted", plan.Changed))
	if len(plan.Restart) > 0 {
		log.Warn("Changes that need a restart were not applied", zap.String("keys", strings.Join(plan.Restart, ", ")))
	}
}
