// Package clientmain is the main of the audit's test programs
// (goodclient, badclient): it reads the audit's environment, as any
// audited program does, and runs a behaviour. It is apart from behave so
// that the audit's own tests can use behave without an import cycle.
package clientmain

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tgsafety/tgsafety/scenarios/audit"
	"github.com/tgsafety/tgsafety/scenarios/audit/internal/behave"
)

// Main runs a behaviour (behave.Good, behave.Bad) as a program under `scenario-run audit`: the
// accounts come from the audit's environment, SIGTERM ends the run.
func Main(behaviour func(ctx context.Context, accts []behave.Account, out io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := audit.ReadEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var accts []behave.Account
	for _, a := range env.Accounts {
		opts, err := env.GotdOptions(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		accts = append(accts, behave.Account{Name: a.Name, Options: opts, Contacts: a.Contacts, Strangers: env.Usernames})
	}
	if err := behaviour(ctx, accts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
