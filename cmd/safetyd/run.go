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
	"strconv"
	"syscall"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/service"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/sessionfile"
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
	log := service.NewLogger(stderr, level)
	defer func() { _ = log.Sync() }()
	for _, w := range cfg.Warnings() {
		log.Warn(config.FormatProblem(*path, w, "warning"))
	}

	connect, err := telegramConnect(cfg, sec)
	if err != nil {
		log.Error("safetyd cannot start", zap.Error(err))
		return 1
	}
	ctx, stop := ossignal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = service.Serve(ctx, service.Setup{
		Config: cfg, ConfigPath: *path, Log: log, Level: level, Token: sec.Token.Reveal(), Version: version,
		StoreDSN: sec.StoreDSN.Reveal(), StorePassword: sec.StorePassword.Reveal(),
		Connect: connect,
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

// telegramConnect connects accounts to Telegram: the production DCs or
// the test DCs as configured, with the account's session file; or, with
// telegram.simulated, every account to that simulated Telegram.
func telegramConnect(cfg *config.Config, sec *config.Secrets) (func(config.AccountConfig) (runner.Connection, error), error) {
	var sim telegram.Options
	if s := cfg.Telegram.Simulated; s != nil {
		var err error
		if sim, err = simulatedOptions(s); err != nil {
			return nil, err
		}
	}
	return func(a config.AccountConfig) (runner.Connection, error) {
		opts := sim
		if cfg.Telegram.Simulated == nil {
			opts.DCList = dcs.Prod()
			if a.DC == config.DCTest {
				opts.DCList = dcs.Test()
			}
		}
		opts.SessionStorage = sessionfile.File{Path: cfg.SessionPath(a.Name)}
		return runner.Connection{APIID: sec.APIID, APIHash: sec.APIHash.Reveal(), Options: opts}, nil
	}, nil
}

// simulatedOptions point a client at a simulated Telegram.
func simulatedOptions(s *config.SimulatedTelegram) (telegram.Options, error) {
	pemBytes, err := os.ReadFile(s.PublicKeyFile)
	if err != nil {
		return telegram.Options{}, fmt.Errorf("telegram.simulated.public_key_file: %w", err)
	}
	keys, err := crypto.ParseRSAPublicKeys(pemBytes)
	if err != nil || len(keys) == 0 {
		return telegram.Options{}, fmt.Errorf("telegram.simulated.public_key_file %s: not a PEM RSA public key", s.PublicKeyFile)
	}
	host, portText, err := net.SplitHostPort(s.Address)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		return telegram.Options{}, fmt.Errorf("telegram.simulated.address: not host:port")
	}
	dc := s.DC
	if dc == 0 {
		dc = 2
	}
	opts := telegram.Options{DC: dc, DCList: dcs.List{Options: []tg.DCOption{{ID: dc, IPAddress: host, Port: port}}},
		Resolver: dcs.Plain(dcs.PlainOptions{})}
	for _, k := range keys {
		opts.PublicKeys = append(opts.PublicKeys, telegram.PublicKey{RSA: k})
	}
	return opts, nil
}
