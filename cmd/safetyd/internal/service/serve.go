package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	ossignal "os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/httpserver"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/lockfile"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/sdnotify"
)

// NewLogger logs JSON lines to w (journald and log shippers parse them).
func NewLogger(w io.Writer, level zap.AtomicLevel) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), level))
}

// Setup is what serve needs; run and demo fill it differently.
type Setup struct {
	Config     *config.Config
	ConfigPath string // reloaded on SIGHUP; empty: no reload
	Log        *zap.Logger
	Level      zap.AtomicLevel
	Token      string
	// Version is the daemon's, for /healthz, build_info and the log.
	Version string
	// StoreDSN and StorePassword connect to a PostgreSQL store
	// (config.Secrets); unused with SQLite.
	StoreDSN, StorePassword string
	Connect                 func(config.AccountConfig) (runner.Connection, error)
	// Tune, when set, adjusts the service options (the demo's clock and
	// traffic).
	Tune func(*Options)
	// Listening, when set, is told the HTTP address once it listens.
	Listening func(addr string)
	// Started, when set, runs once the service has started and gets it.
	Started func(ctx context.Context, svc *Service)
}

// Serve opens the store, starts the service and the HTTP server, reloads on
// SIGHUP and shuts down in order when ctx ends: HTTP first (no new
// acknowledgements), then the accounts, then the store.
func Serve(ctx context.Context, d Setup) error {
	cfg, log := d.Config, d.Log
	reg := prometheus.NewRegistry()
	if err := os.MkdirAll(cfg.SessionsDir, 0o700); err != nil {
		return fmt.Errorf("sessions_dir %s: %w", cfg.SessionsDir, err)
	}
	sessionsLock, err := lockfile.Take(filepath.Join(cfg.SessionsDir, ".lock"), "sessions_dir")
	if err != nil {
		return err
	}
	defer sessionsLock.Release()
	st, pg, leases, closeStore, err := openStore(ctx, d, reg)
	if err != nil {
		return err
	}
	defer closeStore()
	opts := Options{
		Config: cfg, Logger: log, Registry: reg, Store: st, Token: d.Token, Version: d.Version, Connect: d.Connect,
	}
	if leases != nil {
		opts.Leases, opts.Inbox = leases, pg
	}
	if d.Tune != nil {
		d.Tune(&opts)
	}
	svc, err := New(opts)
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
	log.Info("Started", zap.String("version", d.Version), zap.Int("accounts", len(cfg.Accounts)))
	if d.Started != nil {
		d.Started(ctx, svc)
	}
	if err := sdnotify.Notify("READY=1"); err != nil {
		log.Warn("Cannot tell the service manager the daemon is ready", zap.Error(err))
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

	_ = sdnotify.Notify("STOPPING=1")
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

// Shutdown budget: how long SIGTERM waits for HTTP requests in flight and
// then for the store to be flushed, before giving up (systemd's default
// TimeoutStopSec is 90 s).
const (
	httpShutdownTimeout  = 10 * time.Second
	storeShutdownTimeout = 30 * time.Second
)
