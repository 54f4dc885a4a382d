package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	ossignal "os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/httpserver"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/lockfile"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/sessionfile"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// Shutdown budget: how long SIGTERM waits for HTTP requests in flight and
// then for the store to be flushed, before giving up (systemd's default
// TimeoutStopSec is 90 s).
const (
	httpShutdownTimeout  = 10 * time.Second
	storeShutdownTimeout = 30 * time.Second
)

// runDaemon is "safetyd run": monitor the configured accounts until
// SIGTERM or SIGINT; SIGHUP reloads the configuration.
func runDaemon(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `FILE` (required)")
	if code, ok := parseFlags(fs, args, "usage: safetyd run --config FILE", stderr); !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "run: --config FILE is required")
		return 2
	}
	cfg, err := config.LoadConfig(*path)
	if err != nil {
		return reportConfigError(stderr, *path, err)
	}
	sec, err := cfg.Resolve(os.Getenv, false)
	if err != nil {
		return reportConfigError(stderr, *path, err)
	}
	level := zap.NewAtomicLevel()
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	log := newLogger(stderr, level)
	defer func() { _ = log.Sync() }()
	for _, w := range cfg.Warnings() {
		log.Warn(config.FormatProblem(*path, w, "warning"))
	}

	ctx, stop := ossignal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = serve(ctx, daemonSetup{
		Config: cfg, ConfigPath: *path, Log: log, Level: level, Token: sec.Token.Reveal(),
		Connect: telegramConnect(cfg, sec),
	})
	if err != nil {
		log.Error("safetyd stopped", zap.Error(err))
		return 1
	}
	return 0
}

// parseFlags parses args; ok is false when the command should exit with
// code (0 for -h, 2 for bad usage).
func parseFlags(fs *flag.FlagSet, args []string, usage string, stderr io.Writer) (code int, ok bool) {
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %s\n", fs.Name(), config.Quote(fs.Arg(0)))
		fs.Usage()
		return 2, false
	}
	return 0, true
}

// newLogger logs JSON lines to w (journald and log shippers parse them).
func newLogger(w io.Writer, level zap.AtomicLevel) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), level))
}

// telegramConnect connects accounts to Telegram: the production DCs or
// the test DCs as configured, with the account's session file.
func telegramConnect(cfg *config.Config, sec *config.Secrets) func(config.AccountConfig) (runner.Connection, error) {
	return func(a config.AccountConfig) (runner.Connection, error) {
		list := dcs.Prod()
		if a.DC == config.DCTest {
			list = dcs.Test()
		}
		return runner.Connection{
			APIID: sec.APIID, APIHash: sec.APIHash.Reveal(),
			Options: telegram.Options{DCList: list, SessionStorage: sessionfile.File{Path: cfg.SessionPath(a.Name)}},
		}, nil
	}
}

// daemonSetup is what serve needs; run and demo fill it differently.
type daemonSetup struct {
	Config     *config.Config
	ConfigPath string // reloaded on SIGHUP; empty: no reload
	Log        *zap.Logger
	Level      zap.AtomicLevel
	Token      string
	Connect    func(config.AccountConfig) (runner.Connection, error)
	// Tune, when set, adjusts the service options (the demo's clock and
	// traffic).
	Tune func(*serviceOptions)
	// Listening, when set, is told the HTTP address once it listens.
	Listening func(addr string)
	// Started, when set, runs once the service has started and gets it.
	Started func(ctx context.Context, svc *service)
}

// serve opens the store, starts the service and the HTTP server, reloads on
// SIGHUP and shuts down in order when ctx ends: HTTP first (no new
// acknowledgements), then the accounts, then the store.
func serve(ctx context.Context, d daemonSetup) error {
	cfg, log := d.Config, d.Log
	reg := prometheus.NewRegistry()
	storeLock, err := lockfile.Take(cfg.Store.Path+".lock", "store")
	if err != nil {
		return err
	}
	defer storeLock.Release()
	if err := os.MkdirAll(cfg.SessionsDir, 0o700); err != nil {
		return fmt.Errorf("sessions_dir %s: %w", cfg.SessionsDir, err)
	}
	sessionsLock, err := lockfile.Take(filepath.Join(cfg.SessionsDir, ".lock"), "sessions_dir")
	if err != nil {
		return err
	}
	defer sessionsLock.Release()
	st, err := store.OpenSQLite(cfg.Store.Path, store.Options{Logger: log.Named("store"), Registerer: reg})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn("Cannot close store", zap.Error(err))
		}
	}()
	opts := serviceOptions{
		Config: cfg, Logger: log, Registry: reg, Store: st, Token: d.Token, Version: version, Connect: d.Connect,
	}
	if d.Tune != nil {
		d.Tune(&opts)
	}
	svc, err := newService(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	srv, ln := httpserver.New(cfg.HTTP, ln, svc.Handler(), log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	log.Info("Listening", zap.String("addr", addr), zap.Bool("token", d.Token != ""))
	if d.Listening != nil {
		d.Listening(addr)
	}

	svcCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	if err := svc.Start(svcCtx); err != nil {
		_ = srv.Close()
		return err
	}
	log.Info("Started", zap.String("version", version), zap.Int("accounts", len(cfg.Accounts)))
	if d.Started != nil {
		d.Started(ctx, svc)
	}

	hup := make(chan os.Signal, 1)
	if d.ConfigPath != "" {
		ossignal.Notify(hup, syscall.SIGHUP)
		defer ossignal.Stop(hup)
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-serveErr:
			runErr = fmt.Errorf("http server: %w", err)
			break loop
		case <-hup:
			reload(d, svc)
		}
	}

	log.Info("Shutting down")
	hctx, hcancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer hcancel()
	if err := srv.Shutdown(hctx); err != nil {
		log.Warn("HTTP requests still in flight at shutdown", zap.Error(err))
	}
	sctx, scancel := context.WithTimeout(context.Background(), storeShutdownTimeout)
	defer scancel()
	if err := svc.Shutdown(sctx); err != nil {
		return errors.Join(runErr, fmt.Errorf("flush store: %w", err))
	}
	log.Info("Stopped; store flushed")
	return runErr
}

// reload applies the configuration file again (SIGHUP). A file with
// problems changes nothing: the daemon keeps running on the old one.
func reload(d daemonSetup, svc *service) {
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
