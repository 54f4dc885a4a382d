package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/tg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/service"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/sessionfile"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/vclock"
	"github.com/tgsafety/tgsafety/testserver"
)

// Demo defaults.
const (
	DefaultAccounts = 12
	// DefaultSpeed shows a simulated day in under three minutes.
	DefaultSpeed = 500
	// tick is how often (real time) the demo's virtual clock moves.
	tick = 20 * time.Millisecond
	// catchUp is how many ticks of virtual time one tick may add to make
	// up for ticks that took longer than tick; maxDebt is how far (real
	// time) the demo may fall behind --speed and still make it up.
	catchUp = 5
	maxDebt = 10 * time.Second
	// MaxAccounts bounds --accounts: the test server's own bound, and the
	// fleet of one replica in the scale measurement (docs/performance.md).
	MaxAccounts = testserver.MaxAccounts
	// apiID is any api_id: the test server does not check it.
	apiID = 17349
)

// Options are the demo's flags.
type Options struct {
	Listen   string
	Accounts int
	Speed    float64
	// For stops the demo after this much virtual time; 0 runs until
	// SIGINT/SIGTERM.
	For time.Duration
	// Store is the history database; empty means a temporary one.
	Store string
	// Traffic false runs no simulated applications: probes only (the
	// scale measurement's "at rest").
	Traffic bool
	Quiet   bool
	Token   string
	Seed    uint64
	// Version is the daemon's (/healthz, build_info).
	Version string
	// atEnd, when set (tests), runs when --for has passed, before the demo
	// shuts down, with the HTTP address: the service is still up and
	// virtual time stands still.
	atEnd func(addr string)
	// stepped (tests) moves virtual time from one application deadline to
	// the next as soon as every application waits, ignoring Speed: what
	// the demo reaches then depends on nothing but the behaviours.
	stepped bool
}

// account is one simulated account.
type account struct {
	name  string
	phone string
	b     behaviour
	next  int
}

// Run runs the demo until ctx ends or o.For has passed.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "safetyd-demo-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if o.Store == "" {
		o.Store = filepath.Join(dir, "history.db")
	}

	// Start the virtual clock at the real time (whole seconds), so that
	// the status page's times look like times.
	clk := vclock.New(time.Now().UTC().Truncate(time.Second))
	srv, err := testserver.New(testserver.Options{Clock: clk, Users: 1000, Seed: o.Seed})
	if err != nil {
		return err
	}
	srv.Start()
	defer func() { _ = srv.Close() }()

	cfg := config.DefaultConfig()
	cfg.SessionsDir = filepath.Join(dir, "sessions")
	cfg.Store.Path = o.Store
	cfg.HTTP.Listen = o.Listen
	cfg.Profile = srv.Profile()
	behaviours := behaviours()
	accts := map[string]*account{}
	start := clk.Now()
	for i := range o.Accounts {
		b := behaviours[i%len(behaviours)]
		a := &account{name: fmt.Sprintf("demo-%02d-%s", i+1, b.Name), phone: fmt.Sprintf("99966%05d", i+1), b: b}
		spec := b.Spec
		spec.Phone, spec.FirstName = a.phone, "Demo"
		if _, err := srv.CreateAccount(spec); err != nil {
			return err
		}
		data, err := srv.Session(a.phone)
		if err != nil {
			return err
		}
		// The production path reads sessions from 0600 files.
		loader := session.Loader{Storage: sessionfile.File{Path: cfg.SessionPath(a.name)}}
		if err := loader.Save(ctx, data); err != nil {
			return err
		}
		accts[a.name] = a
		cfg.Accounts = append(cfg.Accounts, config.AccountConfig{
			Name: a.name, Phone: config.NewSecret("+" + a.phone), DC: config.DCTest, Tags: []string{"demo", b.Name}, Created: start.Add(-spec.Age),
		})
	}

	// The terminal shows state changes itself; the log keeps errors only.
	level := zap.NewAtomicLevelAt(zapcore.ErrorLevel)
	log := service.NewLogger(stderr, level)
	out := &output{w: stdout, quiet: o.Quiet, start: start, accts: accts}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx) // --for ends the demo through cancel
	defer cancel()
	expect := 0
	if o.Traffic {
		expect = len(accts)
	}
	pace := newPacer(expect)
	traffic := newTrafficSwitch(pace)
	var svc *service.Service // set by Started, before the clock runs
	atEnd := func() {
		if o.atEnd != nil {
			// Quiesce: no application call in flight, virtual time
			// standing, every expiry recorded and stored, so that every
			// reading agrees with every other (a wait that ended in the
			// last simulated minutes is in the history too).
			traffic.stop()
			if err := svc.Settle(ctx); err != nil {
				fmt.Fprintln(stderr, "demo: settling before the end:", err)
			}
			o.atEnd(out.addr)
		}
	}

	return service.Serve(ctx, service.Setup{
		Config: cfg, Log: log, Level: level, Token: o.Token, Version: o.Version,
		Connect: func(a config.AccountConfig) (runner.Connection, error) {
			opts := srv.ClientOptions()
			opts.SessionStorage = sessionfile.File{Path: cfg.SessionPath(a.Name)}
			return runner.Connection{APIID: apiID, APIHash: "0123456789abcdef0123456789abcdef", Options: opts}, nil
		},
		Tune: func(so *service.Options) {
			so.Clock = clk
			// Snapshots about once a minute of wall time, as safetyd run
			// saves them: every 10 simulated minutes (1.2 s at 500x) was
			// 7% of a 3,000-account demo's CPU.
			so.SnapshotEvery = max(10*time.Minute, time.Duration(o.Speed*float64(time.Minute)))
			if o.Traffic {
				so.Drive = traffic.drive(func(ctx context.Context, name string, api *tg.Client) error {
					a := accts[name]
					return a.b.Run(ctx, &driveEnv{api: api, clock: clk, srv: srv, phone: a.phone, next: &a.next, pace: pace})
				})
			}
		},
		Listening: func(addr string) { out.banner(addr, o) },
		Started: func(_ context.Context, started *service.Service) {
			svc = started
			out.watch(svc.Monitor())
			wg.Add(1)
			go func() {
				defer wg.Done()
				runClock(ctx, clk, o, pace, srv, accts, out, atEnd, cancel)
			}()
		},
	})
}

// runClock moves virtual time --speed times faster than real time (or,
// stepped, from one application deadline to the next as fast as the
// applications go), applies the behaviours' server-side events when they
// are due, and ends the demo after --for. Time moves only while every
// application waits for it (pacer), so a slow machine slows the demo down
// instead of changing what it shows.
func runClock(ctx context.Context, clk *vclock.Clock, o Options, pace *pacer, srv *testserver.Server, accts map[string]*account, out *output, atEnd, cancel func()) {
	type due struct {
		at   time.Time
		acct *account
	}
	var pending []due
	for _, a := range accts {
		if ev := a.b.Server; ev != nil && o.Traffic {
			pending = append(pending, due{out.start.Add(ev.At), a})
		}
	}
	sort.Slice(pending, func(i, j int) bool {
		if !pending[i].at.Equal(pending[j].at) {
			return pending[i].at.Before(pending[j].at)
		}
		return pending[i].acct.name < pending[j].acct.name
	})
	end := time.Time{} // zero: no end
	if o.For > 0 {
		end = out.start.Add(o.For)
	}
	// advance moves the clock to t, waking the applications due by then;
	// it returns false when ctx ended first.
	advance := func(t time.Time) bool {
		if pace.quiet(ctx) != nil {
			return false
		}
		pace.wake(t)
		clk.AdvanceTo(t)
		for len(pending) > 0 && !pending[0].at.After(t) {
			p := pending[0]
			pending = pending[1:]
			err := p.acct.b.Server.Do(srv, p.acct.phone)
			out.serverEvent(p.at, p.acct, err)
		}
		out.tick(t)
		return true
	}
	// runTo moves through every application deadline and server event up
	// to limit, each in turn, then to limit itself.
	runTo := func(limit time.Time) bool {
		for {
			if pace.quiet(ctx) != nil {
				return false
			}
			next, ok := pace.next()
			if len(pending) > 0 && (!ok || pending[0].at.Before(next)) {
				next, ok = pending[0].at, true
			}
			if !ok || next.After(limit) {
				return advance(limit)
			}
			if !advance(next) {
				return false
			}
		}
	}
	finish := func() {
		out.done(end)
		atEnd()
		cancel()
	}
	if o.stepped {
		if end.IsZero() {
			return // tests always give --for
		}
		if runTo(end) {
			finish()
		}
		return
	}
	// Virtual time follows the wall clock from the moment every
	// application has started (pace.quiet), not from the process start.
	if pace.quiet(ctx) != nil {
		return
	}
	sched := schedule{wall: time.Now(), virt: clk.Now(), speed: o.Speed}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		limit := sched.limit(clk.Now(), time.Now())
		if !end.IsZero() && limit.After(end) {
			limit = end
		}
		if !runTo(limit) {
			return
		}
		if !end.IsZero() && !limit.Before(end) {
			finish()
			return
		}
	}
}

// schedule is where the clock of a demo at --speed should be: speed
// times the real time since wall, from virt. A tick whose work outlasted
// the tick (the top of the hour, when a 3,000-account demo's resolvers
// make 15,000 calls) is made up by the cheap ticks after it, each moving
// up to catchUp ticks' worth, rather than lost: a ticker drops the ticks
// it could not deliver, and a third of a large demo's time was lost so.
// A debt of more than maxDebt of real time is forgiven: that machine runs
// the demo slower than --speed.
type schedule struct {
	wall, virt time.Time
	speed      float64
}

// limit returns how far a tick at real time wall moves a clock that
// reads now.
func (s *schedule) limit(now, wall time.Time) time.Time {
	step := time.Duration(float64(tick) * s.speed)
	want := s.virt.Add(time.Duration(float64(wall.Sub(s.wall)) * s.speed))
	if want.Sub(now) > time.Duration(float64(maxDebt)*s.speed) {
		s.wall, s.virt = wall, now.Add(step)
		return s.virt
	}
	if most := now.Add(catchUp * step); want.After(most) {
		return most
	}
	if want.Before(now) {
		return now
	}
	return want
}

// output prints the demo's live summary.
type output struct {
	w     io.Writer
	quiet bool
	start time.Time
	accts map[string]*account

	mu       sync.Mutex
	mon      *monitor.Monitor
	lastLine time.Time
	addr     string
}

// summaryEvery is how much virtual time passes between summary lines.
const summaryEvery = 3 * time.Hour

func (d *output) printf(format string, args ...any) {
	if d.quiet {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.w, format, args...)
}

// clock formats a virtual instant as time since the demo's start.
func (d *output) clock(t time.Time) string {
	el := t.Sub(d.start)
	day := int(el / (24 * time.Hour))
	el -= time.Duration(day) * 24 * time.Hour
	return fmt.Sprintf("day %d %02d:%02d", day+1, int(el/time.Hour), int(el%time.Hour/time.Minute))
}

func (d *output) banner(addr string, o Options) {
	d.mu.Lock()
	d.addr = addr
	d.mu.Unlock()
	perDay := time.Duration(float64(24*time.Hour) / o.Speed).Round(time.Second)
	d.printf("tgsafety demo: %d simulated accounts on the in-process test server; one simulated day every %s.\n", len(d.accts), perDay)
	d.printf("status page http://%s/   API http://%s/api/v1/accounts   metrics http://%s/metrics\n", addr, addr, addr)
	if len(d.accts) <= 24 {
		names := make([]string, 0, len(d.accts))
		for n := range d.accts {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			d.printf("  %-22s %s\n", n, d.accts[n].b.What)
		}
	}
	if o.For > 0 {
		d.printf("stopping after %s of simulated time; Ctrl-C stops earlier.\n", o.For)
	} else {
		d.printf("Ctrl-C stops the demo.\n")
	}
}

// watch prints every state change as it happens.
func (d *output) watch(mon *monitor.Monitor) {
	d.mu.Lock()
	d.mon = mon
	d.mu.Unlock()
	mon.Subscribe(func(e monitor.Event) {
		if e.Type != monitor.EventState || (e.From == monitor.Unknown && e.State == monitor.OK) {
			return // first contact of a healthy account: not news
		}
		why := e.Reason
		if e.Probe != "" {
			why = e.Probe + " probe: " + why
		}
		d.printf("%s  %-22s %s -> %s  (risk %.0f) %s\n", d.clock(e.Time), e.Account, e.From, e.State, e.Risk, why)
	})
}

func (d *output) serverEvent(at time.Time, a *account, err error) {
	if err != nil {
		d.printf("%s  %-22s test server: %s failed: %v\n", d.clock(at), a.name, a.b.Server.What, err)
		return
	}
	d.printf("%s  %-22s test server: %s\n", d.clock(at), a.name, a.b.Server.What)
}

// tick prints the per-state summary every summaryEvery of virtual time.
func (d *output) tick(now time.Time) {
	d.mu.Lock()
	due := d.mon != nil && now.Sub(d.lastLine) >= summaryEvery
	if due {
		d.lastLine = now.Truncate(summaryEvery)
	}
	mon := d.mon
	d.mu.Unlock()
	if due {
		d.printf("%s  == %s\n", d.clock(now), stateCounts(mon))
	}
}

func (d *output) done(now time.Time) {
	d.mu.Lock()
	mon := d.mon
	d.mu.Unlock()
	d.printf("%s  demo finished: %s\n", d.clock(now), stateCounts(mon))
}

// stateCounts is "ok 5 · throttled 2 · ...", in the order of severity.
func stateCounts(mon *monitor.Monitor) string {
	if mon == nil {
		return ""
	}
	n := map[monitor.State]int{}
	for _, a := range mon.Accounts() {
		n[a.Snapshot().State]++
	}
	var parts []string
	for _, st := range monitor.States() {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n[st]))
		}
	}
	return strings.Join(parts, " · ")
}

// trafficSwitch stops the simulated applications for good and waits until
// none is inside a call: the daemon keeps running, with probes only.
type trafficSwitch struct {
	ctx    context.Context
	cancel context.CancelFunc
	pace   *pacer

	mu      sync.Mutex
	stopped bool
	running sync.WaitGroup
}

func newTrafficSwitch(pace *pacer) *trafficSwitch {
	ctx, cancel := context.WithCancel(context.Background())
	return &trafficSwitch{ctx: ctx, cancel: cancel, pace: pace}
}

// drive wraps a Drive function so that stop ends it.
func (t *trafficSwitch) drive(fn func(ctx context.Context, name string, api *tg.Client) error) func(ctx context.Context, name string, api *tg.Client) error {
	return func(ctx context.Context, name string, api *tg.Client) error {
		t.mu.Lock()
		if t.stopped {
			t.mu.Unlock()
			<-ctx.Done()
			return ctx.Err()
		}
		t.running.Add(1)
		t.mu.Unlock()
		dctx, cancel := context.WithCancel(ctx)
		unhook := context.AfterFunc(t.ctx, cancel)
		t.pace.enter(name)
		err := fn(dctx, name, api)
		t.pace.leave()
		unhook()
		cancel()
		t.running.Done()
		if t.ctx.Err() != nil && ctx.Err() == nil {
			// Stopped by the switch, not by the client: a Drive that
			// returned would restart the client.
			<-ctx.Done()
			return ctx.Err()
		}
		return err
	}
}

// stop ends every running application and waits for them.
func (t *trafficSwitch) stop() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	t.cancel()
	t.running.Wait()
}
