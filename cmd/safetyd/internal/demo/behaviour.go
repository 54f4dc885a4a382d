package demo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gotd/td/clock"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/runner"
	"github.com/tgsafety/tgsafety/testserver"
)

// The demo's simulated applications: what each demo account does with its
// client, from careful to spammy, so that a few minutes of the demo show
// every account state. They send only to the test server's simulated
// population, on virtual time.

// behaviour is one simulated application.
type behaviour struct {
	// Name is appended to the account name ("demo-03-cold-dms").
	Name string
	// What is shown in the demo's legend.
	What string
	// Spec is the simulated account.
	Spec testserver.AccountSpec
	// Run drives the account through api until ctx ends. Server-side
	// events (a ban, a freeze) are scheduled by the demo, not here.
	Run func(ctx context.Context, e *driveEnv) error
	// Server, when set, is a server-side event at virtual offset At from
	// the demo's start: Telegram's anti-abuse deciding about the account.
	Server *serverEvent
}

// serverEvent is something Telegram does to an account on its own.
type serverEvent struct {
	At   time.Duration
	What string
	Do   func(srv *testserver.Server, phone string) error
}

// driveEnv is what a behaviour works with.
type driveEnv struct {
	api   *tg.Client
	clock clock.Clock
	srv   *testserver.Server
	phone string
	// next is the behaviour's own position, kept across reconnects so a
	// restarted client carries on instead of starting over.
	next *int
	// peerFloodPause, when set, is how long the application stops after
	// PEER_FLOOD (a careful one backs off; a spammer does not, and climbs
	// the restriction ladder to a ban).
	peerFloodPause time.Duration
	// pace holds virtual time while the application works.
	pace *pacer
}

// sleep waits d on the demo's virtual clock.
func (e *driveEnv) sleep(ctx context.Context, d time.Duration) error {
	t := e.clock.Timer(d)
	defer t.Stop()
	// The clock cannot move between the timer and this: the application
	// is still active.
	defer e.pace.unpark(e.pace.park(e.clock.Now().Add(d)))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// idle waits for ctx: the account only runs the daemon's probes.
func idle(ctx context.Context, e *driveEnv) error {
	defer e.pace.unpark(e.pace.park(time.Time{}))
	<-ctx.Done()
	return ctx.Err()
}

// every calls fn every period until ctx ends or fn says stop; errors from
// Telegram are the point of the demo and are not returned (the monitor has
// seen them), except those after which a real application stops.
func (e *driveEnv) every(ctx context.Context, period time.Duration, fn func(ctx context.Context, i int) error) error {
	for {
		i := *e.next
		*e.next++
		err := fn(ctx, i)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if runner.StopsAccount(err) {
			// A real application would stop here too (or should).
			return idle(ctx, e)
		}
		if e.peerFloodPause > 0 && tgerr.Is(err, "PEER_FLOOD") {
			if err := e.sleep(ctx, e.peerFloodPause); err != nil {
				return err
			}
			continue
		}
		if d, ok := tgerr.AsFloodWait(err); ok && d > period {
			// Respect the wait, as gotd's floodwait middleware would.
			if err := e.sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		if err := e.sleep(ctx, period); err != nil {
			return err
		}
	}
}

// dmUser resolves a population user and sends them a message.
func (e *driveEnv) dmUser(ctx context.Context, username string, i int) error {
	r, err := e.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: username})
	if err != nil {
		return err
	}
	if len(r.Users) == 0 {
		return fmt.Errorf("resolve %s: no user", username)
	}
	u, ok := r.Users[0].(*tg.User)
	if !ok {
		return errors.New("resolve: not a user")
	}
	_, err = e.api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
		Peer: &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash}, Message: "demo", RandomID: int64(i) + 1,
	})
	return err
}

// dmContacts messages the account's own contacts in turn.
func dmContacts(period time.Duration) func(ctx context.Context, e *driveEnv) error {
	return func(ctx context.Context, e *driveEnv) error {
		var peers []tg.InputPeerUser
		return e.every(ctx, period, func(ctx context.Context, i int) error {
			if peers == nil {
				c, err := e.api.ContactsGetContacts(ctx, 0)
				if err != nil {
					return err
				}
				if cs, ok := c.(*tg.ContactsContacts); ok {
					for _, u := range cs.Users {
						if u, ok := u.(*tg.User); ok {
							peers = append(peers, tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash})
						}
					}
				}
				if len(peers) == 0 {
					return errors.New("no contacts")
				}
			}
			p := peers[i%len(peers)]
			_, err := e.api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{Peer: &p, Message: "demo", RandomID: int64(i) + 1})
			return err
		})
	}
}

// dmStrangers messages population users who are not contacts; after
// PEER_FLOOD it pauses for pause (0: never).
func dmStrangers(period time.Duration, offset int, pause time.Duration) func(ctx context.Context, e *driveEnv) error {
	return func(ctx context.Context, e *driveEnv) error {
		e.peerFloodPause = pause
		names := e.srv.Usernames(offset + 400)[offset:]
		return e.every(ctx, period, func(ctx context.Context, i int) error {
			return e.dmUser(ctx, names[i%len(names)], i)
		})
	}
}

// resolveBursts resolves n usernames at once every period (a start-up
// storm of a naive client, repeated).
func resolveBursts(n int, period time.Duration, offset int) func(ctx context.Context, e *driveEnv) error {
	return func(ctx context.Context, e *driveEnv) error {
		names := e.srv.Usernames(offset + 400)[offset:]
		return e.every(ctx, period, func(ctx context.Context, i int) error {
			for k := range n {
				_, err := e.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: names[(i*n+k)%len(names)]})
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// joinChannels joins public channels one every period.
func joinChannels(period time.Duration) func(ctx context.Context, e *driveEnv) error {
	return func(ctx context.Context, e *driveEnv) error {
		chans := e.srv.ChannelUsernames()
		return e.every(ctx, period, func(ctx context.Context, i int) error {
			r, err := e.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: chans[i%len(chans)]})
			if err != nil {
				return err
			}
			for _, c := range r.Chats {
				if ch, ok := c.(*tg.Channel); ok {
					_, err = e.api.ChannelsJoinChannel(ctx, &tg.InputChannel{ChannelID: ch.ID, AccessHash: ch.AccessHash})
					return err
				}
			}
			return errors.New("not a channel")
		})
	}
}

// importContacts imports batches of phone numbers (a CRM sync gone wrong).
func importContacts(batch int, period time.Duration) func(ctx context.Context, e *driveEnv) error {
	return func(ctx context.Context, e *driveEnv) error {
		return e.every(ctx, period, func(ctx context.Context, i int) error {
			cs := make([]tg.InputPhoneContact, batch)
			for k := range cs {
				n := i*batch + k
				cs[k] = tg.InputPhoneContact{ClientID: int64(n + 1), Phone: fmt.Sprintf("99966%05d", n%100000), FirstName: "c"}
			}
			_, err := e.api.ContactsImportContacts(ctx, cs)
			return err
		})
	}
}

// behaviours are the twelve demo applications; account i runs
// behaviours[i%12]. Their order mixes outcomes so that a small
// --accounts still shows several states.
func behaviours() []behaviour {
	adult := 3 * 365 * 24 * time.Hour
	return []behaviour{
		{Name: "careful", What: "a few messages a day to its own contacts: stays ok",
			Spec: testserver.AccountSpec{Age: adult, MutualContacts: 20}, Run: dmContacts(3 * time.Hour)},
		{Name: "cold-dms", What: "messages a stranger every 10 min, pauses a day on PEER_FLOOD: limited, SpamBot says until when",
			Spec: testserver.AccountSpec{Age: adult}, Run: dmStrangers(10*time.Minute, 0, 24*time.Hour)},
		{Name: "resolver", What: "resolves 60 usernames at a time, hourly: escalating FLOOD_WAIT, throttled",
			Spec: testserver.AccountSpec{Age: adult}, Run: resolveBursts(60, time.Hour, 0)},
		{Name: "banned", What: "writes to its contacts every 30 min; Telegram bans it after 3 h (as after reports): banned without warning",
			Spec: testserver.AccountSpec{Age: 20 * 24 * time.Hour, MutualContacts: 10}, Run: dmContacts(30 * time.Minute),
			Server: &serverEvent{At: 3 * time.Hour, What: "Telegram bans the account", Do: func(s *testserver.Server, p string) error { return s.Ban(p) }}},
		{Name: "idle", What: "sends nothing; the daemon's probes only: stays ok",
			Spec: testserver.AccountSpec{Age: adult}, Run: idle},
		{Name: "frozen", What: "joins a channel every 5 min; Telegram freezes it after 2 h",
			Spec: testserver.AccountSpec{Age: adult}, Run: joinChannels(5 * time.Minute),
			Server: &serverEvent{At: 2 * time.Hour, What: "Telegram freezes the account", Do: func(s *testserver.Server, p string) error { return s.Freeze(p, time.Time{}) }}},
		{Name: "steady", What: "20 messages a day to contacts: stays ok",
			Spec: testserver.AccountSpec{Age: adult, MutualContacts: 30}, Run: dmContacts(72 * time.Minute)},
		{Name: "joiner", What: "joins channels every minute: join flood waits",
			Spec: testserver.AccountSpec{Age: adult}, Run: joinChannels(time.Minute)},
		{Name: "young-cold", What: "a 3-day-old account messaging strangers every 30 min, pausing on PEER_FLOOD: limited",
			Spec: testserver.AccountSpec{Age: 3 * 24 * time.Hour}, Run: dmStrangers(30*time.Minute, 200, 24*time.Hour)},
		{Name: "importer", What: "imports 100 contacts every 30 min: contact-import flood waits",
			Spec: testserver.AccountSpec{Age: adult}, Run: importContacts(100, 30*time.Minute)},
		{Name: "revoked", What: "sessions terminated from another device after 90 min: dead",
			Spec: testserver.AccountSpec{Age: adult, MutualContacts: 5}, Run: dmContacts(2 * time.Hour),
			Server: &serverEvent{At: 90 * time.Minute, What: "all sessions terminated", Do: func(s *testserver.Server, p string) error {
				_, err := s.RevokeSessions(p)
				return err
			}}},
		{Name: "spammer", What: "messages strangers every minute and ignores PEER_FLOOD: limited, then banned",
			Spec: testserver.AccountSpec{Age: adult}, Run: dmStrangers(time.Minute, 300, 0)},
	}
}
