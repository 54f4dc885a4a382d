package scenarios

import (
	"context"

	"github.com/gotd/td/clock"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor"
)

// Hook is a team's own client code, run by a `hook` step so that the thing
// under test is their client, not the scenario's built-in one. It gets
// the account's connected client, already configured by the runner (the
// floodwait waiter if asked for, the guard if configured, the monitor
// middleware, the self hooks), and returns when its work is done. An error
// fails the scenario at that step.
//
// On the test server time is virtual: a hook must wait on env.Clock (a
// timer or ticker from it), never on time.Sleep or time.After, or a
// scenario day takes a real day. Register hooks in Options.Hooks.
type Hook func(ctx context.Context, env *HookEnv) error

// HookEnv is what a hook works with.
type HookEnv struct {
	// Account is the monitor's name for the account.
	Account string
	// Client is the account's connected gotd client.
	Client *telegram.Client
	// API is Client.API().
	API *tg.Client
	// Monitor is the account as the monitor sees it (Snapshot, Events).
	Monitor *monitor.Account
	// Clock is the scenario's clock: virtual on the test server.
	Clock clock.Clock
	// Usernames are the simulated population's usernames (strangers to a
	// new account); empty on staging.
	Usernames []string

	a        *acctRun
	outcomes map[string]int
}

// Record counts the outcome of one call the hook made (ok, blocked by the
// guard, or the signal kind of its RPC error) in the account's outcomes,
// so that `outcomes` expectations cover the hook's work. Calling it is
// optional; it is safe from any goroutine.
func (e *HookEnv) Record(err error) {
	o := e.a.note(err)
	e.a.w.mu.Lock()
	e.outcomes[o]++
	e.a.w.mu.Unlock()
}
