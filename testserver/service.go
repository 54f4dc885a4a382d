package testserver

import (
	"errors"
	"slices"
	"sync"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/proto"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"go.uber.org/zap"
)

// recentMsgIDs is how many message ids the server remembers per MTProto
// session to answer msgs_state_req: clients ask about requests they have
// had no answer for, which are among the last few.
const recentMsgIDs = 64

// msgResendAnsReqTypeID is msg_resend_ans_req#8610baeb, which gotd's mt
// package does not define: msg_resend_req asking for the answers only.
const msgResendAnsReqTypeID = 0x8610baeb

// wireState is what the server remembers below the API: the message ids
// each MTProto session sent, and counters of the messages that reach the
// handler and of the rpc_errors answering them. It has its own lock: the
// world's lock (Server.mu) is not needed for either.
type wireState struct {
	mu        sync.Mutex
	sessions  map[int64]*sessionLog
	received  map[uint32]int // messages reaching the handler, by constructor id
	rpcErrors map[uint32]int // rpc_error answers, by the constructor id of the message answered
	// keys are the MTProto sessions each auth key carried, and
	// duplicated counts the messages refused with AUTH_KEY_DUPLICATED.
	keys       map[[8]byte]*keySessions
	duplicated int
}

// supersededSessions is how many earlier sessions of an auth key are
// remembered: a client restarted a few times, then its old instance
// resurfacing, is still caught.
const supersededSessions = 16

// keySessions are the sessions of one auth key: the latest to begin, and
// those it superseded. A superseded session that sends again means two
// clients use the key at once (two processes, two machines): Telegram
// answers AUTH_KEY_DUPLICATED (406) and the session is destroyed. A
// client that reconnects with a new session never sends on its old one
// again, so it is not caught.
type keySessions struct {
	latest int64
	older  []int64
}

// sessionLog is one MTProto session's recent message ids.
type sessionLog struct {
	key  [8]byte
	ids  [recentMsgIDs]int64 // ring
	n    int                 // ids written
	high int64
}

func newWireState() *wireState {
	return &wireState{sessions: map[int64]*sessionLog{}, received: map[uint32]int{}, rpcErrors: map[uint32]int{},
		keys: map[[8]byte]*keySessions{}}
}

// seen records a message id of a session; duplicated is true when the
// session was superseded by a newer one of its auth key (keySessions).
func (w *wireState) seen(sess tgtest.Session, msgID int64) (duplicated bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := w.keys[sess.AuthKey.ID]
	switch {
	case k == nil:
		w.keys[sess.AuthKey.ID] = &keySessions{latest: sess.ID}
	case k.latest == sess.ID:
	case slices.Contains(k.older, sess.ID):
		w.duplicated++
		return true
	default:
		if len(k.older) == supersededSessions {
			k.older = k.older[1:]
		}
		k.older = append(k.older, k.latest)
		k.latest = sess.ID
	}
	l := w.sessions[sess.ID]
	if l == nil {
		l = &sessionLog{key: sess.AuthKey.ID}
		w.sessions[sess.ID] = l
	}
	l.ids[l.n%recentMsgIDs] = msgID
	l.n++
	if msgID > l.high {
		l.high = msgID
	}
	return false
}

// states answers msgs_state_req for a session, one byte per id: 4
// (received; it is also an ack) for an id the session sent recently, 3
// (not received, id too high) above the highest id seen, 2 (not received)
// within the remembered range, 1 (nothing known) below it. Requests are
// answered as they arrive, so a received one needs no "+32 processing"
// flag, and "+64 answered" is left out because mtcute would then resend a
// request whose answer is merely in flight.
func (w *wireState) states(sessionID int64, ids []int64) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.sessions[sessionID]
	out := make([]byte, len(ids))
	for i, id := range ids {
		out[i] = 1
		if l == nil {
			continue
		}
		low := l.high
		for j := 0; j < min(l.n, recentMsgIDs); j++ {
			if l.ids[j] == id {
				out[i] = 4
				break
			}
			low = min(low, l.ids[j])
		}
		switch {
		case out[i] == 4:
		case id > l.high:
			out[i] = 3
		case id >= low && l.n > 0:
			out[i] = 2
		}
	}
	return out
}

// forget drops another session of the same auth key (destroy_session) and
// reports whether there was one.
func (w *wireState) forget(key [8]byte, current, target int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.sessions[target]
	if target == current || l == nil || l.key != key {
		return false
	}
	delete(w.sessions, target)
	return true
}

// count records one handled message and whether it was answered with an
// rpc_error.
func (w *wireState) count(id uint32, err error) {
	var rpcErr *tgerr.Error
	isRPC := errors.As(err, &rpcErr)
	w.mu.Lock()
	w.received[id]++
	if isRPC {
		w.rpcErrors[id]++
	}
	w.mu.Unlock()
}

// counts returns how many messages of constructor id reached the handler
// and how many of them were answered with an rpc_error.
func (w *wireState) counts(id uint32) (received, rpcErrors int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.received[id], w.rpcErrors[id]
}

// onWire is the tgtest handler: every message tgtest does not answer
// itself (it answers ping, ping_delay_disconnect, get_future_salts and
// rpc_drop_answer) comes here first. Service messages are handled as
// Telegram handles them; everything else is an API request, translated
// into the native layer first when its client speaks another.
func (s *Server) onWire(srv *tgtest.Server, req *tgtest.Request) error {
	id, err := req.Buf.PeekID()
	if err != nil {
		return tgerr.New(400, "INPUT_REQUEST_INVALID")
	}
	if s.wire.seen(req.Session, req.MsgID) {
		s.log.Warn("AUTH_KEY_DUPLICATED: a superseded session of an auth key sent again (two clients on one key)",
			zap.Int64("session", req.Session.ID))
		return s.answered(srv, req, srv.SendErr(req, tgerr.New(406, "AUTH_KEY_DUPLICATED")))
	}
	handled, err := s.service(srv, req, id)
	if !handled {
		if lerr := s.layers.request(req); lerr != nil {
			err = lerr
		} else {
			err = s.call(srv, req)
		}
	}
	s.wire.count(id, err)
	var rpcErr *tgerr.Error
	if errors.As(err, &rpcErr) {
		// Sent here rather than by tgtest, so that a failure is seen.
		return s.answered(srv, req, srv.SendErr(req, rpcErr))
	}
	return err
}

// answered passes on the outcome of sending an answer. tgtest maps each
// MTProto session to the connection it first arrived on and never
// forgets it; a client that reconnects with the same session (mtcute
// does) had every answer sent to its closed connection. When sending
// fails, the mapping is dropped: the error closes the current connection,
// the client reconnects and resends, and its new connection is mapped.
func (s *Server) answered(srv *tgtest.Server, req *tgtest.Request, err error) error {
	if err != nil {
		srv.ForceDisconnect(req.Session)
	}
	return err
}

// forgetConnections drops tgtest's session-to-connection mappings of every
// session seen, after all connections were closed (DropConnections): the
// clients' next connections are mapped afresh.
func (s *Server) forgetConnections() {
	s.wire.mu.Lock()
	ids := make([]int64, 0, len(s.wire.sessions))
	for id := range s.wire.sessions {
		ids = append(ids, id)
	}
	s.wire.mu.Unlock()
	for _, id := range ids {
		s.srv.ForceDisconnect(tgtest.Session{ID: id})
	}
}

// service answers MTProto service messages
// (https://core.telegram.org/mtproto/service_messages) and reports
// whether id was one. None of them is ever answered with an rpc_error: a
// malformed one is ignored, as Telegram ignores it.
func (s *Server) service(srv *tgtest.Server, req *tgtest.Request, id uint32) (bool, error) {
	switch id {
	case mt.MsgsAckTypeID, mt.MsgsAllInfoTypeID, mt.MsgsStateInfoTypeID,
		mt.MsgDetailedInfoTypeID, mt.MsgNewDetailedInfoTypeID,
		mt.HTTPWaitRequestTypeID, mt.BadMsgNotificationTypeID:
		// Information for the server, or HTTP long-poll parameters (no
		// HTTP transport here): never answered.
		return true, nil
	case mt.MsgsStateReqTypeID:
		var r mt.MsgsStateReq
		if r.Decode(req.Buf) != nil {
			return true, nil
		}
		return true, s.sendService(srv, req, &mt.MsgsStateInfo{ReqMsgID: req.MsgID, Info: s.wire.states(req.Session.ID, r.MsgIDs)})
	case mt.MsgResendReqTypeID, msgResendAnsReqTypeID:
		// The server keeps no sent messages: as the protocol says for
		// forgotten ones, msgs_state_info with "nothing known" for each.
		b := req.Buf
		if b.ConsumeID(id) != nil {
			return true, nil
		}
		var ids []int64
		n, err := b.VectorHeader()
		if err != nil || n < 0 || n > b.Len()/8 {
			return true, nil
		}
		for range n {
			v, _ := b.Long()
			ids = append(ids, v)
		}
		info := make([]byte, len(ids))
		for i := range info {
			info[i] = 1
		}
		return true, s.sendService(srv, req, &mt.MsgsStateInfo{ReqMsgID: req.MsgID, Info: info})
	case mt.DestroySessionRequestTypeID:
		var r mt.DestroySessionRequest
		if r.Decode(req.Buf) != nil {
			return true, nil
		}
		if !s.wire.forget(req.Session.AuthKey.ID, req.Session.ID, r.SessionID) {
			return true, s.sendService(srv, req, &mt.DestroySessionNone{SessionID: r.SessionID})
		}
		// Its connection, if still open, goes with it.
		srv.ForceDisconnect(tgtest.Session{ID: r.SessionID, AuthKey: req.Session.AuthKey})
		s.forgetLive(r.SessionID)
		return true, s.sendService(srv, req, &mt.DestroySessionOk{SessionID: r.SessionID})
	}
	return false, nil
}

// sendService sends a service answer as its own message, not inside an
// rpc_result, as Telegram does (clients match it by req_msg_id or
// session_id).
func (s *Server) sendService(srv *tgtest.Server, req *tgtest.Request, msg bin.Encoder) error {
	return s.answered(srv, req, srv.Send(req.RequestCtx, req.Session, proto.MessageServerResponse, msg))
}

// forgetLive stops pushing updates to a destroyed session.
func (s *Server) forgetLive(sessionID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.w.keys {
		for _, sess := range a.sessions {
			if sess.live != nil && sess.live.ID == sessionID {
				sess.live = nil
			}
		}
	}
}

// DuplicatedKeys returns how many messages the server refused with
// AUTH_KEY_DUPLICATED: sent on a session of an auth key after another
// session of the same key had begun (two clients on one key at once).
// Replicas of the daemon must never cause one.
func (s *Server) DuplicatedKeys() int {
	s.wire.mu.Lock()
	defer s.wire.mu.Unlock()
	return s.wire.duplicated
}
