package guard_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// sendKind is what the guard must do with a message-sending method.
type sendKind int

const (
	// sendDM delivers a message to its peer: a cold DM to a stranger
	// (budgeted, refused while limited), dm_contact to a group.
	sendDM sendKind = iota
	// sendSecret writes into a secret chat the other side accepted:
	// dm_contact, refused while frozen.
	sendSecret
	// sendWrite acts on a message already in the chat (a reaction, a
	// vote): spends nothing, refused while frozen.
	sendWrite
	// sendCreate creates a group with users in it: create_chat, plus an
	// invite for each stranger.
	sendCreate
	// sendNoPeer names no peer (bots answering a web view): not the
	// guard's business.
	sendNoPeer
)

// sendMethods is every peer-bearing message-sending request of gotd's tg
// package, with a request aimed at user `to`. TestEveryMessageSendingMethodIsGuarded
// fails when gotd adds one that is not listed here.
var sendMethods = map[string]struct {
	kind sendKind
	req  func(to int64) bin.Encoder
}{
	"messages.sendMessage": {sendDM, func(to int64) bin.Encoder { return dm(to) }},
	"messages.sendMedia": {sendDM, func(to int64) bin.Encoder {
		return &tg.MessagesSendMediaRequest{Peer: userPeer(to), Media: &tg.InputMediaEmpty{}}
	}},
	"messages.sendMultiMedia": {sendDM, func(to int64) bin.Encoder { return album(to) }},
	"messages.sendInlineBotResult": {sendDM, func(to int64) bin.Encoder {
		return &tg.MessagesSendInlineBotResultRequest{Peer: userPeer(to), QueryID: 1, ID: "r"}
	}},
	"messages.forwardMessages": {sendDM, func(to int64) bin.Encoder {
		return &tg.MessagesForwardMessagesRequest{FromPeer: &tg.InputPeerSelf{}, ToPeer: userPeer(to), ID: []int{1}}
	}},
	"messages.sendScheduledMessages": {sendDM, func(to int64) bin.Encoder {
		return &tg.MessagesSendScheduledMessagesRequest{Peer: userPeer(to), ID: []int{1, 2}}
	}},
	"messages.sendQuickReplyMessages": {sendDM, func(to int64) bin.Encoder {
		return &tg.MessagesSendQuickReplyMessagesRequest{Peer: userPeer(to), ShortcutID: 1, ID: []int{1}}
	}},
	"messages.sendScreenshotNotification": {sendDM, func(to int64) bin.Encoder {
		return &tg.MessagesSendScreenshotNotificationRequest{Peer: userPeer(to), ReplyTo: &tg.InputReplyToMessage{ReplyToMsgID: 1}}
	}},
	"messages.sendBotRequestedPeer": {sendDM, func(to int64) bin.Encoder {
		return &tg.MessagesSendBotRequestedPeerRequest{Peer: userPeer(to), MsgID: 1, RequestedPeers: []tg.InputPeerClass{&tg.InputPeerSelf{}}}
	}},
	"messages.sendWebViewData": {sendDM, func(to int64) bin.Encoder {
		return &tg.MessagesSendWebViewDataRequest{Bot: &tg.InputUser{UserID: to, AccessHash: 1}, ButtonText: "b", Data: "d"}
	}},
	"messages.startBot": {sendDM, func(to int64) bin.Encoder {
		return &tg.MessagesStartBotRequest{Bot: &tg.InputUser{UserID: to, AccessHash: 1}, Peer: userPeer(to), StartParam: "start"}
	}},
	"messages.requestEncryption": {sendDM, func(to int64) bin.Encoder {
		return &tg.MessagesRequestEncryptionRequest{UserID: &tg.InputUser{UserID: to, AccessHash: 1}, GA: []byte{1}}
	}},
	"messages.sendEncrypted": {sendSecret, func(int64) bin.Encoder {
		return &tg.MessagesSendEncryptedRequest{Peer: tg.InputEncryptedChat{ChatID: 1}, Data: []byte{1}}
	}},
	"messages.sendEncryptedFile": {sendSecret, func(int64) bin.Encoder {
		return &tg.MessagesSendEncryptedFileRequest{Peer: tg.InputEncryptedChat{ChatID: 1}, Data: []byte{1}, File: &tg.InputEncryptedFileEmpty{}}
	}},
	"messages.sendEncryptedService": {sendSecret, func(int64) bin.Encoder {
		return &tg.MessagesSendEncryptedServiceRequest{Peer: tg.InputEncryptedChat{ChatID: 1}, Data: []byte{1}}
	}},
	"messages.sendReaction": {sendWrite, func(to int64) bin.Encoder {
		return &tg.MessagesSendReactionRequest{Peer: userPeer(to), MsgID: 1}
	}},
	"messages.sendPaidReaction": {sendWrite, func(to int64) bin.Encoder {
		return &tg.MessagesSendPaidReactionRequest{Peer: userPeer(to), MsgID: 1, Count: 1}
	}},
	"messages.sendVote": {sendWrite, func(to int64) bin.Encoder {
		return &tg.MessagesSendVoteRequest{Peer: userPeer(to), MsgID: 1}
	}},
	"messages.createChat": {sendCreate, func(to int64) bin.Encoder {
		return &tg.MessagesCreateChatRequest{Title: "x", Users: []tg.InputUserClass{&tg.InputUser{UserID: to, AccessHash: 1}}}
	}},
	"messages.sendWebViewResultMessage": {sendNoPeer, nil},
}

func userPeer(id int64) *tg.InputPeerUser { return &tg.InputPeerUser{UserID: id, AccessHash: 1} }

// album is a cold album: three photos to one user.
func album(to int64) *tg.MessagesSendMultiMediaRequest {
	r := &tg.MessagesSendMultiMediaRequest{Peer: userPeer(to)}
	for i := range 3 {
		r.MultiMedia = append(r.MultiMedia, tg.InputSingleMedia{Media: &tg.InputMediaEmpty{}, RandomID: int64(i)})
	}
	return r
}

var (
	peerFlood = signal.Signal{Kind: signal.PeerFlood, Code: 400, Type: "PEER_FLOOD"}
	frozenSig = signal.Signal{Kind: signal.Frozen, Code: 420, Type: "FROZEN_METHOD_INVALID"}
)

// TestEveryMessageSendingMethodIsGuarded: every request of gotd's tg
// package that sends something to a peer (messages.send*, forwards,
// startBot, secret-chat requests, group creation) is refused while the
// account is frozen, and every one that reaches a stranger is refused
// while it is limited. A method gotd adds later fails here until it is
// classified.
func TestEveryMessageSendingMethodIsGuarded(t *testing.T) {
	var names []string
	for name := range tg.NamesMap() {
		if strings.HasPrefix(name, "messages.send") || strings.HasPrefix(name, "messages.forward") ||
			name == "messages.startBot" || name == "messages.requestEncryption" || name == "messages.createChat" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		m, ok := sendMethods[name]
		if !ok {
			t.Errorf("%s sends to a peer and is not classified: add it to the guard (actions.go) and to sendMethods", name)
			continue
		}
		if m.kind == sendNoPeer {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if got := monitor.MethodName(m.req(stranger)); got != name {
				t.Fatalf("test table: %s builds %s", name, got)
			}
			frozen := newFixture(t, guard.Options{Created: adult})
			frozen.signal(name, frozenSig)
			frozen.mustBlock(m.req(stranger), guard.ReasonFrozen)
			if m.kind == sendDM || m.kind == sendWrite {
				frozen.mustPass(m.req(spambot.UserID)) // where a frozen account appeals
			}

			limited := newFixture(t, guard.Options{Created: adult})
			limited.signal(name, peerFlood)
			switch m.kind {
			case sendDM, sendCreate:
				be := limited.mustBlock(m.req(stranger), guard.ReasonLimited)
				want := limits.DMNonContact
				if m.kind == sendCreate {
					want = limits.Invite
				}
				if be.Action != want {
					t.Fatalf("limited: action %s, want %s", be.Action, want)
				}
				// Someone who wrote first may be answered, in every way.
				const wrote = 77
				limited.g.Observe(t.Context(), &tg.UpdateShortMessage{UserID: wrote, Message: "hi", ID: 1})
				if m.kind == sendDM {
					limited.mustPass(m.req(wrote))
				}
			default:
				limited.mustPass(m.req(stranger))
			}
		})
	}
}

// TestColdAlbumsSpendTheColdDMBudget: an album to a stranger is a cold DM
// like a text: of 20 cold albums in an hour, the 8 the budget allows pass.
func TestColdAlbumsSpendTheColdDMBudget(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	passed := 0
	for i := range 20 {
		if err := f.call(album(stranger+int64(i)), nil); err == nil {
			passed++
		}
	}
	if passed != 8 {
		t.Fatalf("%d of 20 cold albums passed, want 8 (dm_non_contact 10/h x 0.8)", passed)
	}
	be := f.mustBlock(&tg.MessagesSendInlineBotResultRequest{Peer: userPeer(stranger + 50), QueryID: 1, ID: "r"}, guard.ReasonBudget)
	if be.Action != limits.DMNonContact {
		t.Fatalf("inline result to a stranger blocked on %s, want dm_non_contact", be.Action)
	}
}

// TestCreateChatCountsStrangersAsInvites: a group created with users in
// it adds them, like messages.addChatUser: strangers spend the invite
// budget (and are refused while limited); known mutual contacts do not.
func TestCreateChatCountsStrangersAsInvites(t *testing.T) {
	f := newFixture(t, guard.Options{Created: adult})
	const mutualID = 10
	f.learnContacts(tg.Contact{UserID: mutualID, Mutual: true})
	users := func(ids ...int64) *tg.MessagesCreateChatRequest {
		r := &tg.MessagesCreateChatRequest{Title: "x"}
		for _, id := range ids {
			r.Users = append(r.Users, &tg.InputUser{UserID: id, AccessHash: 1})
		}
		return r
	}
	f.mustPass(users(mutualID))
	if u := f.g.Used(); u[limits.Invite] != 0 || u[limits.CreateChat] == 0 {
		t.Fatalf("group with a mutual contact: used %v, want create_chat only", u)
	}
	// The invite budget is 40 a day x 0.8 = 32 (20/h x 0.8 = 16 an hour):
	// one group with 17 strangers is over the hourly budget.
	var ids []int64
	for i := range 17 {
		ids = append(ids, stranger+int64(i))
	}
	be := f.mustBlock(users(ids...), guard.ReasonBudget)
	if be.Action != limits.Invite || be.Count != 17 {
		t.Fatalf("blocked on %s x%d, want invite x17", be.Action, be.Count)
	}
	f.mustPass(users(ids[:16]...))
	f.signal("messages.sendMessage", peerFlood)
	f.mustBlock(users(mutualID, stranger+100), guard.ReasonLimited)
	f.mustPass(users(mutualID))
}
