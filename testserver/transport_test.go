package testserver

import (
	"context"
	"strings"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/crypto"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
)

func TestTCPClient(t *testing.T) {
	s := newServer(t, Options{})
	addr, err := s.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !addr.IP.IsLoopback() {
		t.Fatalf("listening on %s", addr)
	}
	const phone = "9996620100"
	if _, err := s.CreateAccount(AccountSpec{Phone: phone, Age: adult}); err != nil {
		t.Fatal(err)
	}
	st, err := s.SessionStorage(phone)
	if err != nil {
		t.Fatal(err)
	}
	opts := s.TCPClientOptions()
	opts.SessionStorage = st
	opts.NoUpdates = true
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		text, _ := spamBotSays(ctx, t, c.API())
		if !strings.HasPrefix(text, "Good news") {
			t.Fatalf("over TCP SpamBot said %q", text)
		}
		return nil
	})
}

// rawRequest sends bytes the server cannot decode as the method it names.
type rawRequest struct{ id uint32 }

func (r rawRequest) Encode(b *bin.Buffer) error {
	b.PutID(r.id)
	b.PutInt32(7) // truncated body
	return nil
}

func TestBadInputGetsRPCErrorsAndKeepsTheConnection(t *testing.T) {
	s := newServer(t, Options{})
	opts := provisioned(t, s, AccountSpec{Phone: "9996620101", Age: adult})
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		// A method the server does not implement.
		_, err := c.API().MessagesGetDialogs(ctx, &tg.MessagesGetDialogsRequest{OffsetPeer: &tg.InputPeerEmpty{}})
		if !tgerr.IsCode(err, 400) || !tgerr.Is(err, "INPUT_METHOD_INVALID") {
			t.Fatalf("unknown method: %v", err)
		}
		// A known method with a body that does not decode.
		err = c.Invoke(ctx, rawRequest{id: tg.MessagesSendMessageRequestTypeID}, &tg.UpdatesBox{})
		if !tgerr.Is(err, "INPUT_REQUEST_INVALID") {
			t.Fatalf("undecodable request: %v", err)
		}
		// The same connection still works.
		if _, err := c.Self(ctx); err != nil {
			t.Fatalf("after bad input: %v", err)
		}
		return nil
	})
}

func TestUnauthorisedCallsAreRefused(t *testing.T) {
	s := newServer(t, Options{})
	opts := s.ClientOptions()
	opts.NoUpdates = true
	run(t, opts, func(ctx context.Context, c *telegram.Client) error {
		_, err := c.API().ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: "SpamBot"})
		if !tgerr.Is(err, "AUTH_KEY_UNREGISTERED") {
			t.Fatalf("before sign-in: %v", err)
		}
		return nil
	})
}

// TestRegisterKeyMatchesTgtestLayout fails loudly if an upgrade of gotd/td
// changes the unexported table registerKey writes to.
func TestRegisterKeyMatchesTgtestLayout(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	var k crypto.Key
	k[0] = 1
	if err := registerKey(s.srv, k.WithID()); err != nil {
		t.Fatal(err)
	}
	if err := registerKey(tgtest.NewServer(tgtest.NewPrivateKey(s.opts.Key), nil, tgtest.ServerOptions{}), k.WithID()); err != nil {
		t.Fatal(err)
	}
}
