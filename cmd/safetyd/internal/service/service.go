package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/clock"
	"github.com/gotd/td/tg"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/api"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/dedup"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/status"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/daemon"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// The service is the daemon's core, shared by `safetyd run` and `safetyd
// demo` so that the demo shows exactly the production code path: one
// monitor, one store writer, one probe recorder, one runner (gotd client,
// guard, probe scheduler) per account, and the HTTP interface. What
// differs is only where clients connect to (Telegram with session files,
// or the in-process test server) and, in the demo, the simulated
// application traffic each account sends.

// Service defaults.
const (
	// defaultSnapshotEvery is how often account snapshots are saved (on the
	// monitor's clock): a crash loses at most this much of state that the
	// event history does not already carry.
	defaultSnapshotEvery = time.Minute
	// defaultPruneEvery is how often events older than the retention are
	// deleted.
	defaultPruneEvery = time.Hour
	// restoreEvents is how many of an account's newest events a restart
	// puts back into its ring (the ring's size), so that 1,000 accounts
	// start quickly.
	restoreEvents = 256
)

// Options configure a service.
type Options struct {
	Config *config.Config
	// Clock is the monitor's, probes' and guards' clock (the system clock;
	// the demo's sped-up virtual clock).
	Clock clock.Clock
	// Wall times client restarts (backoff), which wait for real network
	// conditions even when the monitor runs on virtual time. Default
	// clock.System.
	Wall   clock.Clock
	Logger *zap.Logger
	// Registry receives every metric and is served on /metrics.
	Registry *prometheus.Registry
	Store    store.Store
	Token    string
	Version  string
	// Connect returns an account's connection; an error stops that account
	// only (for example a missing session file).
	Connect func(a config.AccountConfig) (runner.Connection, error)
	// Drive, when set, runs while an account's client is connected, with
	// the client's API (through the guard and monitor middlewares): the
	// demo's simulated application. The daemon itself sends nothing but
	// probes.
	Drive func(ctx context.Context, account string, api *tg.Client) error
	// Leases, on a PostgreSQL fleet, decide which accounts this replica
	// runs: it starts an account when it takes its lease and stops it
	// when the lease goes, and every call of its client is refused (and
	// its connection closed) while the lease is not trusted. Nil (SQLite):
	// every configured account runs here.
	Leases *store.Leases
	// Inbox carries reports between replicas; required with Leases.
	Inbox Inbox
	// LeaseApplied, when set, is called after each lease event has been
	// acted on (the account started, stopped or its reports applied):
	// what tests of a fleet wait for.
	LeaseApplied func(store.LeaseEvent)
	// SnapshotEvery and PruneEvery default to defaultSnapshotEvery and
	// defaultPruneEvery.
	SnapshotEvery, PruneEvery time.Duration
	// Backoff bounds the wait before restarting a failed client; defaults
	// 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
}

// Service runs the monitored fleet; see the comment at the top of the file.
type Service struct {
	opts    Options
	log     *zap.Logger
	mon     *monitor.Monitor
	writer  *store.Writer
	dedup   *dedup.Sink
	rec     *probe.Recorder
	inst    *daemon.Instruments
	handler http.Handler

	ready  atomic.Bool
	bg     sync.WaitGroup
	cancel context.CancelFunc // ends what Start started, except the writer

	// snapsFailing is set while the last snapshot save failed.
	snapsFailing atomic.Bool

	// restoring keeps reports off accounts that are being created and
	// restored from the store: ingest holds it for reading while it looks
	// accounts up and applies signals (holdForIngest); a reload holds it
	// for writing while it removes accounts or adds and restores them.
	restoring sync.RWMutex

	// env is what every runner shares.
	env *runner.Env

	// terms are the lease terms the accounts run under (a fleet only).
	terms *terms

	// configured are the configured account names, replaced by reloads.
	configured atomic.Pointer[map[string]bool]

	mu      sync.Mutex
	ctx     context.Context // the service's; runners derive from it
	cfg     *config.Config
	runners map[string]*runner.Runner
}

// New builds the service: its writer, monitor, probe recorder and HTTP
// interface, registering every metric in opts.Registry. Start runs it.
func New(opts Options) (*Service, error) {
	if opts.Clock == nil {
		opts.Clock = clock.System
	}
	if opts.Wall == nil {
		opts.Wall = clock.System
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.SnapshotEvery <= 0 {
		opts.SnapshotEvery = defaultSnapshotEvery
	}
	if opts.PruneEvery <= 0 {
		opts.PruneEvery = defaultPruneEvery
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Minute, opts.MinBackoff)
	}
	if opts.Config == nil || opts.Store == nil || opts.Registry == nil || opts.Connect == nil {
		return nil, errors.New("service: Config, Store, Registry and Connect are required")
	}
	if opts.Leases != nil && opts.Inbox == nil {
		return nil, errors.New("service: Leases need an Inbox")
	}
	reg := opts.Registry
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("register Go metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("register process metrics: %w", err)
	}
	s := &Service{opts: opts, log: opts.Logger, cfg: opts.Config, runners: map[string]*runner.Runner{}}
	s.publishAccounts()
	s.writer = store.NewWriter(opts.Store, store.WriterOptions{Logger: opts.Logger.Named("store"), Registerer: reg})
	s.dedup = dedup.New(s.writer)
	var err error
	s.mon, err = monitor.New(monitor.Options{Clock: opts.Clock, Logger: opts.Logger.Named("monitor"), Registerer: reg, Sink: s.dedup})
	if err != nil {
		return nil, err
	}
	if s.rec, err = probe.NewRecorder(reg); err != nil {
		return nil, err
	}
	if s.inst, err = daemon.Register(reg, opts.Version); err != nil {
		return nil, err
	}
	s.env = &runner.Env{
		Monitor: s.mon, Recorder: s.rec, Instruments: s.inst, Registry: reg, Logger: s.log,
		Clock: opts.Clock, Wall: opts.Wall, Connect: opts.Connect, Drive: opts.Drive,
		MinBackoff: opts.MinBackoff, MaxBackoff: opts.MaxBackoff,
	}
	if opts.Leases != nil {
		s.env.Gate = s.gate
		s.terms = newTerms(opts.Leases.Replica())
		if f, ok := opts.Store.(interface{ FenceWith(store.Fence) }); ok {
			f.FenceWith(s.terms)
		}
	}
	s.handler = s.newHandler()
	return s, nil
}

// newHandler mounts the HTTP interface: /metrics, the JSON API with
// /healthz and /readyz, and the status page at /.
func (s *Service) newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(s.log.Named("metrics")), Registry: s.opts.Registry,
	}))
	var fleet api.Fleet
	if s.opts.Leases != nil {
		fleet = replicaFleet{s}
	}
	api := api.New(api.Deps{
		Monitor: s.mon, Store: s.opts.Store, Writer: s.writer, Dedup: s.dedup, Fleet: fleet,
		Scheduler: s.scheduler, Token: s.opts.Token, Now: s.opts.Clock.Now, Retention: s.cfg.Store.Retention.D(),
		Ready: s.readyErr, Hold: s.holdForIngest, NotMonitored: s.notMonitored, Version: s.opts.Version, Ingest: s.inst.Ingest,
	})
	mux.Handle("/api/", api)
	mux.Handle("/healthz", api)
	mux.Handle("/readyz", api)
	sd := status.Deps{Monitor: s.mon, Store: s.opts.Store, Now: s.opts.Clock.Now, Version: s.opts.Version,
		NotMonitored: s.notMonitored}
	if s.opts.Leases != nil {
		sd.Others = replicaFleet{s}.details
	}
	mux.Handle("/", status.New(sd))
	return mux
}

// publishAccounts makes s.cfg's account names what configured reads;
// s.mu is held or s is not running yet.
func (s *Service) publishAccounts() {
	names := make(map[string]bool, len(s.cfg.Accounts))
	for _, a := range s.cfg.Accounts {
		names[a.Name] = true
	}
	s.configured.Store(&names)
}

// Handler is the service's HTTP interface.
func (s *Service) Handler() http.Handler { return s.handler }

// Monitor is the service's monitor.
func (s *Service) Monitor() *monitor.Monitor { return s.mon }

// Settle makes what the accounts know now readable from the history:
// every account is evaluated (expiries up to now become events) and
// every event so far is stored. A caller that stopped time and traffic
// (the demo's end, in tests) then reads one consistent picture.
func (s *Service) Settle(ctx context.Context) error {
	for _, a := range s.mon.Accounts() {
		a.Refresh()
	}
	return s.writer.Flush(ctx)
}

// notMonitored returns, by account, why its client stopped for good (no
// session, banned, dead, ...): the account is configured but nobody
// watches it until an operator acts.
func (s *Service) notMonitored() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out map[string]string
	for name, r := range s.runners {
		if why, ok := r.StoppedWhy(); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = why
		}
	}
	return out
}

// restoringErr says why the accounts are not restored yet (nil: they are).
func (s *Service) restoringErr() error {
	if !s.ready.Load() {
		return errors.New("starting: restoring state and connecting accounts")
	}
	return nil
}

// holdForIngest is the API's Hold: reports wait for no reload's restore,
// they are refused (503) while one is under way, and the release lets a
// reload restore accounts once the reported signals are applied. On a
// fleet, accounts are restored whenever a lease is taken, each in a few
// milliseconds: reports wait for that restore rather than fail.
func (s *Service) holdForIngest() (func(), error) {
	if s.opts.Leases != nil {
		s.restoring.RLock()
	} else if !s.restoring.TryRLock() {
		return nil, errors.New("restoring accounts added by a reload")
	}
	if err := s.restoringErr(); err != nil {
		s.restoring.RUnlock()
		return nil, err
	}
	return s.restoring.RUnlock, nil
}

func (s *Service) readyErr() error {
	if err := s.restoringErr(); err != nil {
		return err
	}
	if s.writer.Failing() || s.snapsFailing.Load() {
		// The driver's text (disk full, I/O error) is in the log.
		return errors.New("the store cannot commit (see the log)")
	}
	return nil
}

// scheduler is the account's probe scheduler while its runner runs; nil
// once the runner has stopped for good (banned, dead, no session), since
// nothing runs its probes then.
func (s *Service) scheduler(name string) *probe.Scheduler {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runners[name]
	if !ok {
		return nil
	}
	return r.Scheduler()
}

// Start restores state from the store, starts the writer, the monitor's
// refresh loop, snapshots, retention and every configured account, and
// returns. Shutdown stops them; so does ctx, except the writer.
func (s *Service) Start(ctx context.Context) error {
	var last map[string]runner.ProbeTimes
	if s.opts.Leases == nil {
		var err error
		if last, err = s.restoreAll(ctx); err != nil {
			return err
		}
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	// The writer outlives ctx: Shutdown stops it (Writer.Close) after the
	// runners and the HTTP API, so that nothing acknowledged or observed
	// during shutdown is left unwritten.
	s.goBackground(func() { _ = s.writer.Run(context.WithoutCancel(ctx)) })
	s.goBackground(func() { _ = s.mon.Run(ctx) })
	s.goBackground(func() { s.every(ctx, s.opts.SnapshotEvery, s.saveSnapshots) })
	s.goBackground(func() { s.every(ctx, s.opts.PruneEvery, s.prune) })
	s.prune(ctx)

	if s.opts.Leases != nil {
		// Accounts start as their leases are taken.
		s.goBackground(func() { s.followLeases(ctx) })
	} else {
		s.mu.Lock()
		for _, a := range s.cfg.Accounts {
			s.startLocked(a, last[a.Name])
		}
		s.inst.Leases.Set(float64(len(s.cfg.Accounts)))
		s.mu.Unlock()
	}
	s.ready.Store(true)
	return nil
}

// restoreAll creates and restores every configured account (one daemon
// runs them all).
func (s *Service) restoreAll(ctx context.Context) (map[string]runner.ProbeTimes, error) {
	snaps, err := s.opts.Store.LoadSnapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("load snapshots: %w", err)
	}
	byName := make(map[string]monitor.Snapshot, len(snaps))
	for _, sn := range snaps {
		byName[sn.Account] = sn
	}
	last := map[string]runner.ProbeTimes{}
	for _, a := range s.cfg.Accounts {
		acct, err := s.mon.Account(a.Name)
		if err != nil {
			return nil, err
		}
		sn, ok := byName[a.Name]
		if last[a.Name], err = s.restoreAccount(ctx, acct, sn, ok); err != nil {
			return nil, err
		}
	}
	s.log.Info("State restored", zap.Int("snapshots", len(snaps)), zap.Int("accounts", len(s.cfg.Accounts)))
	return last, nil
}

func (s *Service) goBackground(fn func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn()
	}()
}

// every calls fn each period of the monitor's clock until ctx ends.
func (s *Service) every(ctx context.Context, period time.Duration, fn func(context.Context)) {
	t := s.opts.Clock.Ticker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			fn(ctx)
		}
	}
}

func (s *Service) saveSnapshots(ctx context.Context) {
	accts := s.mon.Accounts()
	snaps := make([]monitor.Snapshot, 0, len(accts))
	for _, a := range accts {
		snaps = append(snaps, a.SnapshotForStore())
	}
	if err := s.commitSnapshots(ctx, snaps); err != nil && ctx.Err() == nil {
		s.log.Warn("Cannot save snapshots", zap.Error(err))
	}
}

// commitSnapshots saves snapshots and remembers whether that failed: the
// daemon is not ready while snapshots cannot be saved (a full disk with no
// events being written fails only these), until a save succeeds.
func (s *Service) commitSnapshots(ctx context.Context, snaps []monitor.Snapshot) error {
	err := s.opts.Store.SaveSnapshots(ctx, snaps)
	if ctx.Err() == nil {
		// A fenced account is another replica's now: not a store failure.
		s.snapsFailing.Store(err != nil && !errors.Is(err, store.ErrFenced))
	}
	return err
}

func (s *Service) prune(ctx context.Context) {
	s.mu.Lock()
	keep := s.cfg.Store.Retention.D()
	s.mu.Unlock()
	if keep <= 0 {
		keep = store.DefaultRetention
	}
	n, err := s.opts.Store.Prune(ctx, s.opts.Clock.Now().Add(-keep))
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("Cannot prune old events", zap.Error(err))
	case n > 0:
		s.log.Info("Pruned old events", zap.Int64("events", n), zap.Duration("retention", keep))
	}
}

// startLocked starts an account's runner; s.mu is held.
func (s *Service) startLocked(a config.AccountConfig, last runner.ProbeTimes) {
	r, err := runner.New(s.env, s.cfg, a, last)
	if err != nil {
		s.log.Error("Cannot start account", zap.String("account", a.Name), zap.Error(err))
		return
	}
	s.runners[a.Name] = r
	r.Start(s.ctx)
}

// stopLocked stops an account's runner and waits for it; s.mu is held.
func (s *Service) stopLocked(name string) { s.stopAllLocked([]string{name}) }

// StopAccounts stops every account's client and waits for them: the
// first step of a shutdown, so that no session stays connected while
// another replica takes it over. The service is not ready afterwards;
// Shutdown still saves and flushes.
func (s *Service) StopAccounts() {
	s.ready.Store(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.runners))
	for n := range s.runners {
		names = append(names, n)
	}
	s.stopAllLocked(names)
}

// stopAllLocked stops the named accounts' runners in parallel and waits
// for them: each waits for its client to close, and a replica's leases
// run out while a few hundred close one after another. s.mu is held.
//
// A stop that hangs holds up everything after it (a replica's lease
// events wait, so the accounts it gives back stay held and unwatched):
// every slowStop the accounts still stopping are logged, so that the
// hang is named where it happens.
func (s *Service) stopAllLocked(names []string) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		stopping = map[string]bool{}
	)
	for _, n := range names {
		if r, ok := s.runners[n]; ok {
			delete(s.runners, n)
			mu.Lock()
			stopping[n] = true
			mu.Unlock()
			wg.Go(func() {
				r.Stop()
				mu.Lock()
				delete(stopping, n)
				mu.Unlock()
			})
		}
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := s.opts.Wall.Ticker(slowStop)
	defer t.Stop()
	for waited := slowStop; ; waited += slowStop {
		select {
		case <-done:
			return
		case <-t.C():
			mu.Lock()
			left := slices.Sorted(maps.Keys(stopping))
			mu.Unlock()
			s.log.Warn("Accounts slow to stop; what waits for them (lease hand-overs, shutdown) waits too",
				zap.Duration("waited", waited), zap.Int("accounts", len(left)), zap.Strings("stopping", left[:min(len(left), 20)]))
		}
	}
}

// slowStop is how long stopping accounts may take before it is logged.
const slowStop = 10 * time.Second

// Shutdown stops every account, saves final snapshots and flushes the
// writer: everything observed before it is stored. Stop the HTTP server
// first, so that no signal is acknowledged after the writer closes (a late
// one gets 503, not a lost 202).
func (s *Service) Shutdown(ctx context.Context) error {
	s.StopAccounts()
	if s.cancel != nil {
		s.cancel()
	}
	s.saveSnapshots(ctx)
	err := s.writer.Close(ctx)
	s.bg.Wait()
	return err
}
