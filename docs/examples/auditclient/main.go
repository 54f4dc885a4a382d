// Command auditclient is a small gotd client written to pass
// `scenario-run audit`: start from it to see what an audited program
// reads from its environment and how it should react when Telegram
// pushes back (docs/audit.md).
//
//	go build -o /tmp/auditclient ./docs/examples/auditclient
//	scenario-run audit -- /tmp/auditclient
//
// Each account the audit hands it works on its own: every two seconds it
// resolves a stranger (once: peers are kept), writes to a stranger, to a
// contact, or reads. It waits out FLOOD_WAIT, stops writing to strangers
// at PEER_FLOOD, stops writing at all when frozen, and stops the account
// for good at a ban or a dead session. It runs for -for (default 1m), or
// -rounds rounds when given, and then exits. The only address it uses is
// the audit's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

func main() {
	d := flag.Duration("for", time.Minute, "how long to work")
	flag.IntVar(&rounds, "rounds", 0, "stop after this many rounds (two seconds each); 0: until -for")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *d)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "auditclient:", err)
		os.Exit(1)
	}
}

// account is one account from the environment.
type account struct {
	name, sessionFile string
	contacts          []string
}

func run(ctx context.Context) error {
	if os.Getenv("TGSAFETY_AUDIT") != "1" {
		return errors.New("run me under `scenario-run audit -- auditclient`")
	}
	pem, err := os.ReadFile(os.Getenv("TGSAFETY_PUBLIC_KEY"))
	if err != nil {
		return err
	}
	keys, err := crypto.ParseRSAPublicKeys(pem)
	if err != nil {
		return err
	}
	host, port := os.Getenv("TGSAFETY_HOST"), os.Getenv("TGSAFETY_PORT")
	dc, err1 := strconv.Atoi(os.Getenv("TGSAFETY_DC"))
	p, err2 := strconv.Atoi(port)
	appID, err3 := strconv.Atoi(os.Getenv("TGSAFETY_APP_ID"))
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	strangers := strings.Split(os.Getenv("TGSAFETY_USERNAMES"), ",")
	var wg sync.WaitGroup
	for i, name := range strings.Split(os.Getenv("TGSAFETY_ACCOUNTS"), ",") {
		env := func(k string) string { return os.Getenv(fmt.Sprintf("TGSAFETY_ACCOUNT_%d_%s", i+1, k)) }
		a := account{name: name, sessionFile: env("SESSION_FILE"), contacts: strings.Split(env("CONTACTS"), ",")}
		opts := telegram.Options{
			DC:             dc,
			DCList:         dcs.List{Options: []tg.DCOption{{ID: dc, IPAddress: host, Port: p}}},
			Resolver:       dcs.Plain(dcs.PlainOptions{}),
			SessionStorage: &session.FileStorage{Path: a.sessionFile},
			NoUpdates:      true,
		}
		for _, k := range keys {
			opts.PublicKeys = append(opts.PublicKeys, telegram.PublicKey{RSA: k})
		}
		client := telegram.NewClient(appID, os.Getenv("TGSAFETY_APP_HASH"), opts)
		mine := strangers // each account its own strangers, when there are enough
		if len(strangers) >= 10*(i+1) {
			mine = strangers[10*i : 10*(i+1)]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := client.Run(ctx, func(ctx context.Context) error { return work(ctx, client.API(), a, mine) })
			switch {
			case err == nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
				fmt.Printf("%s: done\n", a.name)
			default:
				fmt.Printf("%s: stopped: %v\n", a.name, err)
			}
		}()
	}
	wg.Wait()
	return nil
}

// rounds, when positive, bounds each account's work.
var rounds int

// errStop ends an account: Telegram said it is over.
var errStop = errors.New("the account cannot go on")

func work(ctx context.Context, api *tg.Client, a account, strangers []string) error {
	var limited, frozen bool
	peers := map[string]*tg.InputPeerUser{} // resolved once: access hashes do not change
	// call runs one request and reacts to Telegram's answer.
	call := func(what string, fn func() error) error {
		for {
			err := fn()
			if d, ok := tgerr.AsFloodWait(err); ok {
				fmt.Printf("%s: %s: FLOOD_WAIT, waiting %s\n", a.name, what, d)
				if err := sleep(ctx, d); err != nil {
					return err
				}
				continue // the wait is over: once more
			}
			switch {
			case tgerr.Is(err, "PEER_FLOOD"):
				fmt.Printf("%s: %s: PEER_FLOOD: no more messages to strangers\n", a.name, what)
				limited = true
			case tgerr.Is(err, "FROZEN_METHOD_INVALID"):
				fmt.Printf("%s: %s: frozen: no more writes (appeal through @SpamBot)\n", a.name, what)
				frozen = true
			case tgerr.Is(err, "USER_DEACTIVATED_BAN", "SESSION_REVOKED", "AUTH_KEY_UNREGISTERED", "USER_DEACTIVATED"):
				fmt.Printf("%s: %s: %v: stopping; the operator must look\n", a.name, what, err)
				return errStop
			case err != nil:
				fmt.Printf("%s: %s: %v\n", a.name, what, err)
			}
			return nil
		}
	}
	resolve := func(username string) (*tg.InputPeerUser, error) {
		if p, ok := peers[username]; ok {
			return p, nil
		}
		var p *tg.InputPeerUser
		err := call("resolve", func() error {
			r, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: username})
			if err != nil {
				return err
			}
			for _, u := range r.Users {
				if u, ok := u.(*tg.User); ok {
					p = &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash}
				}
			}
			return nil
		})
		if p != nil {
			peers[username] = p
		}
		return p, err
	}
	send := func(what, username, text string) error {
		p, err := resolve(username)
		if err != nil || p == nil {
			return err
		}
		return call(what, func() error {
			_, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{Peer: p, Message: text, RandomID: time.Now().UnixNano()})
			return err
		})
	}
	for tick := 0; rounds <= 0 || tick < rounds; tick++ {
		var err error
		switch {
		case tick%4 == 0 && !limited && !frozen && tick/4 < len(strangers):
			err = send("message a stranger", strangers[tick/4], "Hello! We met at the conference.")
		case tick%4 == 1 && !frozen && len(a.contacts) > 0 && a.contacts[0] != "":
			err = send("message a contact", a.contacts[tick%len(a.contacts)], "See you tomorrow.")
		case tick%2 == 0:
			err = call("read the app config", func() error { _, err := api.HelpGetAppConfig(ctx, 0); return err })
		default:
			err = call("read self", func() error {
				_, err := api.UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
				return err
			})
		}
		if err != nil {
			return err
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return nil // time is up
		}
	}
	return nil
}

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
