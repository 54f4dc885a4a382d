package guard

import (
	"strings"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// Calls to SpamBot (spambot.UserID, or resolving spambot.Username) never
// count against a budget and are never refused: it is where a limited or
// frozen account learns why and appeals, so the guard must never cut that
// path.

// act indexes the actions the guard maps calls to, so the call path uses
// array slots instead of map lookups by name.
type act uint8

const (
	actNone act = iota
	actDMContact
	actDMNonContact
	actResolve
	actJoin
	actInvite
	actImport
	actCreate
	actSearch
	actForward
	actSendCode
	actCount // keep last
)

var actNames = [actCount]limits.Action{
	actDMContact:    limits.DMContact,
	actDMNonContact: limits.DMNonContact,
	actResolve:      limits.ResolveUsername,
	actJoin:         limits.JoinChannel,
	actInvite:       limits.Invite,
	actImport:       limits.ImportContacts,
	actCreate:       limits.CreateChat,
	actSearch:       limits.SearchContacts,
	actForward:      limits.ForwardMessages,
	actSendCode:     limits.SendCode,
}

// reqKind is the shape of a request, read without locks; peers are turned
// into actions under the guard's lock, where the contact sets live.
type reqKind uint8

const (
	reqPass       reqKind = iota // no action: only flood waits apply
	reqSpamBot                   // to or about SpamBot: never counted, never refused
	reqFixed                     // one action, n times, whoever the peer
	reqSendUser                  // message to a user: dm_contact or dm_non_contact
	reqSendChat                  // message to a group or channel: dm_contact
	reqSendSelf                  // message to Saved Messages (or an unusable peer): no DM action
	reqInvite                    // adding users to a chat: invite, strangers only
	reqCreateChat                // a group created with users in it: create_chat, and invite for strangers
	reqWrite                     // acts on a message already in a chat (reaction, vote): no action, refused while frozen
)

// request is what the guard reads from one call. It lives on the stack:
// classify must not allocate.
type request struct {
	method   string
	kind     reqKind
	action   act // reqFixed
	n        int // reqFixed: count; reqSend*: messages forwarded (0 for a send)
	user     int64
	invitees []tg.InputUserClass // reqInvite (channels.inviteToChannel), reqCreateChat
	invitee  tg.InputUserClass   // reqInvite (messages.addChatUser)
}

// classify maps a request to its shape with one type switch on the
// concrete request type; every method the guard does not budget falls
// through to reqPass. It reads only the request and does not allocate.
//
// Every request of gotd's tg package that sends something to a peer is
// mapped (TestEveryMessageSendingMethodIsGuarded enumerates them): a
// message is a message whichever method carries it, so an album, an
// inline-bot result or a scheduled message sent now to a stranger is a
// cold DM like a text, and a group created with strangers in it invites
// them.
func classify(input bin.Encoder) request {
	r := request{method: monitor.MethodName(input)}
	switch v := monitor.UnwrapQuery(input).(type) {
	case *tg.MessagesSendMessageRequest:
		r.sendTo(v.Peer)
	case *tg.MessagesSendMediaRequest:
		r.sendTo(v.Peer)
	case *tg.MessagesSendMultiMediaRequest:
		r.sendTo(v.Peer) // an album is one message to its recipient
	case *tg.MessagesSendInlineBotResultRequest:
		r.sendTo(v.Peer)
	case *tg.MessagesSendScheduledMessagesRequest:
		r.sendTo(v.Peer)
	case *tg.MessagesSendQuickReplyMessagesRequest:
		r.sendTo(v.Peer)
	case *tg.MessagesSendScreenshotNotificationRequest:
		r.sendTo(v.Peer)
	case *tg.MessagesSendBotRequestedPeerRequest:
		r.sendTo(v.Peer)
	case *tg.MessagesSendWebViewDataRequest:
		r.sendToUser(v.Bot)
	case *tg.MessagesStartBotRequest:
		if inputUserID(v.Bot) == spambot.UserID {
			r.kind = reqSpamBot
		} else {
			r.sendTo(v.Peer)
		}
	case *tg.MessagesRequestEncryptionRequest:
		r.sendToUser(v.UserID) // the secret-chat request is what the stranger sees
	case *tg.MessagesSendEncryptedRequest, *tg.MessagesSendEncryptedFileRequest, *tg.MessagesSendEncryptedServiceRequest:
		// A secret chat exists only once the other side accepted it.
		r.kind = reqSendChat
	case *tg.MessagesSendReactionRequest:
		r.writeTo(v.Peer)
	case *tg.MessagesSendPaidReactionRequest:
		r.writeTo(v.Peer)
	case *tg.MessagesSendVoteRequest:
		r.writeTo(v.Peer)
	case *tg.MessagesForwardMessagesRequest:
		r.sendTo(v.ToPeer)
		if r.kind != reqSpamBot {
			r.n = len(v.ID)
		}
	case *tg.ContactsResolveUsernameRequest:
		if isSpamBotUsername(v.Username) {
			r.kind = reqSpamBot
		} else {
			r.fixed(actResolve, 1)
		}
	case *tg.ChannelsJoinChannelRequest:
		r.fixed(actJoin, 1)
	case *tg.ChannelsInviteToChannelRequest:
		r.kind, r.invitees = reqInvite, v.Users
	case *tg.MessagesAddChatUserRequest:
		r.kind, r.invitee = reqInvite, v.UserID
	case *tg.ContactsImportContactsRequest:
		r.fixed(actImport, len(v.Contacts))
	case *tg.MessagesCreateChatRequest:
		r.kind, r.invitees = reqCreateChat, v.Users
	case *tg.ChannelsCreateChannelRequest:
		r.fixed(actCreate, 1)
	case *tg.ContactsSearchRequest:
		r.fixed(actSearch, 1)
	case *tg.AuthSendCodeRequest:
		r.fixed(actSendCode, 1)
	}
	return r
}

func (r *request) fixed(a act, n int) { r.kind, r.action, r.n = reqFixed, a, n }

func (r *request) sendTo(peer tg.InputPeerClass) {
	switch p := peer.(type) {
	case *tg.InputPeerUser:
		r.user = p.UserID
	case *tg.InputPeerUserFromMessage:
		r.user = p.UserID
	case *tg.InputPeerChannel, *tg.InputPeerChat, *tg.InputPeerChannelFromMessage:
		r.kind = reqSendChat
		return
	default: // self, empty, unknown
		r.kind = reqSendSelf
		return
	}
	if r.user == spambot.UserID {
		r.kind = reqSpamBot
		return
	}
	r.kind = reqSendUser
}

// sendToUser is sendTo for methods that name their recipient as an
// InputUser.
func (r *request) sendToUser(u tg.InputUserClass) {
	switch id := inputUserID(u); {
	case id == 0:
		r.kind = reqSendSelf
	case id == spambot.UserID:
		r.kind = reqSpamBot
	default:
		r.kind, r.user = reqSendUser, id
	}
}

// writeTo classifies a call that acts on a message already in the chat
// with peer: it reaches nobody new, but a frozen account may not do it.
func (r *request) writeTo(peer tg.InputPeerClass) {
	r.kind = reqWrite
	switch p := peer.(type) {
	case *tg.InputPeerUser:
		r.user = p.UserID
	case *tg.InputPeerUserFromMessage:
		r.user = p.UserID
	}
	if r.user == spambot.UserID {
		r.kind = reqSpamBot
	}
}

func isSpamBotUsername(s string) bool {
	return strings.EqualFold(strings.TrimPrefix(s, "@"), spambot.Username)
}

// inputUserID returns the user id an InputUser names, or 0 for self and
// empty (which are never strangers).
func inputUserID(u tg.InputUserClass) int64 {
	switch v := u.(type) {
	case *tg.InputUser:
		return v.UserID
	case *tg.InputUserFromMessage:
		return v.UserID
	}
	return 0
}

// use is one action a call spends: n of action a.
type use struct {
	a act
	n int
}

// plan is a request resolved against what the guard knows about peers.
type plan struct {
	uses [2]use // a forward to a user spends a DM and forwards
	k    int
	// write: refused while the account is frozen.
	write bool
	// stranger is the action that reaches non-contacts (dm_non_contact or
	// invite), refused while the account is limited; actNone when none.
	stranger act
}

func (p *plan) add(a act, n int) {
	if n > 0 {
		p.uses[p.k] = use{a, n}
		p.k++
	}
}

// planLocked resolves a request to the actions it spends. It reads the
// contact sets, so g.mu must be held.
func (g *Guard) planLocked(r *request) plan {
	var p plan
	switch r.kind {
	case reqFixed:
		p.add(r.action, r.n)
		// Logging in must stay possible (a frozen account appeals from a
		// fresh login too); everything else the guard budgets is refused
		// while frozen.
		p.write = r.action != actSendCode
	case reqSendUser:
		a := actDMNonContact
		if g.peers[r.user]&(mutual|wroteFirst) != 0 {
			a = actDMContact
		}
		p.add(a, 1)
		p.add(actForward, r.n)
		p.write = true
		if a == actDMNonContact {
			p.stranger = a
		}
	case reqSendChat:
		p.add(actDMContact, 1)
		p.add(actForward, r.n)
		p.write = true
	case reqSendSelf:
		p.add(actForward, r.n)
		p.write = true
	case reqInvite, reqCreateChat:
		if r.kind == reqCreateChat {
			p.add(actCreate, 1)
		}
		n := 0
		if r.invitee != nil {
			n += g.strangerLocked(r.invitee)
		}
		for _, u := range r.invitees {
			n += g.strangerLocked(u)
		}
		p.add(actInvite, n)
		p.write = true
		if n > 0 {
			p.stranger = actInvite
		}
	case reqWrite:
		p.write = true
	}
	return p
}

// strangerLocked returns 1 when adding u to a chat counts as an invite: u is
// not a known mutual contact (the profile's invite budget counts those
// only; someone who wrote first is still a stranger to a group).
func (g *Guard) strangerLocked(u tg.InputUserClass) int {
	id := inputUserID(u)
	if id == 0 || id == spambot.UserID || g.peers[id]&mutual != 0 {
		return 0
	}
	return 1
}

// peerFlags is what the guard knows about one user.
type peerFlags uint8

const (
	mutual     peerFlags = 1 << iota // a mutual contact
	wroteFirst                       // sent the account a private message
)

// maxPeers bounds the contact sets. When full, new users are not learned,
// which only makes the guard stricter (an unknown user is a stranger).
const maxPeers = 100_000

// setLocked applies set and clear to a user's flags.
func (g *Guard) setLocked(id int64, set, clear peerFlags) {
	if id == 0 {
		return
	}
	f, ok := g.peers[id]
	nf := (f &^ clear) | set
	switch {
	case ok && nf == f:
	case nf == 0:
		delete(g.peers, id)
	case !ok && len(g.peers) >= maxPeers:
	default:
		g.peers[id] = nf
	}
}

// sources are the parts of a result or update the guard learns from. It
// only holds references into the result: collecting them does not allocate.
type sources struct {
	users    []tg.UserClass
	messages []tg.MessageClass
	updates  []tg.UpdateClass
	update   tg.UpdateClass
	contacts *tg.ContactsContacts
	wrote    int64 // sender of an incoming UpdateShortMessage
}

func (s *sources) empty() bool {
	return len(s.users) == 0 && len(s.messages) == 0 && len(s.updates) == 0 &&
		s.update == nil && s.contacts == nil && s.wrote == 0
}

// fromUpdates collects what an updates container carries.
func (s *sources) fromUpdates(u tg.UpdatesClass) {
	switch v := u.(type) {
	case *tg.Updates:
		s.updates, s.users = v.Updates, v.Users
	case *tg.UpdatesCombined:
		s.updates, s.users = v.Updates, v.Users
	case *tg.UpdateShort:
		s.update = v.Update
	case *tg.UpdateShortMessage:
		if !v.Out {
			s.wrote = v.UserID
		}
	}
}

type usersGetter interface{ GetUsers() []tg.UserClass }

// fromResult collects what a call's decoded result carries: users (with
// their contact flags), contact lists and private messages.
func (s *sources) fromResult(output bin.Decoder) {
	switch v := output.(type) {
	case nil:
	case *tg.MessagesMessagesBox:
		if v.Messages != nil {
			if m, ok := v.Messages.AsModified(); ok {
				s.users, s.messages = m.GetUsers(), m.GetMessages()
			}
		}
	case *tg.MessagesDialogsBox:
		if v.Dialogs != nil {
			if d, ok := v.Dialogs.AsModified(); ok {
				s.users, s.messages = d.GetUsers(), d.GetMessages()
			}
		}
	case *tg.UpdatesBox:
		s.fromUpdates(v.Updates)
	case *tg.MessagesInvitedUsers:
		s.fromUpdates(v.Updates)
	case *tg.UpdatesDifferenceBox:
		switch d := v.Difference.(type) {
		case *tg.UpdatesDifference:
			s.messages, s.updates, s.users = d.NewMessages, d.OtherUpdates, d.Users
		case *tg.UpdatesDifferenceSlice:
			s.messages, s.updates, s.users = d.NewMessages, d.OtherUpdates, d.Users
		}
	case *tg.ContactsContactsBox:
		if c, ok := v.Contacts.(*tg.ContactsContacts); ok {
			s.contacts, s.users = c, c.Users
		}
	case *tg.UserClassVector:
		s.users = v.Elems
	case usersGetter: // contacts.resolvedPeer, contacts.found, importedContacts, userFull, ...
		s.users = v.GetUsers()
	}
}

// learn updates the contact sets from s under one lock.
func (g *Guard) learn(s *sources) {
	if s.empty() {
		return
	}
	g.mu.Lock()
	g.learnLocked(s)
	g.mu.Unlock()
}

func (g *Guard) learnLocked(s *sources) {
	for _, uc := range s.users {
		// A full (non-min) user object states the contact relation as it
		// is now: set or clear, so a contact who removed the account
		// stops counting as mutual.
		if u, ok := uc.(*tg.User); ok && !u.Min && !u.Self {
			if u.MutualContact {
				g.setLocked(u.ID, mutual, 0)
			} else {
				g.setLocked(u.ID, 0, mutual)
			}
		}
	}
	if c := s.contacts; c != nil {
		// contacts.getContacts is the complete list: whoever is not on
		// it is no contact at all, so no mutual one.
		for id, f := range g.peers {
			if f&mutual != 0 {
				g.setLocked(id, 0, mutual)
			}
		}
		for _, ct := range c.Contacts {
			if ct.Mutual {
				g.setLocked(ct.UserID, mutual, 0)
			}
		}
	}
	for _, m := range s.messages {
		g.incomingLocked(m)
	}
	for _, u := range s.updates {
		g.updateLocked(u)
	}
	if s.update != nil {
		g.updateLocked(s.update)
	}
	g.setLocked(s.wrote, wroteFirst, 0)
}

func (g *Guard) updateLocked(u tg.UpdateClass) {
	if v, ok := u.(*tg.UpdateNewMessage); ok {
		g.incomingLocked(v.Message)
	}
}

// incomingLocked marks the sender of an incoming private message as
// having written first.
func (g *Guard) incomingLocked(m tg.MessageClass) {
	msg, ok := m.(*tg.Message)
	if !ok || msg.Out {
		return
	}
	if p, ok := msg.PeerID.(*tg.PeerUser); ok {
		g.setLocked(p.UserID, wroteFirst, 0)
	}
}
