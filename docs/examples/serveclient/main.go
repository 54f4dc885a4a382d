// Command serveclient is a small, complete gotd client for the simulated
// Telegram that `scenario-run serve` offers to other processes: start from
// it to point your own client at the test server.
//
//	scenario-run serve --key-out /tmp/tgsafety-key.pem | go run ./docs/examples/serveclient
//
// It reads serve's ready line (address, DC, public key file, login code,
// usernames) from standard input, signs up a new account, asks @SpamBot
// how the account stands, then writes to strangers until Telegram pushes
// back with PEER_FLOOD — and stops there, as a well-behaved client must —
// and asks @SpamBot again. It never talks to Telegram itself: the only
// address it uses is the one serve printed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/testserver"
)

// ready is the part of serve's ready line this client uses
// (docs/testserver.md lists every field).
type ready struct {
	Addr      string   `json:"addr"`
	DC        int      `json:"dc"`
	PublicKey string   `json:"public_key"`
	LoginCode string   `json:"login_code"`
	Usernames []string `json:"usernames"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, err := readReady(os.Stdin)
	if err == nil {
		err = run(ctx, r, "9996612345", os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serveclient:", err)
		os.Exit(1)
	}
}

// readReady reads serve's ready line.
func readReady(in io.Reader) (ready, error) {
	var r ready
	line, err := bufio.NewReader(in).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return r, fmt.Errorf("no ready line on standard input (pipe `scenario-run serve --key-out FILE` into this program): %w", err)
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("ready line: %w", err)
	}
	if r.Addr == "" || r.PublicKey == "" {
		return r, errors.New("ready line has no addr or public_key: run serve with --key-out FILE")
	}
	return r, nil
}

// run signs up phone on the server that r describes and shows how it
// reacts to a client writing to strangers.
func run(ctx context.Context, r ready, phone string, out io.Writer) error {
	host, portText, err := net.SplitHostPort(r.Addr)
	if err != nil {
		return fmt.Errorf("addr %q: %w", r.Addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("addr %q: %w", r.Addr, err)
	}
	pem, err := os.ReadFile(r.PublicKey)
	if err != nil {
		return err
	}
	keys, err := crypto.ParseRSAPublicKeys(pem)
	if err != nil || len(keys) == 0 {
		return fmt.Errorf("public key %s: %v", r.PublicKey, err)
	}
	// The three options that point gotd at the test server: its key, its
	// DC and its address. Nothing else differs from a production client.
	client := telegram.NewClient(17349, "any-api-hash", telegram.Options{
		PublicKeys: []telegram.PublicKey{{RSA: keys[0]}},
		DC:         r.DC,
		DCList:     dcs.List{Options: []tg.DCOption{{ID: r.DC, IPAddress: host, Port: port}}},
		Resolver:   dcs.Plain(dcs.PlainOptions{}),
		NoUpdates:  true,
	})
	return client.Run(ctx, func(ctx context.Context) error {
		flow := auth.NewFlow(testserver.Authenticator{PhoneNumber: phone, LoginCode: r.LoginCode}, auth.SendCodeOptions{})
		if err := client.Auth().IfNecessary(ctx, flow); err != nil {
			return fmt.Errorf("sign up: %w", err)
		}
		api := client.API()
		fmt.Fprintf(out, "signed up +%s on %s\n", phone, r.Addr)
		if err := askSpamBot(ctx, api, out); err != nil {
			return err
		}
		for i, name := range r.Usernames {
			err := dm(ctx, api, name, i)
			if d, ok := tgerr.AsFloodWait(err); ok {
				// Wait as asked: retrying sooner lengthens the wait.
				fmt.Fprintf(out, "FLOOD_WAIT %v: stopping here instead of retrying early\n", d)
				break
			}
			if tgerr.Is(err, "PEER_FLOOD") {
				// Limited: every further cold message extends the limit.
				fmt.Fprintf(out, "PEER_FLOOD after %d cold messages: the account is limited; stopping\n", i)
				break
			}
			if err != nil {
				return err
			}
		}
		return askSpamBot(ctx, api, out)
	})
}

// askSpamBot sends /start to @SpamBot and prints its answer.
func askSpamBot(ctx context.Context, api *tg.Client, out io.Writer) error {
	peer, err := resolve(ctx, api, "SpamBot")
	if err != nil {
		return err
	}
	if _, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
		Peer: peer, Message: "/start", RandomID: time.Now().UnixNano(),
	}); err != nil {
		return fmt.Errorf("/start: %w", err)
	}
	h, err := api.MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{Peer: peer, Limit: 1})
	if err != nil {
		return fmt.Errorf("SpamBot history: %w", err)
	}
	if msgs, ok := h.AsModified(); ok && len(msgs.GetMessages()) == 1 {
		if m, ok := msgs.GetMessages()[0].(*tg.Message); ok && !m.Out {
			fmt.Fprintf(out, "@SpamBot: %s\n", m.Message)
			return nil
		}
	}
	return errors.New("no reply from @SpamBot")
}

// dm writes to the user called name.
func dm(ctx context.Context, api *tg.Client, name string, i int) error {
	peer, err := resolve(ctx, api, name)
	if err != nil {
		return err
	}
	_, err = api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
		Peer: peer, Message: "hello from the tgsafety example", RandomID: int64(i) + 1,
	})
	return err
}

func resolve(ctx context.Context, api *tg.Client, name string) (*tg.InputPeerUser, error) {
	r, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: name})
	if err != nil {
		return nil, fmt.Errorf("resolve @%s: %w", name, err)
	}
	for _, u := range r.Users {
		if u, ok := u.(*tg.User); ok {
			return &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash}, nil
		}
	}
	return nil, fmt.Errorf("resolve @%s: no user", name)
}
