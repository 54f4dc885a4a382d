package testserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// TestLimitedAccountWritesToWhoeverSavedItsNumber: SpamBot tells a limited
// account it cannot write to "people who do not have your number in their
// phone contacts", and Telegram's spam FAQ says restricted accounts "can
// send messages to people who have their number saved as a contact". So
// the simulation lets a limited account write to, and add to groups,
// anyone who saved its number, mutual or not. Saving someone's number
// oneself is not enough.
func TestLimitedAccountWritesToWhoeverSavedItsNumber(t *testing.T) {
	s := newServer(t, Options{})
	const alicePhone, bobPhone, carolPhone = "9996620031", "9996620032", "9996620033"
	alice := provisioned(t, s, AccountSpec{Phone: alicePhone, Username: "alice_sim", Age: adult})
	bob := provisioned(t, s, AccountSpec{Phone: bobPhone, Username: "bob_sim", Age: adult})
	if _, err := s.CreateAccount(AccountSpec{Phone: carolPhone, Username: "carol_sim", Age: adult}); err != nil {
		t.Fatal(err)
	}
	// Bob saves Alice's number; Alice does not save Bob's.
	run(t, bob, func(ctx context.Context, c *telegram.Client) error {
		_, err := c.API().ContactsImportContacts(ctx, []tg.InputPhoneContact{{ClientID: 1, Phone: "+" + alicePhone, FirstName: "Alice"}})
		return err
	})
	if err := s.Limit(alicePhone, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	run(t, alice, func(ctx context.Context, c *telegram.Client) error {
		api := c.API()
		// Alice saves Carol's number; Carol does not have Alice's.
		if _, err := api.ContactsImportContacts(ctx, []tg.InputPhoneContact{{ClientID: 2, Phone: "+" + carolPhone, FirstName: "Carol"}}); err != nil {
			t.Fatal(err)
		}
		b, cu := resolve(ctx, t, api, "bob_sim"), resolve(ctx, t, api, "carol_sim")
		if b.MutualContact || b.Contact {
			t.Fatalf("Alice sees Bob as contact=%v mutual=%v; she never saved him", b.Contact, b.MutualContact)
		}
		if err := dm(ctx, api, b, "hi Bob"); err != nil {
			t.Fatalf("limited Alice -> Bob, who has her number: %v", err)
		}
		if err := dm(ctx, api, cu, "hi Carol"); !tgerr.Is(err, "PEER_FLOOD") {
			t.Fatalf("limited Alice -> Carol, who does not have her number: %v, want PEER_FLOOD", err)
		}
		// Adding to a group follows the same rule.
		group := s.ChannelUsernames()[3]
		r, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: group})
		if err != nil {
			t.Fatal(err)
		}
		ch := r.Chats[0].(*tg.Channel)
		in := &tg.InputChannel{ChannelID: ch.ID, AccessHash: ch.AccessHash}
		if _, err := api.ChannelsJoinChannel(ctx, in); err != nil {
			t.Fatal(err)
		}
		invite := func(u *tg.User) error {
			_, err := api.ChannelsInviteToChannel(ctx, &tg.ChannelsInviteToChannelRequest{Channel: in,
				Users: []tg.InputUserClass{&tg.InputUser{UserID: u.ID, AccessHash: u.AccessHash}}})
			return err
		}
		if err := invite(b); err != nil {
			t.Fatalf("limited Alice adds Bob, who has her number: %v", err)
		}
		if err := invite(cu); !tgerr.Is(err, "PEER_FLOOD") {
			t.Fatalf("limited Alice adds Carol: %v, want PEER_FLOOD", err)
		}
		// SpamBot states the same rule.
		if text, _ := spamBotSays(ctx, t, api); !strings.Contains(text, "writing to strangers who haven’t contacted you first") {
			t.Fatalf("SpamBot said %q", text)
		}
		return nil
	})
}
