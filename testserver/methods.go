package testserver

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

type request interface {
	bin.Decoder
	TypeID() uint32
	TypeName() string
}

// routes maps every supported method to its handler.
func (s *Server) routes() map[uint32]method {
	m := map[uint32]method{}
	add := func(r request, auth bool, fn func(*call) (bin.Encoder, error)) {
		m[r.TypeID()] = method{name: r.TypeName(), auth: auth, fn: fn}
	}
	// write methods are refused while the account is frozen.
	// messages.sendMessage and messages.startBot decide for themselves:
	// SpamBot stays reachable for frozen accounts.
	write := func(r request, fn func(*call) (bin.Encoder, error)) {
		m[r.TypeID()] = method{name: r.TypeName(), auth: true, write: true, fn: fn}
	}
	add(&tg.HelpGetConfigRequest{}, false, s.helpGetConfig)
	add(&tg.HelpGetNearestDCRequest{}, false, s.helpGetNearestDC)
	add(&tg.HelpGetAppConfigRequest{}, true, s.helpGetAppConfig)
	add(&tg.AuthSendCodeRequest{}, false, s.authSendCode)
	add(&tg.AuthSignInRequest{}, false, s.authSignIn)
	add(&tg.AuthSignUpRequest{}, false, s.authSignUp)
	add(&tg.AuthLogOutRequest{}, true, s.authLogOut)
	add(&tg.UsersGetUsersRequest{}, true, s.usersGetUsers)
	add(&tg.UsersGetFullUserRequest{}, true, s.usersGetFullUser)
	add(&tg.UpdatesGetStateRequest{}, true, s.updatesGetState)
	add(&tg.UpdatesGetDifferenceRequest{}, true, s.updatesGetDifference)
	add(&tg.ContactsResolveUsernameRequest{}, true, s.contactsResolveUsername)
	write(&tg.ContactsImportContactsRequest{}, s.contactsImportContacts)
	add(&tg.ContactsGetContactsRequest{}, true, s.contactsGetContacts)
	add(&tg.ContactsBlockRequest{}, true, s.contactsBlock)
	add(&tg.ContactsUnblockRequest{}, true, s.contactsUnblock)
	add(&tg.MessagesSendMessageRequest{}, true, s.messagesSendMessage)
	add(&tg.MessagesStartBotRequest{}, true, s.messagesStartBot)
	add(&tg.MessagesGetHistoryRequest{}, true, s.messagesGetHistory)
	write(&tg.ChannelsJoinChannelRequest{}, s.channelsJoinChannel)
	write(&tg.ChannelsInviteToChannelRequest{}, s.channelsInviteToChannel)
	add(&tg.AccountGetAuthorizationsRequest{}, true, s.accountGetAuthorizations)
	return m
}

var (
	errBadRequest = tgerr.New(400, "INPUT_REQUEST_INVALID")
	// errFrozen is what a frozen account's write calls get: code 420 like
	// a flood wait, but no wait (the trap monitor/signal handles).
	errFrozen = tgerr.New(420, "FROZEN_METHOD_INVALID")
)

// decode reads the request body; a malformed body is an RPC error, never a
// dropped connection.
func decode[T any, P interface {
	*T
	bin.Decoder
}](c *call) (P, error) {
	var v T
	p := P(&v)
	if err := p.Decode(c.buf); err != nil {
		return nil, errBadRequest
	}
	return p, nil
}

func (s *Server) helpGetConfig(c *call) (bin.Encoder, error) {
	if _, err := decode[tg.HelpGetConfigRequest](c); err != nil {
		return nil, err
	}
	now := int(c.now.Unix())
	return &tg.Config{
		Date: now, Expires: now + 3600, ThisDC: s.opts.DC, DCOptions: s.dcOptionsLocked(),
		ChatSizeMax: 200, MegagroupSizeMax: 200000, ForwardedCountMax: 100,
		OnlineUpdatePeriodMs: 210000, OfflineBlurTimeoutMs: 5000, OfflineIdleTimeoutMs: 30000,
		OnlineCloudTimeoutMs: 300000, NotifyCloudDelayMs: 30000, NotifyDefaultDelayMs: 1500,
		PushChatPeriodMs: 60000, PushChatLimit: 2, EditTimeLimit: 172800, RevokeTimeLimit: 172800,
		RevokePmTimeLimit: 172800, RatingEDecay: 2419200, StickersRecentLimit: 200,
		ChannelsReadMediaPeriod: 604800, CallReceiveTimeoutMs: 20000, CallRingTimeoutMs: 90000,
		CallConnectTimeoutMs: 30000, CallPacketTimeoutMs: 10000, MeURLPrefix: "https://t.me/",
		CaptionLengthMax: 1024, MessageLengthMax: 4096, WebfileDCID: s.opts.DC,
	}, nil
}

func (s *Server) helpGetNearestDC(c *call) (bin.Encoder, error) {
	return &tg.NearestDC{Country: "NL", ThisDC: s.opts.DC, NearestDC: s.opts.DC}, nil
}

// helpGetAppConfig carries the freeze fields clients read (since April
// 2025): freeze_since_date, freeze_until_date, freeze_appeal_url.
func (s *Server) helpGetAppConfig(c *call) (bin.Encoder, error) {
	req, err := decode[tg.HelpGetAppConfigRequest](c)
	if err != nil {
		return nil, err
	}
	p := &c.acct.policy
	hash := 1
	if p.frozen() {
		hash = int(p.frozenSince.Unix()%1_000_000_000) + 2
	}
	if req.Hash == hash {
		return &tg.HelpAppConfigNotModified{}, nil
	}
	obj := &tg.JSONObject{Value: []tg.JSONObjectValue{
		{Key: "test", Value: &tg.JSONNumber{Value: 1}},
	}}
	if p.frozen() {
		obj.Value = append(obj.Value,
			tg.JSONObjectValue{Key: "freeze_since_date", Value: &tg.JSONNumber{Value: float64(p.frozenSince.Unix())}},
			tg.JSONObjectValue{Key: "freeze_until_date", Value: &tg.JSONNumber{Value: float64(p.frozenUntil.Unix())}},
			tg.JSONObjectValue{Key: "freeze_appeal_url", Value: &tg.JSONString{Value: "https://t.me/spambot"}},
		)
	}
	return &tg.HelpAppConfig{Hash: hash, Config: obj}, nil
}

func (s *Server) authSendCode(c *call) (bin.Encoder, error) {
	req, err := decode[tg.AuthSendCodeRequest](c)
	if err != nil {
		return nil, err
	}
	phone := normalizePhone(req.PhoneNumber)
	if phone == "" {
		return nil, tgerr.New(400, "PHONE_NUMBER_INVALID")
	}
	if u := s.w.byPhone[phone]; u != nil && u.acct != nil && u.acct.policy.banned {
		return nil, tgerr.New(400, "PHONE_NUMBER_BANNED")
	}
	tr := s.w.loginTrack[phone]
	if tr == nil {
		tr = limits.NewTracker()
		s.w.loginTrack[phone] = tr
	}
	ls := s.profile.LimitsFor(limits.SendCode, 0)
	if v := tr.Check(c.now, limits.SendCode, ls, 1); !v.Allowed {
		return nil, floodWait(v.Retry.Sub(c.now))
	}
	tr.Record(c.now, limits.SendCode, 1, limits.KeepFor(ls))
	hash := randomHex(8)
	s.w.codes[hash] = phone
	return &tg.AuthSentCode{Type: &tg.AuthSentCodeTypeApp{Length: 5}, PhoneCodeHash: hash}, nil
}

func (s *Server) checkCode(phone, hash, code string) error {
	switch want, ok := s.w.codes[hash]; {
	case hash == "":
		return tgerr.New(400, "PHONE_CODE_HASH_EMPTY")
	case !ok || want != phone:
		return tgerr.New(400, "PHONE_CODE_EXPIRED")
	case code == "":
		return tgerr.New(400, "PHONE_CODE_EMPTY")
	case code != s.LoginCode():
		return tgerr.New(400, "PHONE_CODE_INVALID")
	}
	return nil
}

func (s *Server) authSignIn(c *call) (bin.Encoder, error) {
	req, err := decode[tg.AuthSignInRequest](c)
	if err != nil {
		return nil, err
	}
	phone := normalizePhone(req.PhoneNumber)
	if err := s.checkCode(phone, req.PhoneCodeHash, req.PhoneCode); err != nil {
		return nil, err
	}
	u := s.w.byPhone[phone]
	if u == nil || u.acct == nil {
		// As Telegram answers today, and as gotd's auth.Flow expects.
		return &tg.AuthAuthorizationSignUpRequired{}, nil
	}
	if u.acct.policy.banned {
		return nil, tgerr.New(400, "PHONE_NUMBER_BANNED")
	}
	delete(s.w.codes, req.PhoneCodeHash)
	s.bind(c, u.acct)
	return &tg.AuthAuthorization{User: u.tgUser(u)}, nil
}

func (s *Server) authSignUp(c *call) (bin.Encoder, error) {
	req, err := decode[tg.AuthSignUpRequest](c)
	if err != nil {
		return nil, err
	}
	phone := normalizePhone(req.PhoneNumber)
	if err := s.checkCode(phone, req.PhoneCodeHash, s.LoginCode()); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.FirstName) == "" || utf8.RuneCountInString(req.FirstName) > maxNameLen {
		return nil, tgerr.New(400, "FIRSTNAME_INVALID")
	}
	if utf8.RuneCountInString(req.LastName) > maxNameLen {
		return nil, tgerr.New(400, "LASTNAME_INVALID")
	}
	if u := s.w.byPhone[phone]; u != nil {
		return nil, tgerr.New(400, "PHONE_NUMBER_OCCUPIED")
	}
	lang := s.w.conns[c.key].langCode
	a, err := s.w.newAccount(AccountSpec{Phone: phone, FirstName: req.FirstName, LastName: req.LastName, Lang: lang}, c.now, s.opts.Seed)
	if err != nil {
		return nil, tgerr.New(400, "PHONE_NUMBER_INVALID")
	}
	delete(s.w.codes, req.PhoneCodeHash)
	s.bind(c, a)
	return &tg.AuthAuthorization{User: a.u.tgUser(a.u)}, nil
}

// bind makes the caller's auth key an authorised session of the account.
func (s *Server) bind(c *call, a *account) {
	s.w.bindKey(c.key, a, c.now)
	sess := a.sessions[c.key]
	live := c.req.Session
	sess.live = &live
	c.acct = a
}

func (s *Server) authLogOut(c *call) (bin.Encoder, error) {
	delete(c.acct.sessions, c.key)
	delete(s.w.keys, c.key)
	return &tg.AuthLoggedOut{}, nil
}

func (s *Server) usersGetUsers(c *call) (bin.Encoder, error) {
	req, err := decode[tg.UsersGetUsersRequest](c)
	if err != nil {
		return nil, err
	}
	out := make(vector, 0, len(req.ID))
	for _, in := range req.ID {
		u, err := s.inputUser(c, in)
		if err != nil {
			out = append(out, &tg.UserEmpty{})
			continue
		}
		out = append(out, u.tgUser(c.acct.u))
	}
	return out, nil
}

func (s *Server) usersGetFullUser(c *call) (bin.Encoder, error) {
	req, err := decode[tg.UsersGetFullUserRequest](c)
	if err != nil {
		return nil, err
	}
	u, err := s.inputUser(c, req.ID)
	if err != nil {
		return nil, err
	}
	full := tg.UserFull{ID: u.id, Settings: tg.PeerSettings{}, NotifySettings: tg.PeerNotifySettings{},
		About: "", Blocked: c.acct.blocked[u.id]}
	if u.bot {
		full.BotInfo = tg.BotInfo{UserID: u.id, Description: "Telegram's spam information bot."}
	}
	return &tg.UsersUserFull{FullUser: full, Users: []tg.UserClass{u.tgUser(c.acct.u)}}, nil
}

func (s *Server) updatesGetState(c *call) (bin.Encoder, error) {
	return &tg.UpdatesState{Pts: c.acct.pts, Date: int(c.now.Unix())}, nil
}

func (s *Server) updatesGetDifference(c *call) (bin.Encoder, error) {
	req, err := decode[tg.UpdatesGetDifferenceRequest](c)
	if err != nil {
		return nil, err
	}
	a := c.acct
	state := tg.UpdatesState{Pts: a.pts, Date: int(c.now.Unix())}
	if req.Pts >= a.pts {
		return &tg.UpdatesDifferenceEmpty{Date: state.Date}, nil
	}
	diff := &tg.UpdatesDifference{State: state}
	seen := map[int64]bool{}
	for _, st := range a.since(req.Pts) {
		diff.NewMessages = append(diff.NewMessages, copyMessage(st.msg))
		if !seen[st.peer] {
			seen[st.peer] = true
			if u := s.w.users[st.peer]; u != nil {
				diff.Users = append(diff.Users, u.tgUser(a.u))
			}
		}
	}
	return diff, nil
}

func (s *Server) contactsResolveUsername(c *call) (bin.Encoder, error) {
	req, err := decode[tg.ContactsResolveUsernameRequest](c)
	if err != nil {
		return nil, err
	}
	if e := s.admit(c.acct, c.now, limits.ResolveUsername, 1); e != nil {
		return nil, e
	}
	name := strings.ToLower(strings.TrimPrefix(req.Username, "@"))
	if u := s.w.byUsername[name]; u != nil {
		return &tg.ContactsResolvedPeer{Peer: &tg.PeerUser{UserID: u.id}, Users: []tg.UserClass{u.tgUser(c.acct.u)}}, nil
	}
	if ch := s.w.chanByName[name]; ch != nil {
		return &tg.ContactsResolvedPeer{Peer: &tg.PeerChannel{ChannelID: ch.id}, Chats: []tg.ChatClass{ch.tgChannel()}}, nil
	}
	return nil, tgerr.New(400, "USERNAME_NOT_OCCUPIED")
}

func (s *Server) contactsImportContacts(c *call) (bin.Encoder, error) {
	req, err := decode[tg.ContactsImportContactsRequest](c)
	if err != nil {
		return nil, err
	}
	if e := s.admit(c.acct, c.now, limits.ImportContacts, len(req.Contacts)); e != nil {
		return nil, e
	}
	res := &tg.ContactsImportedContacts{}
	me := c.acct.u
	for _, pc := range req.Contacts {
		u := s.w.byPhone[normalizePhone(pc.Phone)]
		if u == nil || u.id == me.id {
			continue
		}
		me.contacts[u.id] = true
		res.Imported = append(res.Imported, tg.ImportedContact{UserID: u.id, ClientID: pc.ClientID})
		res.Users = append(res.Users, u.tgUser(me))
	}
	return res, nil
}

func (s *Server) contactsGetContacts(c *call) (bin.Encoder, error) {
	me := c.acct.u
	ids := make([]int64, 0, len(me.contacts))
	for id := range me.contacts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	res := &tg.ContactsContacts{SavedCount: len(ids)}
	for _, id := range ids {
		u := s.w.users[id]
		res.Contacts = append(res.Contacts, tg.Contact{UserID: id, Mutual: u.contacts[me.id]})
		res.Users = append(res.Users, u.tgUser(me))
	}
	return res, nil
}

func (s *Server) contactsBlock(c *call) (bin.Encoder, error) {
	req, err := decode[tg.ContactsBlockRequest](c)
	if err != nil {
		return nil, err
	}
	u, _, err := s.inputPeer(c, req.ID)
	if err != nil || u == nil {
		return nil, tgerr.New(400, "CONTACT_ID_INVALID")
	}
	c.acct.blocked[u.id] = true
	return boolResult(true), nil
}

func (s *Server) contactsUnblock(c *call) (bin.Encoder, error) {
	req, err := decode[tg.ContactsUnblockRequest](c)
	if err != nil {
		return nil, err
	}
	u, _, err := s.inputPeer(c, req.ID)
	if err != nil || u == nil {
		return nil, tgerr.New(400, "CONTACT_ID_INVALID")
	}
	delete(c.acct.blocked, u.id)
	return boolResult(true), nil
}

func (s *Server) messagesSendMessage(c *call) (bin.Encoder, error) {
	req, err := decode[tg.MessagesSendMessageRequest](c)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Message) == "" {
		return nil, tgerr.New(400, "MESSAGE_EMPTY")
	}
	if len(req.Message) > 4096 {
		return nil, tgerr.New(400, "MESSAGE_TOO_LONG")
	}
	u, ch, err := s.inputPeer(c, req.Peer)
	if err != nil {
		return nil, err
	}
	if ch != nil {
		return s.postToChannel(c, ch, req.Message, req.RandomID)
	}
	return s.sendDM(c, u, req.Message, req.RandomID)
}

// sendDM applies the policy to a private message and delivers it.
func (s *Server) sendDM(c *call, to *user, text string, randomID int64) (bin.Encoder, error) {
	a := c.acct
	me := a.u
	if a.blocked[to.id] {
		return nil, tgerr.New(400, "YOU_BLOCKED_USER")
	}
	if to.id == spambot.UserID {
		// Frozen and limited accounts may always talk to SpamBot: it is
		// where they appeal.
		out := s.store(c, me, to, text, nil)
		s.spamBotAnswer(c, text)
		return sentMessage(out), nil
	}
	if a.policy.frozen() {
		return nil, errFrozen
	}
	if to.acct != nil && to.acct.policy.frozen() {
		return nil, tgerr.New(400, "INPUT_USER_DEACTIVATED")
	}
	if to.bot {
		return nil, tgerr.New(400, "USER_IS_BOT")
	}
	act := limits.DMNonContact
	if to.id == me.id || knows(to, a) {
		act = limits.DMContact
	}
	if e := s.admit(a, c.now, act, 1); e != nil {
		return nil, e
	}
	out := s.store(c, me, to, text, nil)
	return sentMessage(out), nil
}

// knows reports whether u may hear from the account a even while it is
// limited: u saved a's number (mutual or not), or wrote to a first. That
// is SpamBot's rule ("you will not be able to send messages to people who
// do not have your number in their phone contacts ... when people contact
// you first, you can always reply") and the spam FAQ's ("restricted
// accounts can send messages to people who have their number saved as a
// contact"). Whom a saved does not count: the recipient decides.
func knows(u *user, a *account) bool { return u.contacts[a.u.id] || a.wroteFirst[u.id] }

// store records a private message in the sender's log and, when the
// recipient is a simulated account, in its log with a push.
func (s *Server) store(c *call, from, to *user, text string, markup tg.ReplyMarkupClass) *stored {
	var out *stored
	if a := from.acct; a != nil {
		a.nextMsgID++
		m := &tg.Message{ID: a.nextMsgID, Out: true, PeerID: &tg.PeerUser{UserID: to.id},
			FromID: &tg.PeerUser{UserID: from.id}, Date: int(c.now.Unix()), Message: text}
		if markup != nil {
			m.SetReplyMarkup(markup)
		}
		out = a.append(to.id, m)
	}
	if b := to.acct; b != nil && to.id != from.id {
		b.nextMsgID++
		m := &tg.Message{ID: b.nextMsgID, PeerID: &tg.PeerUser{UserID: from.id},
			FromID: &tg.PeerUser{UserID: from.id}, Date: int(c.now.Unix()), Message: text}
		if markup != nil {
			m.SetReplyMarkup(markup)
		}
		in := b.append(from.id, m)
		if !mutual(to, from) && from.acct != nil {
			// The recipient may now answer even while limited.
			b.wroteFirst[from.id] = true
		}
		c.pushes = append(c.pushes, push{to: b, upd: &tg.Updates{
			Updates: []tg.UpdateClass{&tg.UpdateNewMessage{Message: copyMessage(in.msg), Pts: in.pts, PtsCount: 1}},
			Users:   []tg.UserClass{from.tgUser(to)},
			Date:    int(c.now.Unix()),
		}})
	}
	return out
}

// spamBotAnswer makes SpamBot reply to the account's message.
func (s *Server) spamBotAnswer(c *call, text string) {
	if s.w.spamBotSilent {
		return
	}
	reply, buttons := s.spamBotReply(c.acct, c.now, text)
	s.store(c, s.w.spambot, c.acct.u, reply, keyboard(buttons))
}

func sentMessage(st *stored) bin.Encoder {
	return &tg.UpdateShortSentMessage{Out: true, ID: st.msg.ID, Pts: st.pts, PtsCount: 1, Date: st.msg.Date}
}

func (s *Server) postToChannel(c *call, ch *channel, text string, randomID int64) (bin.Encoder, error) {
	a := c.acct
	if a.policy.frozen() {
		return nil, errFrozen
	}
	if !ch.members[a.u.id] {
		return nil, tgerr.New(403, "CHAT_WRITE_FORBIDDEN")
	}
	if ch.broadcast {
		return nil, tgerr.New(403, "CHAT_ADMIN_REQUIRED")
	}
	if e := s.admit(a, c.now, limits.DMContact, 1); e != nil {
		return nil, e
	}
	ch.nextMsgID++
	ch.pts++
	m := &tg.Message{ID: ch.nextMsgID, Out: true, PeerID: &tg.PeerChannel{ChannelID: ch.id},
		FromID: &tg.PeerUser{UserID: a.u.id}, Date: int(c.now.Unix()), Message: text}
	return &tg.Updates{
		Updates: []tg.UpdateClass{
			&tg.UpdateMessageID{ID: m.ID, RandomID: randomID},
			&tg.UpdateNewChannelMessage{Message: m, Pts: ch.pts, PtsCount: 1},
		},
		Chats: []tg.ChatClass{ch.tgChannel()},
		Date:  int(c.now.Unix()),
	}, nil
}

func (s *Server) messagesStartBot(c *call) (bin.Encoder, error) {
	req, err := decode[tg.MessagesStartBotRequest](c)
	if err != nil {
		return nil, err
	}
	bot, err := s.inputUser(c, req.Bot)
	if err != nil || !bot.bot {
		return nil, tgerr.New(400, "BOT_INVALID")
	}
	if c.acct.blocked[bot.id] {
		return nil, tgerr.New(400, "YOU_BLOCKED_USER")
	}
	out := s.store(c, c.acct.u, bot, "/start", nil)
	if bot.id == spambot.UserID {
		s.spamBotAnswer(c, "/start")
	}
	return &tg.Updates{
		Updates: []tg.UpdateClass{
			&tg.UpdateMessageID{ID: out.msg.ID, RandomID: req.RandomID},
			&tg.UpdateNewMessage{Message: copyMessage(out.msg), Pts: out.pts, PtsCount: 1},
		},
		Users: []tg.UserClass{bot.tgUser(c.acct.u)},
		Date:  int(c.now.Unix()),
	}, nil
}

func (s *Server) messagesGetHistory(c *call) (bin.Encoder, error) {
	req, err := decode[tg.MessagesGetHistoryRequest](c)
	if err != nil {
		return nil, err
	}
	u, ch, err := s.inputPeer(c, req.Peer)
	if err != nil {
		return nil, err
	}
	if ch != nil {
		if c.acct.policy.frozen() {
			return nil, tgerr.New(400, "FROZEN_PARTICIPANT_MISSING")
		}
		return &tg.MessagesChannelMessages{Pts: ch.pts, Chats: []tg.ChatClass{ch.tgChannel()}}, nil
	}
	limit := req.Limit
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	res := &tg.MessagesMessages{Users: []tg.UserClass{u.tgUser(c.acct.u)}}
	log := c.acct.log
	for i := len(log) - 1; i >= 0 && len(res.Messages) < limit; i-- {
		st := log[i]
		id := st.msg.ID
		if st.peer != u.id ||
			(req.OffsetID > 0 && id >= req.OffsetID) ||
			(req.MinID > 0 && id <= req.MinID) ||
			(req.MaxID > 0 && id >= req.MaxID) {
			continue
		}
		res.Messages = append(res.Messages, copyMessage(st.msg))
	}
	return res, nil
}

func (s *Server) channelsJoinChannel(c *call) (bin.Encoder, error) {
	req, err := decode[tg.ChannelsJoinChannelRequest](c)
	if err != nil {
		return nil, err
	}
	ch, err := s.inputChannel(req.Channel)
	if err != nil {
		return nil, err
	}
	a := c.acct
	if ch.members[a.u.id] {
		return nil, tgerr.New(400, "USER_ALREADY_PARTICIPANT")
	}
	quota := 500
	if a.u.premium {
		quota = 1000
	}
	if len(a.joined) >= quota {
		return nil, tgerr.New(400, "CHANNELS_TOO_MUCH")
	}
	if e := s.admit(a, c.now, limits.JoinChannel, 1); e != nil {
		return nil, e
	}
	ch.members[a.u.id] = true
	a.joined[ch.id] = true
	// In the layer gotd v0.161 speaks, channels.joinChannel answers
	// messages.chatInviteJoinResultOk wrapping the updates; gotd decodes
	// nothing else.
	return &tg.MessagesChatInviteJoinResultOk{Updates: &tg.Updates{Chats: []tg.ChatClass{ch.tgChannel()}, Date: int(c.now.Unix())}}, nil
}

func (s *Server) channelsInviteToChannel(c *call) (bin.Encoder, error) {
	req, err := decode[tg.ChannelsInviteToChannelRequest](c)
	if err != nil {
		return nil, err
	}
	ch, err := s.inputChannel(req.Channel)
	if err != nil {
		return nil, err
	}
	a := c.acct
	if !ch.members[a.u.id] {
		return nil, tgerr.New(400, "CHANNEL_PRIVATE")
	}
	var users []*user
	strangers := 0
	for _, in := range req.Users {
		u, err := s.inputUser(c, in)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
		if !u.contacts[a.u.id] {
			// SpamBot: a limited account cannot add people who do not
			// have its number; having written first does not count.
			strangers++
		}
	}
	if e := s.admit(a, c.now, limits.Invite, strangers); e != nil {
		return nil, e
	}
	res := &tg.Updates{Chats: []tg.ChatClass{ch.tgChannel()}, Date: int(c.now.Unix())}
	for _, u := range users {
		ch.members[u.id] = true
		res.Users = append(res.Users, u.tgUser(a.u))
	}
	return &tg.MessagesInvitedUsers{Updates: res}, nil
}

func (s *Server) accountGetAuthorizations(c *call) (bin.Encoder, error) {
	a := c.acct
	keys := make([][8]byte, 0, len(a.sessions))
	for k := range a.sessions {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return a.sessions[keys[i]].created.Before(a.sessions[keys[j]].created) })
	res := &tg.AccountAuthorizations{AuthorizationTTLDays: 180}
	for _, k := range keys {
		sess := a.sessions[k]
		res.Authorizations = append(res.Authorizations, tg.Authorization{
			Current: k == c.key, Hash: sess.hash, DeviceModel: sess.conn.deviceModel, Platform: "tgsafety-sim",
			SystemVersion: sess.conn.systemVersion, APIID: sess.conn.apiID, AppName: "simulated client",
			AppVersion: sess.conn.appVersion, DateCreated: int(sess.created.Unix()), DateActive: int(sess.active.Unix()),
			IP: "127.0.0.1", Country: "Netherlands", Region: "Simulated",
		})
	}
	return res, nil
}

// inputUser resolves an InputUser; a wrong access hash is refused like
// Telegram does.
func (s *Server) inputUser(c *call, in tg.InputUserClass) (*user, error) {
	switch v := in.(type) {
	case *tg.InputUserSelf:
		return c.acct.u, nil
	case *tg.InputUser:
		if u := s.w.users[v.UserID]; u != nil && u.accessHash == v.AccessHash {
			return u, nil
		}
	}
	return nil, tgerr.New(400, "USER_ID_INVALID")
}

func (s *Server) inputPeer(c *call, in tg.InputPeerClass) (*user, *channel, error) {
	switch v := in.(type) {
	case *tg.InputPeerSelf:
		return c.acct.u, nil, nil
	case *tg.InputPeerUser:
		if u := s.w.users[v.UserID]; u != nil && u.accessHash == v.AccessHash {
			return u, nil, nil
		}
	case *tg.InputPeerChannel:
		if ch := s.w.channels[v.ChannelID]; ch != nil && ch.accessHash == v.AccessHash {
			return nil, ch, nil
		}
		return nil, nil, tgerr.New(400, "CHANNEL_INVALID")
	}
	return nil, nil, tgerr.New(400, "PEER_ID_INVALID")
}

func (s *Server) inputChannel(in tg.InputChannelClass) (*channel, error) {
	if v, ok := in.(*tg.InputChannel); ok {
		if ch := s.w.channels[v.ChannelID]; ch != nil && ch.accessHash == v.AccessHash {
			return ch, nil
		}
	}
	return nil, tgerr.New(400, "CHANNEL_INVALID")
}

// copyMessage returns a fresh copy: encoding rewrites Flags, so stored
// messages must not be sent as they are.
func copyMessage(m *tg.Message) *tg.Message {
	cp := *m
	return &cp
}

func normalizePhone(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomInt64() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:]) >> 1)
}
