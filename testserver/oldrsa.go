package testserver

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/crypto"
	"github.com/gotd/td/mt"
)

// Telegram still accepts req_DH_params whose p_q_inner_data is encrypted
// the way clients did before RSA_PAD (Telethon 1.25 among them): RSA of
// SHA1(data) + data + random padding, 255 bytes. gotd's server side of the
// exchange (which tgtest runs and which cannot be extended) accepts only
// RSA_PAD. So each connection's unencrypted frames are read on their way
// in: a req_DH_params in the old scheme is decrypted and re-encrypted with
// RSA_PAD for the server's own key, and the exchange proceeds unchanged.
// Once the first encrypted frame passes, bytes flow untouched.
//
// Plain MTProto transports are read (abridged, intermediate, padded
// intermediate, full); anything else (obfuscated, HTTP) passes untouched.

// maxExchangeFrame bounds the frames read while a connection is still
// unencrypted; the exchange's largest message is under 1 KB.
const maxExchangeFrame = 64 << 10

// oldRSAListener wraps a listener's connections (see above).
type oldRSAListener struct {
	net.Listener
	key *rsa.PrivateKey
}

func (l oldRSAListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &oldRSAConn{Conn: c, r: bufio.NewReader(c), key: l.key}, nil
}

type transportKind uint8

const (
	kindUnknown transportKind = iota
	kindAbridged
	kindIntermediate
	kindPadded
	kindFull
	kindOther // passthrough
)

// oldRSAConn reads a connection's frames until the first encrypted one.
type oldRSAConn struct {
	net.Conn
	r       *bufio.Reader
	key     *rsa.PrivateKey
	kind    transportKind
	pending []byte // bytes read and (maybe) rewritten, not yet returned
	done    bool   // passthrough from here on
}

func (c *oldRSAConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.done {
			if c.r.Buffered() == 0 {
				return c.Conn.Read(p)
			}
			return c.r.Read(p)
		}
		c.next()
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// next reads the transport header (first call) or one frame into pending.
// Whatever cannot be read as a frame (a short read, a length out of
// bounds) is handed over as it came, and the codec judges it.
func (c *oldRSAConn) next() {
	if c.kind == kindUnknown {
		c.detect()
		return
	}
	var head, payload, tail []byte
	var ok bool
	switch c.kind {
	case kindAbridged:
		if head, ok = c.read(nil, 1); !ok {
			return
		}
		n := int(head[0]&0x7f) * 4
		if head[0]&0x7f == 0x7f {
			if head, ok = c.read(head, 3); !ok {
				return
			}
			n = int(uint32(head[1])|uint32(head[2])<<8|uint32(head[3])<<16) * 4
		}
		if payload, ok = c.frame(head, n); !ok {
			return
		}
	case kindIntermediate, kindPadded:
		if head, ok = c.read(nil, 4); !ok {
			return
		}
		if payload, ok = c.frame(head, int(binary.LittleEndian.Uint32(head)&0x7fffffff)); !ok {
			return
		}
	case kindFull:
		if head, ok = c.read(nil, 8); !ok {
			return
		}
		n := int(binary.LittleEndian.Uint32(head)) - 12
		if n < 0 {
			c.pending, c.done = head, true
			return
		}
		if payload, ok = c.frame(head, n+4); !ok {
			return
		}
		payload, tail = payload[:n], payload[n:]
	}
	if len(payload) < 8 || !bytes.Equal(payload[:8], make([]byte, 8)) {
		// An encrypted frame: the exchange is over.
		c.pending, c.done = concat(head, payload, tail), true
		return
	}
	if out, ok := c.rewrite(payload); ok {
		head, payload, tail = c.reframe(head, out)
	}
	c.pending = concat(head, payload, tail)
}

// frame reads the n bytes after a frame's header; a length out of
// bounds hands the header over untouched.
func (c *oldRSAConn) frame(head []byte, n int) ([]byte, bool) {
	if n <= 0 || n > maxExchangeFrame {
		c.pending, c.done = head, true
		return nil, false
	}
	payload, ok := c.read(nil, n)
	if !ok {
		c.pending = concat(head, c.pending)
	}
	return payload, ok
}

// read appends n bytes to have; on a short read it hands everything read
// over and stops reading frames.
func (c *oldRSAConn) read(have []byte, n int) ([]byte, bool) {
	b := make([]byte, n)
	got, err := io.ReadFull(c.r, b)
	if err != nil {
		c.pending, c.done = concat(have, b[:got]), true
		return nil, false
	}
	return append(have, b...), true
}

// detect reads the transport's opening bytes as gotd's server does.
func (c *oldRSAConn) detect() {
	h, err := c.r.Peek(1)
	if err != nil {
		c.done = true // the codec reads the same error
		return
	}
	if h[0] == 0xef {
		c.kind, c.pending = kindAbridged, c.consume(1)
		return
	}
	if h, err = c.r.Peek(4); err != nil {
		c.done = true
		return
	}
	switch binary.LittleEndian.Uint32(h) {
	case 0xeeeeeeee:
		c.kind, c.pending = kindIntermediate, c.consume(4)
		return
	case 0xdddddddd:
		c.kind, c.pending = kindPadded, c.consume(4)
		return
	}
	// The full transport has no header: these are a frame's length, and
	// its sequence number, 0 for the first frame, follows. Anything else
	// (obfuscated2's random header, HTTP) is not ours to read.
	if h, err = c.r.Peek(8); err != nil || binary.LittleEndian.Uint32(h[4:]) != 0 {
		c.done = true
		return
	}
	c.kind = kindFull
}

func (c *oldRSAConn) consume(n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(c.r, b) // already peeked
	return b
}

// rewrite returns the unencrypted message with an old-scheme
// req_DH_params re-encrypted with RSA_PAD, or false to leave it as is.
func (c *oldRSAConn) rewrite(msg []byte) ([]byte, bool) {
	// auth_key_id:long msg_id:long message_data_length:int message_data
	if len(msg) < 20 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint32(msg[16:20]))
	if n < 0 || n > len(msg)-20 {
		return nil, false
	}
	body := msg[20 : 20+n]
	b := &bin.Buffer{Buf: body}
	if id, err := b.PeekID(); err != nil || id != mt.ReqDHParamsRequestTypeID {
		return nil, false
	}
	var req mt.ReqDHParamsRequest
	if req.Decode(b) != nil || b.Len() != 0 || req.PublicKeyFingerprint != crypto.RSAFingerprint(&c.key.PublicKey) {
		return nil, false
	}
	if _, err := crypto.DecodeRSAPad(req.EncryptedData, c.key); err == nil {
		return nil, false // RSA_PAD already
	}
	data, err := crypto.RSADecryptHashed(req.EncryptedData, c.key)
	if err != nil {
		return nil, false // neither scheme: the exchange refuses it
	}
	if req.EncryptedData, err = crypto.RSAPad(data, &c.key.PublicKey, rand.Reader); err != nil {
		return nil, false
	}
	var out bin.Buffer
	if err := req.Encode(&out); err != nil {
		return nil, false
	}
	var m bytes.Buffer
	m.Write(msg[:16])
	_ = binary.Write(&m, binary.LittleEndian, uint32(out.Len()))
	m.Write(out.Buf)
	m.Write(msg[20+n:]) // padded intermediate's padding
	return m.Bytes(), true
}

// reframe gives a rewritten payload its transport header (and the full
// transport's checksum).
func (c *oldRSAConn) reframe(head, payload []byte) (newHead, newPayload, tail []byte) {
	switch c.kind {
	case kindAbridged:
		q := head[0] & 0x80 // quick ack request
		if n := len(payload) / 4; n < 0x7f {
			head = []byte{q | byte(n)}
		} else {
			head = []byte{q | 0x7f, byte(n), byte(n >> 8), byte(n >> 16)}
		}
		return head, payload, nil
	case kindIntermediate, kindPadded:
		q := binary.LittleEndian.Uint32(head) & 0x80000000
		h := binary.LittleEndian.AppendUint32(nil, q|uint32(len(payload)))
		return h, payload, nil
	default: // full
		h := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)+12))
		h = append(h, head[4:8]...)
		sum := crc32.ChecksumIEEE(concat(h, payload))
		return h, payload, binary.LittleEndian.AppendUint32(nil, sum)
	}
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
