package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	ossignal "os/signal"
	"syscall"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/login"
)

// loginCommand is "safetyd login": sign one configured account in from the
// terminal (the code Telegram sends, then the 2FA password if set) and
// store its session file (0600) where `safetyd run` reads it.
func loginCommand(args []string, stdout, stderr io.Writer) int {
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
	connect, err := telegramConnect(cfg, sec)
	if err != nil {
		fmt.Fprintln(stderr, "login:", err)
		return 1
	}
	conn, err := connect(acct)
	if err != nil {
		fmt.Fprintln(stderr, "login:", err)
		return 1
	}
	p := &login.TerminalPrompt{In: bufio.NewReader(os.Stdin), Out: stderr, FD: int(os.Stdin.Fd())}
	return login.Run(ctx, login.Job{
		Name: acct.Name, Phone: sec.Phones[acct.Name].Reveal(), SessionPath: cfg.SessionPath(acct.Name),
		Conn: conn, Prompt: p, Stdout: stdout, Stderr: stderr,
	})
}
