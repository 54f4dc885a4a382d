package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/lockfile"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// openStore opens the configured store and returns it with what closes it.
// SQLite: a local lock keeps a second daemon off the file. PostgreSQL: the
// replica announces itself and takes its share of the accounts' leases
// (leases), and its writes are fenced by them, so that each account runs
// on exactly one replica and one that lost a lease writes nothing for it.
func openStore(ctx context.Context, d Setup, reg prometheus.Registerer) (st store.Store, pg *store.Postgres, leases *store.Leases, closeStore func(), err error) {
	cfg, log := d.Config, d.Log
	sopts := store.Options{Logger: log.Named("store"), Registerer: reg}
	if cfg.Store.Driver != config.DriverPostgres {
		lock, err := lockfile.Take(cfg.Store.Path+".lock", "store")
		if err != nil {
			return nil, nil, nil, nil, err
		}
		s, err := store.OpenSQLite(cfg.Store.Path, sopts)
		if err != nil {
			lock.Release()
			return nil, nil, nil, nil, fmt.Errorf("open store: %w", err)
		}
		return s, nil, nil, func() {
			if err := s.Close(); err != nil {
				log.Warn("Cannot close store", zap.Error(err))
			}
			lock.Release()
		}, nil
	}
	sopts.Password = d.StorePassword
	p, err := store.OpenPostgres(ctx, d.StoreDSN, sopts)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("open store: %w", err)
	}
	names := make([]string, len(cfg.Accounts))
	for i, a := range cfg.Accounts {
		names[i] = a.Name
	}
	lopts := store.LeaseOptions{Replica: replicaName(), TTL: cfg.Store.LeaseTTL.D(), Margin: cfg.Store.LeaseMargin.D(),
		Logger: log.Named("leases")}
	leases, err = p.Leases(ctx, names, lopts)
	if err != nil {
		p.Close()
		return nil, nil, nil, nil, fmt.Errorf("account leases: %w", err)
	}
	// service.New fences the writes by the terms it runs each account
	// under (terms), before anything is written.
	log.Info("Joined the fleet", zap.String("store", p.Name()), zap.String("replica", leases.Replica()))
	return p, p, leases, func() {
		// Shutdown stopped the accounts and stored their state: the
		// leases go back at once, for the other replicas to take.
		ctx, cancel := context.WithTimeout(context.Background(), storeShutdownTimeout)
		defer cancel()
		if err := leases.Close(ctx); err != nil {
			log.Warn("Cannot give the leases back; they expire instead", zap.Error(err))
		}
		p.Close()
	}, nil
}

// replicaName names this replica in the lease rows: host, pid and a
// random part, so that a restarted process is a new replica.
func replicaName() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
