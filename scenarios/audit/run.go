package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"

	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/vclock"
	"github.com/tgsafety/tgsafety/testserver"
)

// Defaults of Options.
const (
	// DefaultFor is how long a client runs when Options.For is zero.
	DefaultFor = 2 * time.Minute
	// MaxFor bounds Options.For: an audit is a test, not a deployment.
	MaxFor = 24 * time.Hour
	// DefaultAge is an account's age unless given: two years, an adult
	// account under the profile.
	DefaultAge = 730 * 24 * time.Hour
	// DefaultStopGrace is how long a command has to exit after SIGTERM
	// before it is killed.
	DefaultStopGrace = 5 * time.Second
	// strangersListed is how many stranger usernames the client is given.
	strangersListed = 100
	// outputLines is how many of the client's last output lines the
	// report keeps.
	outputLines = 20
)

// Options configures an audit. Set exactly one of Command and Func.
type Options struct {
	// Command is the program to audit and its arguments; it runs with
	// the connection details in its environment (docs/audit.md).
	Command []string
	// Func is a Go function to audit: it drives gotd clients made from
	// Env's options, and returns when done.
	Func func(ctx context.Context, env *Env) error
	// Plan is the fault plan; nil means DefaultPlan().
	Plan *Plan
	// Accounts are created when the plan lists none; nil means one
	// account, acct-1.
	Accounts []AccountSpec
	// For bounds the run in real time (DefaultFor when zero); the client
	// is stopped when it has not exited by then.
	For time.Duration
	// Profile is the limits profile the server applies and the rules
	// judge by; nil means limits.Default().
	Profile *limits.Profile
	// Users is the simulated population (default 1000); Seed its seed.
	Users int
	Seed  uint64
	// MaxRecords caps the calls and the connection events kept
	// (DefaultMaxRecords when zero); the report counts the rest.
	MaxRecords int
	// Progress receives a line for each thing that happens while the
	// client runs (nil: none).
	Progress io.Writer
	// ClientOutput, when set, also receives the command's output as it
	// comes (the report keeps its last lines either way).
	ClientOutput io.Writer
	// Dir holds the session files and the server's key; a temporary
	// directory, removed afterwards, when empty.
	Dir string
	// StopGrace is how long the command has after SIGTERM
	// (DefaultStopGrace when zero).
	StopGrace time.Duration
}

// Env is what an audited Go function gets: an account list with ready
// gotd options (in-memory transport to the audit's server, a provisioned
// session), and the usernames to work with.
type Env struct {
	Accounts []EnvAccount
	// Usernames are strangers to every account.
	Usernames []string
	LoginCode string
}

// EnvAccount is one account of an Env.
type EnvAccount struct {
	Name     string
	Phone    string
	Username string
	// Contacts are the usernames of its mutual contacts.
	Contacts []string
	// Options reach the audit's server with the account's session; add
	// middlewares and handlers as the program under test does.
	Options telegram.Options
}

// SetupError is a problem with the audit's configuration or environment:
// nothing was judged (scenario-run exits 2).
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

func setupf(format string, args ...any) error {
	return &SetupError{Err: fmt.Errorf(format, args...)}
}

// Run audits a client: it starts the test server, creates the accounts,
// runs the command (or function) while the plan provokes Telegram's
// reactions, and judges what reached the server. An error means the
// audit could not run (a *SetupError for bad options, a plan that names
// unknown accounts, a command that does not start); a client that
// misbehaves, fails or is stopped is a report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if (len(opts.Command) == 0) == (opts.Func == nil) {
		return nil, setupf("audit: give a command or a function to audit")
	}
	if opts.For == 0 {
		opts.For = DefaultFor
	}
	if opts.For < 0 || opts.For > MaxFor {
		return nil, setupf("audit: the run time must be within 1s-%s, got %s", fmtDur(MaxFor), opts.For)
	}
	if opts.Plan == nil {
		opts.Plan = DefaultPlan()
	}
	accounts := opts.Plan.Accounts
	switch {
	case accounts != nil && opts.Accounts != nil:
		return nil, setupf("audit: the plan %s lists its accounts; drop the account options", opts.Plan.File)
	case accounts == nil && opts.Accounts != nil:
		accounts = opts.Accounts
	case accounts == nil:
		accounts = []AccountSpec{{Name: "acct-1", Age: DefaultAge, Lang: "en"}}
	}
	for _, a := range accounts {
		if err := checkAccountName(a.Name); err != nil {
			return nil, setupf("audit: %v", err)
		}
	}
	if opts.Profile == nil {
		opts.Profile = limits.Default()
	}
	if opts.Users == 0 {
		opts.Users = 1000
	}
	if need := strangersListed + len(accounts)*maxContacts; opts.Users < need {
		return nil, setupf("audit: the population must be at least %d users for %d accounts, got %d", need, len(accounts), opts.Users)
	}
	if opts.MaxRecords == 0 {
		opts.MaxRecords = DefaultMaxRecords
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = DefaultStopGrace
	}
	var progressMu sync.Mutex
	progress := func(format string, args ...any) {
		if opts.Progress == nil {
			return
		}
		progressMu.Lock()
		fmt.Fprintf(opts.Progress, "  "+format+"\n", args...)
		progressMu.Unlock()
	}

	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "tgsafety-audit-")
		if err != nil {
			return nil, setupf("audit: %v", err)
		}
		defer func() { _ = os.RemoveAll(d) }()
		dir = d
	}

	rec := newRecorder(opts.MaxRecords, progress)
	clk := vclock.New(time.Now())
	rec.clk = clk
	srv, err := testserver.New(testserver.Options{Clock: clk, Profile: opts.Profile, Users: opts.Users, Seed: opts.Seed, Observer: rec})
	if err != nil {
		return nil, setupf("audit: %v", err)
	}
	defer func() { _ = srv.Close() }()
	rec.srv = srv
	if err := opts.Plan.check(accounts, srv.Methods()); err != nil {
		return nil, &SetupError{Err: err}
	}
	srv.Start()
	addr, err := srv.ListenTCP("127.0.0.1:0")
	if err != nil {
		return nil, setupf("audit: %v", err)
	}
	keyFile := filepath.Join(dir, "server-key.pem")
	if err := os.WriteFile(keyFile, srv.PublicKeyPEM(), 0o600); err != nil {
		return nil, setupf("audit: %v", err)
	}

	population := srv.Usernames(opts.Users)
	strangers := population[:strangersListed]
	env := &Env{Usernames: strangers, LoginCode: srv.LoginCode()}
	var eas []envAccount
	for i, spec := range accounts {
		ea, err := createAccount(srv, rec, dir, i, spec, population)
		if err != nil {
			return nil, setupf("audit: account %s: %v", spec.Name, err)
		}
		eas = append(eas, ea)
		st := new(session.StorageMemory)
		if err := (&session.Loader{Storage: st}).Save(ctx, ea.data); err != nil {
			return nil, setupf("audit: %v", err)
		}
		o := srv.ClientOptions()
		o.SessionStorage = st
		env.Accounts = append(env.Accounts, EnvAccount{Name: spec.Name, Phone: ea.phone, Username: ea.username, Contacts: ea.contacts, Options: o})
	}

	what := "a Go function"
	if len(opts.Command) > 0 {
		what = strings.Join(opts.Command, " ")
	}
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "▶ audit of %s: %d account(s), plan %s, at most %s\n", what, len(accounts), opts.Plan.File, fmtDur(opts.For))
		progress("server %s (DC %d), sessions and key in %s", addr, srv.DC(), dir)
	}

	exec := newExecutor(rec, srv, opts.Plan, accounts)
	rec.exec = exec
	start := time.Now()
	rec.mu.Lock()
	rec.start = start
	rec.mu.Unlock()
	stopTicks := tickClock(clk)
	exec.start()

	var cr ClientResult
	out := newTail(outputLines, eas)
	if len(opts.Command) > 0 {
		vars := environment(addr.IP.String(), addr.Port, srv.DC(), keyFile, srv.LoginCode(), strangers, eas)
		if err := runCommand(ctx, opts, vars, out, progress, start, &cr); err != nil {
			exec.stop()
			stopTicks()
			return nil, err
		}
	} else {
		cr.Function = true
		runFunc(ctx, opts, env, progress, start, &cr)
	}
	exec.stop()
	stopTicks()
	cr.Output, cr.OutputLines = out.lines()
	// The client is gone; its connections close as the server sees it.
	_ = srv.Close()

	t := rec.trace(opts.Profile, guard.DefaultMargin)
	rep := &Report{Command: opts.Command, Plan: opts.Plan.File, Start: start, Wall: time.Since(start), For: opts.For, Client: cr,
		Profile: opts.Profile.Name, Margin: guard.DefaultMargin}
	if opts.Func != nil {
		rep.Command = []string{"(Go function)"}
	}
	rep.Records = RecordStats{Calls: len(t.calls), KeyEvents: len(t.keyEvents), Connections: len(t.conns),
		DroppedCalls: rec.droppedCalls, DroppedEvents: rec.droppedEvents, Cap: opts.MaxRecords}
	rep.Findings = judge(t, opts.Plan.Severity)
	rep.Faults = faultReports(t, exec)
	rep.Accounts = accountReports(t, rec, rep)
	rep.Rules = ruleResults(t, opts.Plan.Severity, rep.Findings)
	for _, f := range rep.Findings {
		switch f.Severity {
		case SeverityError:
			rep.Errors++
		case SeverityWarning:
			rep.Warnings++
		}
	}
	rep.Passed = rep.Errors == 0
	return rep, nil
}

// createAccount makes one audited account with its contacts and a
// provisioned session, and writes its gotd session file.
func createAccount(srv *testserver.Server, rec *recorder, dir string, i int, spec AccountSpec, population []string) (envAccount, error) {
	ea := envAccount{spec: spec, phone: fmt.Sprintf("99966%d%04d", srv.DC(), i+1), username: fmt.Sprintf("tgs_audit_%d", i+1)}
	uid, err := srv.CreateAccount(testserver.AccountSpec{Phone: ea.phone, FirstName: spec.Name, Username: ea.username,
		Age: spec.Age, Lang: spec.Lang, Premium: spec.Premium})
	if err != nil {
		return ea, err
	}
	// Contacts come from the end of the population, away from the
	// strangers listed to every account.
	for j := 0; j < spec.Contacts; j++ {
		u := population[len(population)-1-i*maxContacts-j]
		if err := srv.MakeMutual(ea.phone, u); err != nil {
			return ea, err
		}
		ea.contacts = append(ea.contacts, u)
	}
	data, err := srv.Session(ea.phone)
	if err != nil {
		return ea, err
	}
	ea.data = data
	ea.file = filepath.Join(dir, spec.Name+".session.json")
	if err := writeSessionFile(ea.file, data); err != nil {
		return ea, err
	}
	rec.addAccount(&acctInfo{spec: spec, userID: uid, phone: ea.phone}, [8]byte(data.AuthKeyID))
	return ea, nil
}

// tickClock moves the virtual clock with real time, so that the
// simulation's timers (held answers) fire while no call arrives. Each
// call also moves it (recorder.BeforeCall).
func tickClock(clk *vclock.Clock) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				clk.AdvanceTo(now)
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// ClientResult is how the audited client ended.
type ClientResult struct {
	// Function is true when the client was a Go function (Options.Func).
	Function bool `json:"function,omitempty"`
	// Exited is true when the client ended by itself; ExitCode is the
	// command's status then (-1 when killed by a signal).
	Exited   bool `json:"exited"`
	ExitCode int  `json:"exit_code"`
	// Stopped says how the audit ended a client that outlived --for.
	Stopped string `json:"stopped,omitempty"`
	// Error is a Go function's error, or why the command failed.
	Error string `json:"error,omitempty"`
	// Output is the client's last output lines; OutputLines counts all.
	Output      []string `json:"output"`
	OutputLines int      `json:"output_lines"`
}

func runCommand(ctx context.Context, opts Options, vars []string, out *tail, progress func(string, ...any), start time.Time, cr *ClientResult) error {
	cmd := exec.Command(opts.Command[0], opts.Command[1:]...)
	cmd.Env = append(cleanEnv(os.Environ()), vars...)
	var w io.Writer = out
	if opts.ClientOutput != nil {
		w = io.MultiWriter(out, opts.ClientOutput)
	}
	cmd.Stdout, cmd.Stderr = w, w
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return setupf("audit: cannot start %s: %v", opts.Command[0], err)
	}
	progress("+%s client started (pid %d)", fmtOffset(time.Since(start)), cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(opts.For - time.Since(start))
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
		cr.Exited = true
	case <-timer.C:
		cr.Stopped = fmt.Sprintf("still running after %s: stopped", fmtDur(opts.For))
		err = stopProcess(cmd, done, opts.StopGrace, cr)
	case <-ctx.Done():
		cr.Stopped = "the audit was interrupted: stopped"
		err = stopProcess(cmd, done, opts.StopGrace, cr)
	}
	cr.ExitCode = cmd.ProcessState.ExitCode()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		cr.Error = err.Error()
	}
	if cr.Exited {
		progress("+%s client exited with status %d", fmtOffset(time.Since(start)), cr.ExitCode)
	} else {
		progress("+%s client %s", fmtOffset(time.Since(start)), cr.Stopped)
	}
	return nil
}

// stopProcess sends SIGTERM to the command's process group, then SIGKILL
// after grace, and waits for it.
func stopProcess(cmd *exec.Cmd, done chan error, grace time.Duration, cr *ClientResult) error {
	terminate(cmd)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		cr.Stopped += " (SIGTERM)"
		return err
	case <-t.C:
		kill(cmd)
		cr.Stopped += fmt.Sprintf(" (SIGKILL: no exit %s after SIGTERM)", fmtDur(grace))
		return <-done
	}
}

// cleanEnv drops the parent's TGSAFETY_ variables, so that the client
// sees only the audit's.
func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "TGSAFETY_") {
			out = append(out, kv)
		}
	}
	return out
}

func runFunc(ctx context.Context, opts Options, env *Env, progress func(string, ...any), start time.Time, cr *ClientResult) {
	fctx, cancel := context.WithTimeout(ctx, opts.For-time.Since(start))
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- opts.Func(fctx, env)
	}()
	progress("+%s function started", fmtOffset(time.Since(start)))
	err := <-done
	switch {
	case fctx.Err() != nil && ctx.Err() == nil:
		cr.Stopped = fmt.Sprintf("still running after %s: its context was cancelled", fmtDur(opts.For))
	case ctx.Err() != nil:
		cr.Stopped = "the audit was interrupted"
	default:
		cr.Exited = true
	}
	if err != nil {
		cr.Error = err.Error()
		cr.ExitCode = 1
	}
	progress("+%s function returned: %v", fmtOffset(time.Since(start)), err)
}

// tail keeps the last lines written to it, with the audited accounts'
// phone numbers replaced by their names.
type tail struct {
	mu      sync.Mutex
	max     int
	buf     []string
	partial []byte
	total   int
	phones  *strings.Replacer
}

func newTail(n int, accts []envAccount) *tail {
	var pairs []string
	for _, a := range accts {
		pairs = append(pairs, a.phone, "<phone of "+a.spec.Name+">")
	}
	return &tail{max: n, phones: strings.NewReplacer(pairs...)}
}

// maxLine bounds a kept line.
const maxLine = 400

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range p {
		if b == '\n' {
			t.push()
			continue
		}
		if len(t.partial) < maxLine {
			t.partial = append(t.partial, b)
		}
	}
	return len(p), nil
}

func (t *tail) push() {
	t.total++
	line := t.phones.Replace(strings.TrimRight(string(t.partial), "\r"))
	t.partial = t.partial[:0]
	t.buf = append(t.buf, line)
	if len(t.buf) > t.max {
		t.buf = t.buf[1:]
	}
}

func (t *tail) lines() ([]string, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.partial) > 0 {
		t.push()
	}
	return append([]string(nil), t.buf...), t.total
}
