package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/testserver"
)

// readyUsernames is how many population usernames the ready line lists:
// enough for a client to run into the cold-DM limits without asking.
const readyUsernames = 100

// readyLine is the single JSON line serve prints on stdout once clients
// can connect. Field names are a contract with other processes (see
// docs/testserver.md).
type readyLine struct {
	Addr        string   `json:"addr"`
	DC          int      `json:"dc"`
	PublicKey   string   `json:"public_key"`
	LoginCode   string   `json:"login_code"`
	Usernames   []string `json:"usernames"`
	ControlAddr string   `json:"control_addr,omitempty"`
}

// serveConfig is the parsed serve command line.
type serveConfig struct {
	addr         string
	key          string
	keyOut       string
	profilePath  string
	users        int
	seed         uint64
	controlAddr  string
	controlToken string
}

// usageError is a problem with the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// serveCommand runs `scenario-run serve` until SIGINT or SIGTERM.
func serveCommand(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseServe(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(stderr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return fail(stderr, serve(ctx, stop, cfg, stdout, stderr))
}

// fail reports err and returns the exit status for it.
func fail(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "scenario-run serve:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	var cfg serveConfig
	fs := flag.NewFlagSet("scenario-run serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:0", "MTProto TCP `address`; a missing host means 127.0.0.1 (write 0.0.0.0:PORT to listen on every interface)")
	fs.StringVar(&cfg.keyOut, "key-out", "", "`file` to write the server's RSA public key to (PEM, mode 0600); required")
	fs.StringVar(&cfg.key, "key", "", "the server's RSA private key `file` (PEM: RSA PRIVATE KEY or PRIVATE KEY, 2048 bits); created when missing, so later runs serve the same key (default: a fresh key per run)")
	fs.StringVar(&cfg.profilePath, "profile", "", "limits profile YAML `file` (default: the embedded default profile)")
	fs.IntVar(&cfg.users, "users", 1000, "size of the simulated population (at least 100)")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed for the population and the simulated spam reports")
	fs.StringVar(&cfg.controlAddr, "control-addr", "", "serve the HTTP control API on this `address` (default: none); a missing host means 127.0.0.1; an address other than loopback requires --control-token")
	fs.StringVar(&cfg.controlToken, "control-token", os.Getenv("TGSAFETY_CONTROL_TOKEN"),
		"require `token` as \"Authorization: Bearer <token>\" on the control API (default $TGSAFETY_CONTROL_TOKEN; the environment keeps it out of ps)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: scenario-run serve --key-out FILE [--key FILE] [flags]\n\n"+
			"Serves the simulated Telegram over TCP, prints one JSON line on stdout when\n"+
			"ready (addr, dc, public_key, login_code, usernames, control_addr) and runs\n"+
			"until SIGINT or SIGTERM. Logs go to stderr.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		// The flag package has already printed the problem and the usage.
		return cfg, usagef("bad flags: %v", err)
	}
	if fs.NArg() > 0 {
		return cfg, usagef("unexpected argument %q (serve takes only flags)", fs.Arg(0))
	}
	if cfg.keyOut == "" {
		return cfg, usagef("--key-out is required: clients need the server's public key to connect")
	}
	if cfg.key != "" {
		a, errA := filepath.Abs(cfg.key)
		b, errB := filepath.Abs(cfg.keyOut)
		if errA == nil && errB == nil && a == b {
			return cfg, usagef("--key and --key-out name the same file %s: the public key would overwrite the private one", cfg.key)
		}
	}
	if cfg.users < readyUsernames {
		return cfg, usagef("--users must be at least %d (the ready line lists %d usernames), got %d", readyUsernames, readyUsernames, cfg.users)
	}
	var err error
	if cfg.addr, err = loopbackDefault("--addr", cfg.addr); err != nil {
		return cfg, err
	}
	if cfg.controlAddr != "" {
		if cfg.controlAddr, err = loopbackDefault("--control-addr", cfg.controlAddr); err != nil {
			return cfg, err
		}
		if host, _, _ := net.SplitHostPort(cfg.controlAddr); !isLoopbackHost(host) && cfg.controlToken == "" {
			return cfg, errControlNeedsToken(cfg.controlAddr)
		}
	} else if cfg.controlToken != "" {
		return cfg, usagef("--control-token needs --control-addr")
	}
	return cfg, nil
}

// loopbackDefault checks a host:port flag and fills an empty host with
// 127.0.0.1: Go would otherwise listen on every interface, and this server
// hands out sessions to anyone who asks.
func loopbackDefault(flagName, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usagef("%s %q: want host:port, such as 127.0.0.1:0", flagName, addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", usagef("%s %q: port must be a number from 0 to 65535", flagName, addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// isLoopbackHost reports whether host can only be reached from this
// machine: a loopback IP or "localhost". Any other name may resolve to
// anything, so it counts as reachable from other hosts.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// errControlNeedsToken refuses a control API reachable from other hosts
// without a token: its session endpoint hands out auth keys to whoever
// asks.
func errControlNeedsToken(addr string) error {
	return usagef("--control-addr %s is not a loopback address: it needs --control-token "+
		"(or $TGSAFETY_CONTROL_TOKEN), because the control API hands out sessions to whoever asks", addr)
}

// serve runs the server until ctx ends. stop releases the signal handlers
// once shutdown starts, so that a second Ctrl-C kills a stuck shutdown.
func serve(ctx context.Context, stop func(), cfg serveConfig, stdout, stderr io.Writer) error {
	log := newLogger(stderr)
	defer func() { _ = log.Sync() }()

	opts := testserver.Options{Users: cfg.users, Seed: cfg.seed, Logger: log.Named("testserver")}
	if cfg.key != "" {
		key, created, err := testserver.LoadOrCreateKey(cfg.key)
		if err != nil {
			return usagef("--key: %v", err)
		}
		if created {
			log.Info("Generated a server key", zap.String("file", cfg.key))
		}
		if !testserver.FingerprintUsable(&key.PublicKey) {
			log.Warn("The key's fingerprint starts with a 0 hex digit: mtcute 0.30.3 cannot match it; other clients can",
				zap.String("file", cfg.key), zap.String("fingerprint", testserver.Fingerprint(&key.PublicKey)))
		}
		opts.Key = key
	}
	if cfg.profilePath != "" {
		p, err := limits.Load(cfg.profilePath)
		if err != nil {
			// limits.Load names the file in its error.
			return usagef("--profile: %v", err)
		}
		opts.Profile = p
	}
	s, err := testserver.New(opts)
	if err != nil {
		return err
	}
	serving := false
	defer func() {
		_ = s.Close()
		if serving {
			log.Info("Stopped")
		}
	}()

	keyPath, err := filepath.Abs(cfg.keyOut)
	if err != nil {
		return usagef("--key-out %s: %v", cfg.keyOut, err)
	}
	if err := writeFileAtomic(keyPath, s.PublicKeyPEM()); err != nil {
		return usagef("--key-out: %v", err)
	}

	addr, err := s.ListenTCP(cfg.addr)
	if err != nil {
		return err
	}
	ready := readyLine{
		Addr: addr.String(), DC: s.DC(), PublicKey: keyPath, LoginCode: s.LoginCode(),
		Usernames: s.Usernames(readyUsernames),
	}

	httpErr := make(chan error, 1)
	if cfg.controlAddr != "" {
		l, err := net.Listen("tcp", cfg.controlAddr)
		if err != nil {
			return fmt.Errorf("--control-addr: %w", err)
		}
		if tcp, ok := l.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && cfg.controlToken == "" {
			// "localhost" resolved to something else: same refusal.
			_ = l.Close()
			return errControlNeedsToken(l.Addr().String())
		}
		hs := &http.Server{
			Handler:           s.ControlHandler(cfg.controlToken),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          zap.NewStdLog(log.Named("control")),
		}
		go func() { httpErr <- hs.Serve(l) }()
		defer func() {
			// Shutdown closes the listener and waits for requests in
			// flight, which never wait on virtual time.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil {
				log.Warn("Control API shutdown", zap.Error(err))
			}
		}()
		ready.ControlAddr = l.Addr().String()
	}

	log.Info("Serving", zap.String("addr", ready.Addr), zap.Int("dc", ready.DC),
		zap.String("public_key", keyPath), zap.String("fingerprint", testserver.Fingerprint(s.PublicKey())),
		zap.String("control_addr", ready.ControlAddr), zap.Ints("layers", testserver.Layers()))
	serving = true
	// The ready line is the only thing serve writes to stdout.
	if err := json.NewEncoder(stdout).Encode(ready); err != nil {
		return fmt.Errorf("write the ready line: %w", err)
	}

	select {
	case <-ctx.Done():
		stop()
		log.Info("Shutting down")
		return nil
	case err := <-httpErr:
		return fmt.Errorf("control API: %w", err)
	}
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file in the same directory: a client polling for the key never reads a
// half-written one, and an existing file with looser permissions is
// replaced rather than keeping its mode.
func writeFileAtomic(path string, data []byte) error {
	if err := writeViaTemp(path, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeViaTemp(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// newLogger logs human-readable lines to stderr: stdout is reserved for
// the ready line.
func newLogger(stderr io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(stderr), zap.InfoLevel)
	return zap.New(core).Named("scenario-run")
}
