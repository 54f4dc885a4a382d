package service

import (
	"context"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/lockfile"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/sdnotify"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// openStore opens the configured store and returns it with what closes it.
// SQLite: a local lock keeps a second daemon off the file. PostgreSQL: the
// replica waits here as a standby until it leads the fleet (lead), then
// fences its writes with its term, so that exactly one replica runs the
// accounts and one that lost its term writes nothing.
func openStore(ctx context.Context, d Setup, reg prometheus.Registerer) (st store.Store, lead *store.Leadership, closeStore func(), err error) {
	cfg, log := d.Config, d.Log
	sopts := store.Options{Logger: log.Named("store"), Registerer: reg}
	if cfg.Store.Driver != config.DriverPostgres {
		lock, err := lockfile.Take(cfg.Store.Path+".lock", "store")
		if err != nil {
			return nil, nil, nil, err
		}
		s, err := store.OpenSQLite(cfg.Store.Path, sopts)
		if err != nil {
			lock.Release()
			return nil, nil, nil, fmt.Errorf("open store: %w", err)
		}
		return s, nil, func() {
			if err := s.Close(); err != nil {
				log.Warn("Cannot close store", zap.Error(err))
			}
			lock.Release()
		}, nil
	}
	sopts.Password = d.StorePassword
	p, err := store.OpenPostgres(ctx, d.StoreDSN, sopts)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open store: %w", err)
	}
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s pid %d", host, os.Getpid())
	log.Info("Waiting to lead the fleet (standby until the leader goes)", zap.String("store", p.Name()), zap.String("holder", holder))
	_ = sdnotify.Notify("STATUS=standby: waiting to lead the fleet")
	lead, err = p.Lead(ctx, store.LeaderOptions{Holder: holder, Logger: log.Named("leadership")})
	if err != nil {
		p.Close()
		return nil, nil, nil, fmt.Errorf("lead the fleet: %w", err)
	}
	p.Fence(lead.Epoch())
	return p, lead, func() {
		lead.Release()
		p.Close()
	}, nil
}
