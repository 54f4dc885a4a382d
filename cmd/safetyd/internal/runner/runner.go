package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/log/logzap"
	"github.com/gotd/td/bin"
	"github.com/gotd/td/clock"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/transport"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/sessionfile"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/daemon"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// Runner keeps one account's client running: connect, probe on schedule,
// reconnect with backoff after failures, and stop for good when Telegram
// says the account or its session is gone (401), because reconnecting a
// banned account only adds failed logins to its record.
type Runner struct {
	env   *Env
	cfg   config.AccountConfig
	acct  *monitor.Account
	guard *guard.Guard // nil when guard.mode is off
	sched *probe.Scheduler
	// api reaches whichever client is connected now; probes hold it for
	// the runner's lifetime while clients come and go.
	api *switchInvoker
	log *zap.Logger

	cancel context.CancelFunc
	done   chan struct{}
	// stopped is why the runner gave up for good ("" while it runs): the
	// account is then not monitored, and the status page and /readyz say
	// so and what to do.
	stopped atomic.Pointer[string]
}

// errStopped is the reason a runner gave up; the account's state says
// more (banned, dead).
type errStopped struct{ why string }

func (e *errStopped) Error() string { return e.why }

// Env is what every runner of a service shares: the monitor, the
// metrics, the clocks and how to connect.
type Env struct {
	Monitor     *monitor.Monitor
	Recorder    *probe.Recorder
	Instruments *daemon.Instruments
	Registry    prometheus.Registerer
	Logger      *zap.Logger
	// Clock is the monitor's, probes' and guards' clock; Wall times client
	// restarts (backoff), which wait for real network conditions even when
	// the monitor runs on virtual time.
	Clock, Wall clock.Clock
	// Connect returns an account's connection; an error stops that account
	// only (for example a missing session file).
	Connect func(a config.AccountConfig) (Connection, error)
	// Drive, when set, runs while an account's client is connected (the
	// demo's simulated application).
	Drive func(ctx context.Context, account string, api *tg.Client) error
	// Gate, when set, is asked with the account's name before every call
	// and before every byte sent to Telegram: false refuses the call
	// locally with ErrNotHolder and closes the connection (see
	// service.Options.Gate).
	Gate func(account string) bool
	// MinBackoff and MaxBackoff bound the wait before restarting a failed
	// client.
	MinBackoff, MaxBackoff time.Duration
}

// New prepares the runner of account a (its guard, per cfg, and its probe
// scheduler, with the floors of last); Start runs it.
func New(env *Env, cfg *config.Config, a config.AccountConfig, last ProbeTimes) (*Runner, error) {
	acct, err := env.Monitor.Account(a.Name)
	if err != nil {
		return nil, err
	}
	r := &Runner{env: env, cfg: a, acct: acct, api: &switchInvoker{}, log: env.Logger.With(zap.String("account", a.Name))}
	if gopts, ok := cfg.GuardOptions(a); ok {
		gopts.Registerer = env.Registry
		gopts.Logger = env.Logger.Named("guard")
		if r.guard, err = guard.New(acct, gopts); err != nil {
			return nil, fmt.Errorf("guard: %w", err)
		}
	}
	r.sched = probe.NewScheduler(acct, probe.Options{Metrics: env.Recorder, Logger: env.Logger.Named("probe")})
	api := tg.NewClient(r.api)
	probes := []probe.Probe{
		probe.NewSpamBot(acct, api, spambot.ProberOptions{Clock: env.Clock}),
		&probe.Freeze{Account: acct, API: api},
		&probe.Sessions{Account: acct, API: api},
		&probe.Self{Account: acct, API: api},
	}
	schedules := cfg.Schedules()
	for _, p := range probes {
		if err := r.sched.Add(p, schedules[p.Kind()]); err != nil {
			return nil, err
		}
		if t, ok := last.Ran[p.Kind()]; ok && !t.IsZero() {
			_ = r.sched.SetLast(p.Kind(), t)
		}
	}
	for kind, t := range last.OK {
		env.Recorder.Restore(a.Name, kind, t)
	}
	env.Instruments.Connected.WithLabelValues(a.Name).Set(0)
	env.Instruments.Restarts.WithLabelValues(a.Name)
	return r, nil
}

// Start runs the account's client until ctx ends, Stop, or the account
// stops for good.
func (r *Runner) Start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	unwatch := r.sched.Watch(r.env.Monitor)
	go func() {
		defer close(r.done)
		defer unwatch()
		r.loop(ctx)
	}()
}

// Stop ends the runner and waits for its client to close.
func (r *Runner) Stop() {
	r.cancel()
	<-r.done
	if r.guard != nil {
		r.guard.Close()
	}
}

// Scheduler is the account's probe scheduler while the runner runs; nil
// once it has stopped for good (banned, dead, no session), since nothing
// runs its probes then.
func (r *Runner) Scheduler() *probe.Scheduler {
	select {
	case <-r.done:
		return nil
	default:
		return r.sched
	}
}

// StoppedWhy says why the runner gave up for good, if it did.
func (r *Runner) StoppedWhy() (string, bool) {
	if why := r.stopped.Load(); why != nil {
		return *why, true
	}
	return "", false
}

// LastProbes returns the probe times of the running account, for a
// restarted runner.
func (r *Runner) LastProbes() ProbeTimes {
	return LastProbes(r.acct.Snapshot(), r.acct.Events())
}

// loop runs the client until ctx ends or the account stops for good.
func (r *Runner) loop(ctx context.Context) {
	wait := r.env.MinBackoff
	for {
		connected, err := r.runOnce(ctx)
		r.env.Instruments.Connected.WithLabelValues(r.cfg.Name).Set(0)
		if ctx.Err() != nil {
			return
		}
		var stopped *errStopped
		if errors.As(err, &stopped) {
			r.log.Warn("Account stopped; not reconnecting", zap.String("reason", stopped.why))
			r.stopped.Store(&stopped.why)
			return
		}
		if connected {
			wait = r.env.MinBackoff
		}
		r.log.Info("Client stopped; restarting", zap.Error(err), zap.Duration("backoff", wait))
		t := r.env.Wall.Timer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		r.env.Instruments.Restarts.WithLabelValues(r.cfg.Name).Inc()
		wait = min(2*wait, r.env.MaxBackoff)
	}
}

// runOnce runs one client until it stops; connected says whether it got
// as far as a working connection.
func (r *Runner) runOnce(ctx context.Context) (connected bool, err error) {
	conn, err := r.env.Connect(r.cfg)
	if err != nil {
		return false, &errStopped{why: err.Error()}
	}
	if st := conn.Options.SessionStorage; st != nil {
		if _, err := st.LoadSession(ctx); errors.Is(err, sessionfile.ErrNoSession) {
			return false, &errStopped{why: fmt.Sprintf("no session for account %s: sign in with `safetyd login --account %s`", r.cfg.Name, r.cfg.Name)}
		} else if err != nil {
			return false, err
		}
		r.acct.SignedIn() // `safetyd login` stores a session once signed in
	}
	onSelf, onSelfErr := probe.Hooks(r.acct, r.env.Recorder)
	opts := conn.Options
	opts.NoUpdates = false
	opts.OnSelfSuccess = onSelf
	opts.OnSelfError = func(ctx context.Context, err error) error {
		_ = onSelfErr(ctx, err)
		// A 401 here is a ban or a dead session: returning it makes gotd
		// Stop instead of reconnecting forever.
		if StopsAccount(err) {
			return err
		}
		return nil
	}
	opts.OnConnectionState = func(st telegram.ConnectionState) {
		up := 0.0
		if st == telegram.ConnectionStateReady {
			up = 1
		}
		r.env.Instruments.Connected.WithLabelValues(r.cfg.Name).Set(up)
	}
	var handler telegram.UpdateHandler = telegram.UpdateHandlerFunc(func(context.Context, tg.UpdatesClass) error { return nil })
	mws := []telegram.Middleware{r.acct.Middleware()}
	if r.guard != nil {
		handler = r.guard.Handler(handler)
		// The guard sits outside the monitor, so that a call it refuses in
		// enforce mode never reaches Telegram and is not a signal.
		mws = []telegram.Middleware{r.guard.Middleware(), r.acct.Middleware()}
	}
	if gate := r.env.Gate; gate != nil {
		name := r.cfg.Name
		held := func() bool { return gate(name) }
		// Outermost: a refused call reaches neither the guard nor the
		// monitor (it is not a signal) nor Telegram.
		mws = append([]telegram.Middleware{gateMiddleware(held)}, mws...)
		// And below the client: pings and acknowledgements, which no
		// middleware sees, stop too, so that a replica resumed after a
		// pause sends nothing on a connection its successor now owns.
		opts.Resolver = gatedResolver{next: opts.Resolver, held: held}
	}
	opts.UpdateHandler = handler
	opts.Middlewares = append(mws, opts.Middlewares...)
	gl := r.env.Logger.Named("gotd").With(zap.String("account", r.cfg.Name))
	if gl.Core().Enabled(zapcore.InfoLevel) {
		// gotd's info lines (every connect, every restart) would drown the
		// daemon's own; its warnings and errors stay.
		gl = gl.WithOptions(zap.IncreaseLevel(zapcore.WarnLevel))
	}
	opts.Logger = logzap.New(gl.WithOptions(zap.WrapCore(lazyFields)))

	client := telegram.NewClient(conn.APIID, conn.APIHash, opts)
	err = client.Run(ctx, func(ctx context.Context) error {
		connected = true
		r.api.set(client)
		defer r.api.set(nil)
		// The scheduler and the application run until the first of them
		// ends, the account is found banned or dead, or the client stops;
		// both have returned before the callback does, so that a restarted
		// client never runs the scheduler twice.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var (
			once  sync.Once
			first error
			wg    sync.WaitGroup
		)
		finish := func(err error) {
			once.Do(func() { first = err })
			cancel()
		}
		// A banned or dead account stops its client whichever way it was
		// found out (a probe, the self check, the application's calls).
		unsub := r.env.Monitor.SubscribeAccount(r.cfg.Name, func(e monitor.Event) {
			if e.Type == monitor.EventState && (e.State == monitor.Banned || e.State == monitor.Dead) {
				finish(&errStopped{why: "account is " + e.State.String() + ": " + e.Reason})
			}
		})
		defer unsub()
		wg.Add(1)
		go func() {
			defer wg.Done()
			finish(r.sched.Run(ctx))
		}()
		if drive := r.env.Drive; drive != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				finish(drive(ctx, r.cfg.Name, client.API()))
			}()
		}
		wg.Wait()
		return first
	})
	var stopped *errStopped
	if errors.As(err, &stopped) {
		return connected, stopped
	}
	if err != nil && StopsAccount(err) {
		s := signal.Classify(err)
		return connected, &errStopped{why: fmt.Sprintf("Telegram answered %s (%s)", s.Type, s.Kind)}
	}
	return connected, err
}

// StopsAccount reports errors after which reconnecting is pointless or
// harmful: the account is banned or deleted, or its session is revoked.
func StopsAccount(err error) bool {
	switch signal.Classify(err).Kind {
	case signal.Banned, signal.Deactivated, signal.SessionDead:
		return true
	}
	return false
}

// switchInvoker forwards calls to the client connected now, so that the
// probe scheduler (and the probes' state, such as the floors) outlives
// reconnects.
type switchInvoker struct {
	mu     sync.RWMutex
	client *telegram.Client
}

var errNotConnected = errors.New("not connected")

func (s *switchInvoker) set(c *telegram.Client) {
	s.mu.Lock()
	s.client = c
	s.mu.Unlock()
}

// Invoke implements tg.Invoker.
func (s *switchInvoker) Invoke(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
	s.mu.RLock()
	c := s.client
	s.mu.RUnlock()
	if c == nil {
		return errNotConnected
	}
	return c.Invoke(ctx, input, output)
}

// Connection says where one account's client connects to and as what
// application.
type Connection struct {
	APIID   int
	APIHash string
	// Options carry the DC, DC list or resolver, public keys and session
	// storage. The service sets middlewares, hooks, update handling,
	// Connection-state callback and logger.
	Options telegram.Options
}

// ProbeTimes are when each probe kind last ran (for its floor) and last
// succeeded (for tgsafety_probe_last_success_timestamp_seconds), read back
// after a restart.
type ProbeTimes struct {
	Ran, OK map[string]time.Time
}

// LastProbes returns the probe times of an account's snapshot
// (Snapshot.Probes), so that probe floors and the last-success gauge
// survive restarts. A probe event in evs later than the snapshot's run
// (stored after the last snapshot, before a crash) still counts as a run
// for the floor; whether it succeeded is known only from snapshots.
func LastProbes(sn monitor.Snapshot, evs []monitor.Event) ProbeTimes {
	pt := ProbeTimes{Ran: map[string]time.Time{}, OK: map[string]time.Time{}}
	for kind, r := range sn.Probes {
		if !r.LastRun.IsZero() {
			pt.Ran[kind] = r.LastRun
		}
		if !r.LastOK.IsZero() {
			pt.OK[kind] = r.LastOK
		}
	}
	for _, e := range evs {
		if e.Type == monitor.EventProbe && e.Probe != "" && e.Time.After(pt.Ran[e.Probe]) {
			pt.Ran[e.Probe] = e.Time
		}
	}
	return pt
}

// Done is closed when the runner has stopped, for good or by Stop.
func (r *Runner) Done() <-chan struct{} { return r.done }

// ErrNotHolder refuses a call of a replica that is not sure it still holds
// the fleet.
var ErrNotHolder = errors.New("this replica does not hold the account's lease now; call refused")

// gateMiddleware refuses every call while gate is false.
func gateMiddleware(gate func() bool) telegram.Middleware {
	return telegram.MiddlewareFunc(func(next tg.Invoker) telegram.InvokeFunc {
		return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
			if !gate() {
				return ErrNotHolder
			}
			return next.Invoke(ctx, input, output)
		}
	})
}

// gatedResolver dials as next does (gotd's default when nil) and gates
// every connection it makes.
type gatedResolver struct {
	next dcs.Resolver
	held func() bool
}

func (g gatedResolver) inner() dcs.Resolver {
	if g.next == nil {
		return dcs.DefaultResolver()
	}
	return g.next
}

func (g gatedResolver) gated(c transport.Conn, err error) (transport.Conn, error) {
	if err != nil {
		return nil, err
	}
	if !g.held() {
		_ = c.Close()
		return nil, ErrNotHolder
	}
	return &gatedConn{Conn: c, held: g.held}, nil
}

func (g gatedResolver) Primary(ctx context.Context, dc int, list dcs.List) (transport.Conn, error) {
	return g.gated(g.inner().Primary(ctx, dc, list))
}

func (g gatedResolver) MediaOnly(ctx context.Context, dc int, list dcs.List) (transport.Conn, error) {
	return g.gated(g.inner().MediaOnly(ctx, dc, list))
}

func (g gatedResolver) CDN(ctx context.Context, dc int, list dcs.List) (transport.Conn, error) {
	return g.gated(g.inner().CDN(ctx, dc, list))
}

// gatedConn closes itself instead of sending once the lease is not
// trusted.
type gatedConn struct {
	transport.Conn
	held func() bool
}

func (c *gatedConn) Send(ctx context.Context, b *bin.Buffer) error {
	if !c.held() {
		_ = c.Conn.Close()
		return ErrNotHolder
	}
	return c.Conn.Send(ctx, b)
}

// lazyFields makes core encode the fields of a With only when a line is
// written. gotd derives a logger with fields for every message it sends
// or receives, and at the warning level next to none of them logs: done
// eagerly, that encoding was 8% of a 3,000-account demo's CPU.
func lazyFields(core zapcore.Core) zapcore.Core { return lazyCore{core} }

type lazyCore struct{ zapcore.Core }

// With keeps the result lazy too: gotd chains Withs.
func (c lazyCore) With(fields []zapcore.Field) zapcore.Core {
	return lazyCore{zapcore.NewLazyWith(c.Core, fields)}
}
