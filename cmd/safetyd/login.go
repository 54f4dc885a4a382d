package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	ossignal "os/signal"
	"strings"
	"syscall"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/transport"
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
	cfg, err := LoadConfig(*path)
	if err != nil {
		return reportConfigError(stderr, *path, err)
	}
	acct, ok := cfg.Account(*name)
	if !ok {
		fmt.Fprintf(stderr, "login: %s has no account named %s\n", *path, quote(*name))
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
	Conn                     connection
	Prompt                   prompt
	Stdout, Stderr           io.Writer
}

// runLogin signs the account in and returns the exit status. It says what
// it is doing while it connects (a login with no network used to print
// nothing), fails on Ctrl-C or any error, and claims a session only once
// the session file is on disk.
func runLogin(ctx context.Context, j loginJob) int {
	fmt.Fprintf(j.Stderr, "login %s: connecting to Telegram...\n", j.Name)
	conn := j.Conn
	next := conn.Options.Resolver
	if next == nil {
		next = dcs.DefaultResolver()
	}
	conn.Options.Resolver = progressResolver{next: next, report: func(err error) {
		fmt.Fprintf(j.Stderr, "login %s: cannot connect to Telegram: %v; retrying (Ctrl-C to stop)\n", j.Name, scrub(err.Error(), []string{j.Phone}))
	}}
	err := signIn(ctx, conn, j.Phone, j.Prompt)
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(j.Stderr, "login %s: interrupted; no session stored\n", j.Name)
		return 1
	case err != nil:
		fmt.Fprintf(j.Stderr, "login %s: %v\n", j.Name, err)
		return 1
	}
	if fi, err := os.Stat(j.SessionPath); err != nil || fi.Size() == 0 {
		fmt.Fprintf(j.Stderr, "login %s: signed in, but no session file was written at %s\n", j.Name, j.SessionPath)
		return 1
	}
	fmt.Fprintf(j.Stdout, "signed in; session stored in %s (mode 0600)\n", j.SessionPath)
	return 0
}

// progressResolver reports each failed connection attempt: gotd retries
// by itself, silently, so without it a login with no network looks hung.
type progressResolver struct {
	next   dcs.Resolver
	report func(error)
}

func (r progressResolver) Primary(ctx context.Context, dc int, list dcs.List) (transport.Conn, error) {
	c, err := r.next.Primary(ctx, dc, list)
	if err != nil && ctx.Err() == nil {
		r.report(err)
	}
	return c, err
}

func (r progressResolver) MediaOnly(ctx context.Context, dc int, list dcs.List) (transport.Conn, error) {
	return r.next.MediaOnly(ctx, dc, list)
}

func (r progressResolver) CDN(ctx context.Context, dc int, list dcs.List) (transport.Conn, error) {
	return r.next.CDN(ctx, dc, list)
}

// prompt asks the operator for the login code and the 2FA password.
type prompt interface {
	Code(ctx context.Context) (string, error)
	Password(ctx context.Context) (string, error)
}

// signIn runs gotd's login flow on conn (whose session storage receives
// the new session). An account that is already signed in is left as is.
func signIn(ctx context.Context, conn connection, phone string, p prompt) error {
	opts := conn.Options
	opts.NoUpdates = true
	opts.Logger = nil
	client := telegram.NewClient(conn.APIID, conn.APIHash, opts)
	return client.Run(ctx, func(ctx context.Context) error {
		st, err := client.Auth().Status(ctx)
		if err != nil {
			return fmt.Errorf("auth status: %w", err)
		}
		if st.Authorized {
			return nil
		}
		flow := auth.NewFlow(promptAuth{phone: phone, p: p}, auth.SendCodeOptions{})
		if err := client.Auth().IfNecessary(ctx, flow); err != nil {
			// The phone number must not reach the terminal log or a
			// scraped journal.
			return errors.New(scrub(err.Error(), []string{phone}))
		}
		return nil
	})
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
