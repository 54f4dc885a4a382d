package spambot

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gotd/td/clock"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/monitor/signal"
)

// UserID is @SpamBot's user id; a resolved "SpamBot" with another id is
// not Telegram's bot and is never trusted.
const UserID = 178220800

// Username is the bot's public username.
const Username = "SpamBot"

// Prober asks @SpamBot for an account's status through the account's own
// client. It is safe for concurrent use, but probes run one at a time.
//
// What it does, and why: it resolves the bot once and caches the peer
// (resolving costs flood budget), unblocks the bot only when Telegram says
// it is blocked, sends /start, and reads only a reply newer than its own
// message — never old history. Any failure or silence is Unknown with the
// reason, never Free. It never presses SpamBot's buttons: automated
// complaints and appeals are an abuse pattern of their own.
type Prober struct {
	api  *tg.Client
	opts ProberOptions
	mu   sync.Mutex // one probe at a time; guards peer
	peer *tg.InputPeerUser
}

// ProberOptions configures a Prober.
type ProberOptions struct {
	// Clock times the wait for the reply. Defaults to clock.System.
	Clock clock.Clock
	// Timeout is how long to wait for the reply. Defaults to 30 s.
	Timeout time.Duration
	// Poll is how often history is read while waiting. Defaults to 2 s.
	Poll time.Duration
}

// NewProber returns a prober that talks through api.
func NewProber(api *tg.Client, opts ProberOptions) *Prober {
	if opts.Clock == nil {
		opts.Clock = clock.System
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 2 * time.Second
	}
	return &Prober{api: api, opts: opts}
}

// Probe asks SpamBot and returns when the question was sent and the
// classified answer. It never returns Free unless SpamBot said so.
func (p *Prober) Probe(ctx context.Context) (time.Time, Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sent := p.opts.Clock.Now()
	peer, err := p.resolve(ctx)
	if err != nil {
		return sent, unknown("resolve @SpamBot: " + signal.Describe(err))
	}
	sent = p.opts.Clock.Now()
	id, err := p.start(ctx, peer)
	if tgerr.Is(err, "YOU_BLOCKED_USER") {
		if _, uerr := p.api.ContactsUnblock(ctx, &tg.ContactsUnblockRequest{ID: peer}); uerr != nil {
			return sent, unknown("unblock @SpamBot: " + signal.Describe(uerr))
		}
		id, err = p.start(ctx, peer)
	}
	if err != nil {
		return sent, unknown("send /start: " + signal.Describe(err))
	}
	return sent, p.await(ctx, peer, id)
}

func (p *Prober) resolve(ctx context.Context) (*tg.InputPeerUser, error) {
	if p.peer != nil {
		return p.peer, nil
	}
	r, err := p.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: Username})
	if err != nil {
		return nil, err
	}
	for _, u := range r.Users {
		if u, ok := u.(*tg.User); ok && u.ID == UserID {
			p.peer = &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash}
			return p.peer, nil
		}
	}
	return nil, errors.New("@SpamBot resolved to a user other than Telegram's SpamBot")
}

// start sends /start and returns our message's id.
func (p *Prober) start(ctx context.Context, peer *tg.InputPeerUser) (int, error) {
	upd, err := p.api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
		Peer: peer, Message: "/start", RandomID: randomID(),
	})
	if err != nil {
		return 0, err
	}
	switch u := upd.(type) {
	case *tg.UpdateShortSentMessage:
		return u.ID, nil
	case *tg.Updates:
		for _, x := range u.Updates {
			switch x := x.(type) {
			case *tg.UpdateMessageID:
				return x.ID, nil
			case *tg.UpdateNewMessage:
				if m, ok := x.Message.(*tg.Message); ok && m.Out {
					return m.ID, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no message id in the answer to /start (%T)", upd)
}

// await reads history until a reply newer than our message arrives.
func (p *Prober) await(ctx context.Context, peer *tg.InputPeerUser, ours int) Result {
	deadline := p.opts.Clock.Now().Add(p.opts.Timeout)
	for {
		h, err := p.api.MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{Peer: peer, MinID: ours, Limit: 10})
		if err != nil {
			return unknown("read SpamBot's reply: " + signal.Describe(err))
		}
		if m := reply(h, ours); m != nil {
			return Parse(m.Message, buttons(m))
		}
		now := p.opts.Clock.Now()
		if !now.Before(deadline) {
			return unknown(fmt.Sprintf("no reply from SpamBot within %s", p.opts.Timeout))
		}
		t := p.opts.Clock.Timer(min(p.opts.Poll, deadline.Sub(now)))
		select {
		case <-ctx.Done():
			clock.StopTimer(t)
			return unknown("probe cancelled: " + ctx.Err().Error())
		case <-t.C():
		}
	}
}

// reply returns the oldest incoming message after ours.
func reply(h tg.MessagesMessagesClass, ours int) *tg.Message {
	var msgs []tg.MessageClass
	switch h := h.(type) {
	case *tg.MessagesMessages:
		msgs = h.Messages
	case *tg.MessagesMessagesSlice:
		msgs = h.Messages
	}
	var best *tg.Message
	for _, mc := range msgs {
		m, ok := mc.(*tg.Message)
		if !ok || m.Out || m.ID <= ours {
			continue
		}
		if from, ok := m.FromID.(*tg.PeerUser); ok && from.UserID != UserID {
			continue
		}
		if best == nil || m.ID < best.ID {
			best = m
		}
	}
	return best
}

func buttons(m *tg.Message) []string {
	var out []string
	if kb, ok := m.ReplyMarkup.(*tg.ReplyKeyboardMarkup); ok {
		for _, row := range kb.Rows {
			for _, b := range row.Buttons {
				out = append(out, b.GetText())
			}
		}
	}
	return out
}

func unknown(reason string) Result { return Result{State: Unknown, Reason: reason} }

func randomID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:]) >> 1)
}
