package login

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"golang.org/x/term"
)

// Job is one `safetyd login` after its configuration is read.
type Job struct {
	Name, Phone, SessionPath string
	Conn                     runner.Connection
	Prompt                   prompt
	Stdout, Stderr           io.Writer
}

// Run signs the account in and returns the exit status. It says
// what it is doing while it connects, and claims a session only once the
// session file is on disk: an interrupted or failed login exits 1.
func Run(ctx context.Context, j Job) int {
	fmt.Fprintf(j.Stderr, "login %s: connecting to Telegram...\n", j.Name)
	err := signIn(ctx, j.Conn, j.Phone, j.Prompt, &progress{name: j.Name, w: j.Stderr})
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

// progress reports the connection to the operator: with no network
// gotd retries for ever without a word, and the terminal would show
// nothing at all.
type progress struct {
	name string
	w    io.Writer

	mu       sync.Mutex
	lastDial error // the last failed dial, for the "cannot connect" line
	failures int
}

// dialed records a dial's error (nil: it worked).
func (p *progress) dialed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastDial = err
}

// state is telegram.Options.OnConnectionState.
func (p *progress) state(st telegram.ConnectionState) {
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

// dialTimeout bounds one connection attempt, so that a network that
// drops packets is reported as soon as one that refuses them.
const dialTimeout = 15 * time.Second

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
func signIn(ctx context.Context, conn runner.Connection, phone string, p prompt, progress *progress) error {
	opts := conn.Options
	opts.NoUpdates = true
	opts.Logger = nil
	if progress != nil {
		opts.OnConnectionState = progress.state
		if opts.Resolver == nil {
			// dcs.DefaultResolver, with the dial's error kept for the
			// progress line.
			d := net.Dialer{Timeout: dialTimeout}
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

// TerminalPrompt reads answers from the terminal; the password is read
// without echo when stdin is a terminal.
type TerminalPrompt struct {
	In  *bufio.Reader
	Out io.Writer
	FD  int
}

// Code asks for the login code on the terminal.
func (t *TerminalPrompt) Code(context.Context) (string, error) {
	fmt.Fprint(t.Out, "Login code (sent to your Telegram app or by SMS): ")
	s, err := t.In.ReadString('\n')
	if err != nil && s == "" {
		return "", fmt.Errorf("read login code: %w", err)
	}
	return strings.TrimSpace(s), nil
}

// Password asks for the 2FA password on the terminal, without echo when
// stdin is a terminal.
func (t *TerminalPrompt) Password(context.Context) (string, error) {
	fmt.Fprint(t.Out, "Two-step verification password: ")
	if term.IsTerminal(t.FD) {
		b, err := term.ReadPassword(t.FD)
		fmt.Fprintln(t.Out)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	s, err := t.In.ReadString('\n')
	if err != nil && s == "" {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(s, "\r\n"), nil
}
