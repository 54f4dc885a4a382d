package testserver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/crypto"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/proto"
	"github.com/gotd/td/transport"
)

// rawClient is a bare MTProto client for what gotd's client never sends
// (msgs_state_req, destroy_session, requests in other API layers, the
// pre-RSA_PAD key exchange): it encrypts whatever bytes a test gives it and
// hands back every message the server sends, containers and gzip undone.
type rawClient struct {
	t       testing.TB
	conn    transport.Conn
	key     crypto.AuthKey
	session int64
	cipher  crypto.Cipher
	ids     *proto.MessageIDGen
	seq     int32
	in      chan rawMsg
}

// rawMsg is one message from the server. For rpc_result, ReqID is the
// request's message id and Body the result.
type rawMsg struct {
	ID     int64
	TypeID uint32
	ReqID  int64
	Body   []byte
}

// rawBytes is an already encoded TL object.
type rawBytes []byte

func (r rawBytes) Encode(b *bin.Buffer) error { b.Put(r); return nil }

// dialRaw opens an in-memory connection with the given transport.
func dialRaw(t testing.TB, s *Server, p transport.Protocol) transport.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := s.mem.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var conn transport.Conn
	done := make(chan error, 1)
	go func() {
		// net.Pipe is synchronous: the header write waits for the
		// server's codec detection to read it.
		var err error
		conn, err = p.Handshake(nc)
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// newRawClient starts a session over conn with an auth key the server
// already knows (Server.Session or a key exchange).
func newRawClient(t testing.TB, conn transport.Conn, key crypto.AuthKey) *rawClient {
	t.Helper()
	var sid [8]byte
	if _, err := rand.Read(sid[:]); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{
		t: t, conn: conn, key: key, cipher: crypto.NewClientCipher(rand.Reader),
		session: int64(binary.LittleEndian.Uint64(sid[:])),
		ids:     proto.NewMessageIDGen(time.Now),
		in:      make(chan rawMsg, 256),
	}
	go c.readLoop()
	return c
}

// rawSession is a raw client for a provisioned account's new session.
func rawSession(t testing.TB, s *Server, phone string) *rawClient {
	t.Helper()
	data, err := s.Session(phone)
	if err != nil {
		t.Fatal(err)
	}
	var k crypto.Key
	copy(k[:], data.AuthKey)
	return newRawClient(t, dialRaw(t, s, transport.Intermediate), k.WithID())
}

func (c *rawClient) readLoop() {
	defer close(c.in)
	for {
		var b bin.Buffer
		if err := c.conn.Recv(context.Background(), &b); err != nil {
			return
		}
		data, err := c.cipher.DecryptFromBuffer(c.key, &b)
		if err != nil {
			return
		}
		c.unpack(data.MessageID, data.Data())
	}
}

func (c *rawClient) unpack(id int64, body []byte) {
	b := &bin.Buffer{Buf: body}
	typeID, err := b.PeekID()
	if err != nil {
		return
	}
	switch typeID {
	case proto.MessageContainerTypeID:
		var cont proto.MessageContainer
		if cont.Decode(b) == nil {
			for _, m := range cont.Messages {
				c.unpack(m.ID, m.Body)
			}
		}
		return
	case proto.GZIPTypeID:
		var gz proto.GZIP
		if gz.Decode(b) == nil {
			c.unpack(id, gz.Data)
		}
		return
	case proto.ResultTypeID:
		var r proto.Result
		if r.Decode(b) == nil {
			rb := &bin.Buffer{Buf: r.Result}
			if rid, err := rb.PeekID(); err == nil && rid == proto.GZIPTypeID {
				var gz proto.GZIP
				if gz.Decode(rb) == nil {
					r.Result = gz.Data
				}
			}
			rt, _ := (&bin.Buffer{Buf: r.Result}).PeekID()
			c.in <- rawMsg{ID: id, TypeID: rt, ReqID: r.RequestMessageID, Body: r.Result}
		}
		return
	}
	c.in <- rawMsg{ID: id, TypeID: typeID, Body: body}
}

// send encrypts one message and returns its id.
func (c *rawClient) send(msg bin.Encoder) int64 {
	c.t.Helper()
	var body bin.Buffer
	if err := msg.Encode(&body); err != nil {
		c.t.Fatal(err)
	}
	id := c.ids.New(proto.MessageFromClient)
	c.seq += 2
	data := crypto.EncryptedMessageData{
		SessionID: c.session, MessageID: id, SeqNo: c.seq + 1,
		MessageDataLen: int32(body.Len()), MessageDataWithPadding: body.Buf,
	}
	var out bin.Buffer
	if err := c.cipher.Encrypt(c.key, data, &out); err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Send(ctx, &out); err != nil {
		c.t.Fatal(err)
	}
	return id
}

// next returns the next message matching keep, skipping others; the
// deadline only guards against a server that never answers.
func (c *rawClient) next(what string, keep func(rawMsg) bool) rawMsg {
	c.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				c.t.Fatalf("connection closed waiting for %s", what)
			}
			if keep(m) {
				return m
			}
		case <-deadline:
			c.t.Fatalf("no %s from the server", what)
		}
	}
}

// result waits for the rpc_result of request id.
func (c *rawClient) result(id int64) rawMsg {
	c.t.Helper()
	return c.next("rpc_result", func(m rawMsg) bool { return m.ReqID == id })
}

// call sends a request and returns its result body.
func (c *rawClient) call(req bin.Encoder) rawMsg {
	c.t.Helper()
	return c.result(c.send(req))
}

// rpcError decodes an rpc_error result, or returns nil.
func rpcError(m rawMsg) *mt.RPCError {
	if m.TypeID != mt.RPCErrorTypeID {
		return nil
	}
	var e mt.RPCError
	if e.Decode(&bin.Buffer{Buf: m.Body}) != nil {
		return nil
	}
	return &e
}
