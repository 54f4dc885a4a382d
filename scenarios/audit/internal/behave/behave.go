// Package behave is the audit's test subjects: a gotd client that reacts
// to Telegram as a careful program should, and one that does what gets
// accounts banned (retries a FLOOD_WAIT at once, ignores PEER_FLOOD,
// reconnects in a loop). The audit's tests run them as Go functions
// (audit.Options.Func) and as real programs (goodclient, badclient), so
// that both paths are judged on the same behaviour.
package behave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/scenarios"
)

// Account is one account to drive.
type Account struct {
	Name    string
	Options telegram.Options
	// Contacts are usernames of its mutual contacts; Strangers of users
	// who do not know it.
	Contacts, Strangers []string
}

// logger writes one line per event, from any goroutine.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) printf(acct, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s: %s\n", acct, fmt.Sprintf(format, args...))
}

// errStop ends an account's work: Telegram said it is over.
var errStop = errors.New("stop")

// Good drives every account at once, carefully: it waits out
// FLOOD_WAIT, stops writing to strangers at PEER_FLOOD, stops writing at
// all when frozen, and stops the account at a ban or a dead session.
func Good(ctx context.Context, accts []Account, out io.Writer) error {
	l := &logger{w: out}
	var wg sync.WaitGroup
	errs := make([]error, len(accts))
	for i, a := range accts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = scenarios.RunClient(ctx, a.Options, func(ctx context.Context, c *telegram.Client) error {
				return good(ctx, c.API(), a, l)
			})
			if errs[i] != nil && !stopped(errs[i]) {
				l.printf(a.Name, "client: %v", errs[i])
			} else {
				errs[i] = nil
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopped reports whether err is the end Telegram asked for (a ban or a
// dead session), which a careful client accepts.
func stopped(err error) bool {
	return errors.Is(err, errStop) || tgerr.Is(err, "USER_DEACTIVATED_BAN", "SESSION_REVOKED", "AUTH_KEY_UNREGISTERED")
}

type state struct {
	limited, frozen bool
}

func good(ctx context.Context, api *tg.Client, a Account, l *logger) error {
	var st state
	// call runs one request the careful way.
	call := func(what string, fn func() error) error {
		for {
			err := fn()
			if d, ok := tgerr.AsFloodWait(err); ok {
				l.printf(a.Name, "%s: FLOOD_WAIT, waiting %s", what, d)
				if err := sleep(ctx, d+100*time.Millisecond); err != nil {
					return err
				}
				continue
			}
			switch {
			case tgerr.Is(err, "PEER_FLOOD"):
				l.printf(a.Name, "%s: PEER_FLOOD, no more messages to strangers", what)
				st.limited = true
			case tgerr.Is(err, "FROZEN_METHOD_INVALID"):
				l.printf(a.Name, "%s: frozen, no more writes", what)
				st.frozen = true
			case stopped(err):
				l.printf(a.Name, "%s: %v; stopping this account", what, err)
				return errStop
			case err != nil:
				l.printf(a.Name, "%s: %v", what, err)
			}
			return nil
		}
	}
	var strangers []*tg.User
	for _, name := range first(a.Strangers, 3) {
		var u *tg.User
		if err := call("resolve", func() (err error) { u, err = resolve(ctx, api, name); return err }); err != nil {
			return err
		}
		if u != nil {
			strangers = append(strangers, u)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	for _, u := range strangers {
		if st.limited || st.frozen {
			break
		}
		if err := call("message a stranger", func() error { return send(ctx, api, u, "hello") }); err != nil {
			return err
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return err
		}
	}
	for _, name := range first(a.Contacts, 2) {
		if st.frozen {
			break
		}
		var u *tg.User
		if err := call("resolve a contact", func() (err error) { u, err = resolve(ctx, api, name); return err }); err != nil {
			return err
		}
		if u == nil {
			continue
		}
		if err := call("message a contact", func() error { return send(ctx, api, u, "hi") }); err != nil {
			return err
		}
	}
	// Idle: read now and then, as a program that waits for work does.
	for i := 0; i < 6; i++ {
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return err
		}
		read := func() error { _, err := api.HelpGetAppConfig(ctx, 0); return err }
		if i%2 == 1 {
			read = func() error { _, err := api.UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}}); return err }
		}
		if err := call("read", read); err != nil {
			return err
		}
	}
	l.printf(a.Name, "done")
	return nil
}

// Bad drives the first account the way that gets accounts banned: it
// retries a FLOOD_WAIT at once, writes on after PEER_FLOOD, then
// reconnects in a loop.
func Bad(ctx context.Context, accts []Account, out io.Writer) error {
	l := &logger{w: out}
	a := accts[0]
	err := scenarios.RunClient(ctx, a.Options, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		var strangers []*tg.User
		for _, name := range first(a.Strangers, 3) {
			u, err := resolve(ctx, api, name)
			for retry := 0; retry < 2 && err != nil; retry++ {
				l.printf(a.Name, "resolve: %v; retrying at once", err)
				u, err = resolve(ctx, api, name)
			}
			if u != nil {
				strangers = append(strangers, u)
			}
		}
		for i := 0; i < 5 && len(strangers) > 0; i++ {
			u := strangers[i%len(strangers)]
			err := send(ctx, api, u, "hello again")
			l.printf(a.Name, "message a stranger: %v", err) // and on, whatever the answer
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := 0; i < 4; i++ {
		err := scenarios.RunClient(ctx, a.Options, func(ctx context.Context, c *telegram.Client) error {
			_, err := c.API().HelpGetNearestDC(ctx)
			return err
		})
		l.printf(a.Name, "reconnect %d: %v", i+1, err)
	}
	return nil
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func resolve(ctx context.Context, api *tg.Client, username string) (*tg.User, error) {
	r, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: username})
	if err != nil {
		return nil, err
	}
	for _, u := range r.Users {
		if u, ok := u.(*tg.User); ok {
			return u, nil
		}
	}
	return nil, fmt.Errorf("@%s resolved to no user", username)
}

var randomID atomic.Int64

func send(ctx context.Context, api *tg.Client, u *tg.User, text string) error {
	_, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
		Peer: &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash}, Message: text, RandomID: time.Now().UnixNano() + randomID.Add(1),
	})
	return err
}

// sleep waits d of real time: the client under audit runs in real time,
// like any program, and FLOOD_WAIT is a real wait.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
