package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	ossignal "os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"golang.org/x/term"
)

// login is "safetyd login": sign one configured account in from the
// terminal (the code Telegram sends, then the 2FA password if set) and
// store its session file (0600) where `safetyd run` reads it.
func login(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `FILE` (required)")
	name := fs.String("account", "", "the account `NAME` to sign in (required)")
	if code, ok := parseFlags(fs, args, "usage: safetyd login --config FILE --account NAME", stderr); !ok {
		return code
	}
	if *path == "" || *name == "" {
		fmt.Fprintln(stderr, "login: --config FILE and --account NAME are required")
		return 2
	}
	cfg, err := config.LoadConfig(*path)
	if err != nil {
		return reportConfigError(stderr, *path, err)
	}
	acct, ok := cfg.Account(*name)
	if !ok {
		fmt.Fprintf(stderr, "login: %s has no account named %s\n", *path, config.Quote(*name))
		return 1
	}
	sec, err := cfg.ResolveSecrets(os.Getenv)
	if err != nil {
		return reportConfigError(stderr, *path, err)
	}
	ctx, stop := ossignal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	conn, err := telegramConnect(cfg, sec)(acct)
	if err != nil {
		fmt.Fprintln(stderr, "login:", err)
		return 1
	}
	p := &terminalPrompt{in: bufio.NewReader(os.Stdin), out: stderr, fd: int(os.Stdin.Fd())}
	return runLogin(ctx, loginJob{
		Name: acct.Name, Phone: sec.Phones[acct.Name].Reveal(), SessionPath: cfg.SessionPath(acct.Name),
		Conn: conn, Prompt: p, Stdout: stdout, Stderr: stderr,
	})
}

// loginJob is one `safetyd login` after its configuration is read.
type loginJob struct {
	Name, Phone, SessionPath string
	Conn                     runner.Connection
	Prompt                   prompt
	Stdout, Stderr           io.Writer
}

// runLogin signs the account in and returns the exit status. It says
// what it is doing while it connects, and claims a session only once the
// session file is on disk: an interrupted or failed login exits 1.
func runLogin(ctx context.Context, j loginJob) int {
	fmt.Fprintf(j.Stderr, "login %s: connecting to Telegram...\n", j.Name)
	err := signIn(ctx, j.Conn, j.Phone, j.Prompt, &loginProgress{name: j.Name, w: j.Stderr})
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(j.Stderr, "login %s: interrupted; not signed in, no session stored\n", j.Name)
		return 1
	case err != nil:
		fmt.Fprintf(j.Stderr, "login %s: %v\n", j.Name, err)
		return 1
	}
	fi, err := os.Stat(j.SessionPath)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		fmt.Fprintf(j.Stderr, "login %s: signed in, but no session file was written at %s (%v); `safetyd run` would find no session\n", j.Name, j.SessionPath, err)
		return 1
	}
	fmt.Fprintf(j.Stdout, "signed in; session stored in %s (mode %04o)\n", j.SessionPath, fi.Mode().Perm())
	return 0
}

// loginProgress reports the connection to the operator: with no network
// gotd retries for ever without a word, and the terminal would show
// nothing at all.
type loginProgress struct {
	name string
	w    io.Writer

	mu       sync.Mutex
	lastDial error // the last failed dial, for the "cannot connect" line
	failures int
}

// dialed records a dial's error (nil: it worked).
func (p *loginProgress) dialed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastDial = err
}

// state is telegram.Options.OnConnectionState.
func (p *loginProgress) state(st telegram.ConnectionState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch st {
	case telegram.ConnectionStateReady:
		p.failures = 0
		fmt.Fprintf(p.w, "login %s: connected\n", p.name)
	case telegram.ConnectionStateDisconnected:
		p.failures++
		why := "the connection failed"
		if p.lastDial != nil {
			why = p.lastDial.Error()
		}
		fmt.Fprintf(p.w, "login %s: cannot connect to Telegram (%s); retrying, attempt %d; press Ctrl-C to give up\n", p.name, why, p.failures+1)
	}
}

// loginDialTimeout bounds one connection attempt, so that a network that
// drops packets is reported as soon as one that refuses them.
const loginDialTimeout = 15 * time.Second

// prompt asks the operator for the login code and the 2FA password.
type prompt interface {
	Code(ctx context.Context) (string, error)
	Password(ctx context.Context) (string, error)
}

// signIn runs gotd's login flow on conn (whose session storage receives
// the new session). An account that is already signed in is left as is.
// It fails when ctx ends or the client stops before the flow completed:
// gotd's Run returns nil when its context is cancelled. progress, when
// not nil, is told about the connection.
func signIn(ctx context.Context, conn runner.Connection, phone string, p prompt, progress *loginProgress) error {
	opts := conn.Options
	opts.NoUpdates = true
	opts.Logger = nil
	if progress != nil {
		opts.OnConnectionState = progress.state
		if opts.Resolver == nil {
			// dcs.DefaultResolver, with the dial's error kept for the
			// progress line.
			d := net.Dialer{Timeout: loginDialTimeout}
			opts.Resolver = dcs.Plain(dcs.PlainOptions{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := d.DialContext(ctx, network, addr)
				progress.dialed(err)
				return c, err
			}})
		}
	}
	client := telegram.NewClient(conn.APIID, conn.APIHash, opts)
	done := false
	err := client.Run(ctx, func(ctx context.Context) error {
		st, err := client.Auth().Status(ctx)
		if err != nil {
			return fmt.Errorf("auth status: %w", err)
		}
		if !st.Authorized {
			flow := auth.NewFlow(promptAuth{phone: phone, p: p}, auth.SendCodeOptions{})
			if err := client.Auth().IfNecessary(ctx, flow); err != nil {
				// The phone number must not reach the terminal log or a
				// scraped journal.
				return errors.New(strings.ReplaceAll(err.Error(), phone, "<phone>"))
			}
		}
		done = true
		return nil
	})
	switch {
	case err != nil:
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case !done:
		return errors.New("the connection to Telegram stopped before signing in")
	}
	return nil
}

// promptAuth is an auth.UserAuthenticator for an existing account.
type promptAuth struct {
	phone string
	p     prompt
}

func (a promptAuth) Phone(context.Context) (string, error) { return a.phone, nil }

func (a promptAuth) Password(ctx context.Context) (string, error) { return a.p.Password(ctx) }

func (a promptAuth) Code(ctx context.Context, _ *tg.AuthSentCode) (string, error) {
	return a.p.Code(ctx)
}

func (promptAuth) AcceptTermsOfService(context.Context, tg.HelpTermsOfService) error {
	return errors.New("this number has no Telegram account; safetyd signs in existing accounts only")
}

func (promptAuth) SignUp(context.Context) (auth.UserInfo, error) {
	return auth.UserInfo{}, errors.New("this number has no Telegram account; safetyd signs in existing accounts only")
}

// terminalPrompt reads answers from the terminal; the password is read
// without echo when stdin is a terminal.
type terminalPrompt struct {
	in  *bufio.Reader
	out io.Writer
	fd  int
}

func (t *terminalPrompt) Code(context.Context) (string, error) {
	fmt.Fprint(t.out, "Login code (sent to your Telegram app or by SMS): ")
	s, err := t.in.ReadString('\n')
	if err != nil && s == "" {
		return "", fmt.Errorf("read login code: %w", err)
	}
	return strings.TrimSpace(s), nil
}

func (t *terminalPrompt) Password(context.Context) (string, error) {
	fmt.Fprint(t.out, "Two-step verification password: ")
	if term.IsTerminal(t.fd) {
		b, err := term.ReadPassword(t.fd)
		fmt.Fprintln(t.out)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	s, err := t.in.ReadString('\n')
	if err != nil && s == "" {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(s, "\r\n"), nil
}
