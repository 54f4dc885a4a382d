package testserver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// newServer starts a server with a small population (fast) unless the test
// needs more.
func newServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Users == 0 {
		opts.Users = 200
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// updates collects pushed updates.
type updates chan tg.UpdatesClass

func (u updates) Handle(_ context.Context, upd tg.UpdatesClass) error {
	select {
	case u <- upd:
	default:
	}
	return nil
}

// run connects a real gotd client and runs fn; the deadline is a failure
// guard only.
func run(t testing.TB, opts telegram.Options, fn func(ctx context.Context, c *telegram.Client) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := telegram.NewClient(17349, "not-a-real-hash", opts)
	err := c.Run(ctx, func(ctx context.Context) error {
		// fn runs on a goroutine of gotd's: a t.Fatal there ends only that
		// goroutine, so report it as an error instead of hanging.
		done := make(chan error, 1)
		go func() {
			finished := false
			defer func() {
				if !finished {
					done <- errFnFailed
				}
			}()
			err := fn(ctx, c)
			finished = true
			done <- err
		}()
		return <-done
	})
	if errors.Is(err, errFnFailed) {
		t.FailNow()
	}
	if err != nil {
		t.Fatal(err)
	}
}

var errFnFailed = errors.New("test failed inside the client callback")

// provisioned returns client options for an account with a ready session.
func provisioned(t testing.TB, s *Server, spec AccountSpec) telegram.Options {
	t.Helper()
	if _, err := s.CreateAccount(spec); err != nil {
		t.Fatal(err)
	}
	st, err := s.SessionStorage(spec.Phone)
	if err != nil {
		t.Fatal(err)
	}
	o := s.ClientOptions()
	o.SessionStorage = st
	o.NoUpdates = true
	return o
}

func resolve(ctx context.Context, t testing.TB, api *tg.Client, username string) *tg.User {
	t.Helper()
	r, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: username})
	if err != nil {
		t.Fatalf("resolve @%s: %v", username, err)
	}
	return r.Users[0].(*tg.User)
}

func dm(ctx context.Context, api *tg.Client, u *tg.User, text string) error {
	_, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
		Peer: &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash}, Message: text, RandomID: randomInt64(),
	})
	return err
}

// spamBotSays sends /start to SpamBot and returns the reply text and
// buttons, read from history (the reply is stored before the call returns).
func spamBotSays(ctx context.Context, t testing.TB, api *tg.Client) (string, []string) {
	t.Helper()
	bot := resolveNoBudget(ctx, t, api)
	if err := dm(ctx, api, bot, "/start"); err != nil {
		t.Fatalf("/start to SpamBot: %v", err)
	}
	h, err := api.MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{
		Peer: &tg.InputPeerUser{UserID: bot.ID, AccessHash: bot.AccessHash}, Limit: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := h.(*tg.MessagesMessages).Messages
	m := msgs[0].(*tg.Message)
	if m.Out {
		t.Fatal("newest message in the SpamBot chat is ours, not the reply")
	}
	var buttons []string
	if kb, ok := m.ReplyMarkup.(*tg.ReplyKeyboardMarkup); ok {
		for _, row := range kb.Rows {
			for _, b := range row.Buttons {
				buttons = append(buttons, b.(*tg.KeyboardButton).Text)
			}
		}
	}
	return m.Message, buttons
}

// resolveNoBudget finds SpamBot through users.getUsers with its known id
// and access hash, as a prober with a cached peer does.
func resolveNoBudget(ctx context.Context, t testing.TB, api *tg.Client) *tg.User {
	t.Helper()
	us, err := api.UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUser{UserID: spambot.UserID, AccessHash: 0x5350414d424f54}})
	if err != nil {
		t.Fatal(err)
	}
	return us[0].(*tg.User)
}
