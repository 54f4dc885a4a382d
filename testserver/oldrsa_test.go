package testserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/crypto"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/proto"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/transport"
)

func unencrypted(t testing.TB, conn transport.Conn, ids *proto.MessageIDGen, msg bin.Encoder) {
	t.Helper()
	var body bin.Buffer
	if err := msg.Encode(&body); err != nil {
		t.Fatal(err)
	}
	var b bin.Buffer
	if err := (proto.UnencryptedMessage{MessageID: ids.New(proto.MessageFromClient), MessageData: body.Buf}).Encode(&b); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Send(ctx, &b); err != nil {
		t.Fatal(err)
	}
}

func readUnencrypted(t testing.TB, conn transport.Conn) *bin.Buffer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b bin.Buffer
	if err := conn.Recv(ctx, &b); err != nil {
		t.Fatalf("server closed the exchange: %v", err)
	}
	if b.Len() == 4 {
		code, _ := b.Int32()
		t.Fatalf("server answered the exchange with protocol error %d", code)
	}
	var m proto.UnencryptedMessage
	if err := m.Decode(&b); err != nil {
		t.Fatal(err)
	}
	return &bin.Buffer{Buf: m.MessageData}
}

// exchangeOldRSA runs the whole exchange with the pre-RSA_PAD encryption
// of p_q_inner_data and returns the auth key.
func exchangeOldRSA(t testing.TB, s *Server, conn transport.Conn) crypto.AuthKey {
	t.Helper()
	ids := proto.NewMessageIDGen(time.Now)
	nonce, err := crypto.RandInt128(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	unencrypted(t, conn, ids, &mt.ReqPqMultiRequest{Nonce: nonce})
	var res mt.ResPQ
	if err := res.Decode(readUnencrypted(t, conn)); err != nil {
		t.Fatal(err)
	}
	p, q, err := crypto.DecomposePQ(new(big.Int).SetBytes(res.Pq), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	newNonce, err := crypto.RandInt256(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var inner bin.Buffer
	if err := (&mt.PQInnerData{Pq: res.Pq, P: p.Bytes(), Q: q.Bytes(), Nonce: nonce,
		ServerNonce: res.ServerNonce, NewNonce: newNonce}).Encode(&inner); err != nil {
		t.Fatal(err)
	}
	encrypted, err := crypto.RSAEncryptHashed(inner.Buf, s.PublicKey(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	unencrypted(t, conn, ids, &mt.ReqDHParamsRequest{Nonce: nonce, ServerNonce: res.ServerNonce, P: p.Bytes(), Q: q.Bytes(),
		PublicKeyFingerprint: crypto.RSAFingerprint(s.PublicKey()), EncryptedData: encrypted})
	dh, err := mt.DecodeServerDHParams(readUnencrypted(t, conn))
	if err != nil {
		t.Fatal(err)
	}
	ok, isOK := dh.(*mt.ServerDHParamsOk)
	if !isOK {
		t.Fatalf("req_DH_params answered %T", dh)
	}
	key, iv := crypto.TempAESKeys(newNonce.BigInt(), res.ServerNonce.BigInt())
	plain, err := crypto.DecryptExchangeAnswer(ok.EncryptedAnswer, key, iv)
	if err != nil {
		t.Fatal(err)
	}
	var sdh mt.ServerDHInnerData
	if err := sdh.Decode(&bin.Buffer{Buf: plain}); err != nil {
		t.Fatal(err)
	}
	prime := new(big.Int).SetBytes(sdh.DhPrime)
	b, err := rand.Int(rand.Reader, prime)
	if err != nil {
		t.Fatal(err)
	}
	gB := new(big.Int).Exp(big.NewInt(int64(sdh.G)), b, prime)
	var cdh bin.Buffer
	if err := (&mt.ClientDHInnerData{Nonce: nonce, ServerNonce: res.ServerNonce, GB: gB.Bytes()}).Encode(&cdh); err != nil {
		t.Fatal(err)
	}
	enc, err := crypto.EncryptExchangeAnswer(rand.Reader, cdh.Buf, key, iv)
	if err != nil {
		t.Fatal(err)
	}
	unencrypted(t, conn, ids, &mt.SetClientDHParamsRequest{Nonce: nonce, ServerNonce: res.ServerNonce, EncryptedData: enc})
	gen, err := mt.DecodeSetClientDHParamsAnswer(readUnencrypted(t, conn))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := gen.(*mt.DhGenOk); !ok {
		t.Fatalf("set_client_DH_params answered %T", gen)
	}
	var k crypto.Key
	if !crypto.FillBytes(new(big.Int).Exp(new(big.Int).SetBytes(sdh.GA), b, prime), k[:]) {
		t.Fatal("auth key too big")
	}
	return k.WithID()
}

// TestOldRSAKeyExchangeIsAccepted: clients that encrypt req_DH_params the
// pre-RSA_PAD way (Telethon 1.25: RSA of SHA1(data)+data+padding, 255
// bytes) complete the key exchange and use the key, over each plain
// transport, as Telegram still allows; RSA_PAD clients (gotd) are covered
// by every test that signs up with a fresh key.
func TestOldRSAKeyExchangeIsAccepted(t *testing.T) {
	s := newServer(t, Options{Users: 10})
	for name, p := range map[string]transport.Protocol{
		"full": transport.Full, "intermediate": transport.Intermediate,
		"abridged": transport.Abridged, "padded": transport.PaddedIntermediate,
	} {
		t.Run(name, func(t *testing.T) {
			conn := dialRaw(t, s, p)
			key := exchangeOldRSA(t, s, conn)
			c := newRawClient(t, conn, key)
			if m := c.call(&tg.HelpGetNearestDCRequest{}); m.TypeID != tg.NearestDCTypeID {
				t.Fatalf("with the new key: %#x %v", m.TypeID, rpcError(m))
			}
		})
	}
}

// TestOldRSAKeyExchangeOverTCP: the same over a real TCP connection with
// the full transport, Telethon's default.
func TestOldRSAKeyExchangeOverTCP(t *testing.T) {
	s := newServer(t, Options{Users: 10})
	addr, err := s.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", addr.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := transport.Full.Handshake(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := newRawClient(t, conn, exchangeOldRSA(t, s, conn))
	if m := c.call(&tg.HelpGetConfigRequest{}); m.TypeID != tg.ConfigTypeID {
		t.Fatalf("with the new key: %#x %v", m.TypeID, rpcError(m))
	}
}

// stubConn is a net.Conn reading from bytes.
type stubConn struct {
	net.Conn
	r io.Reader
}

func (c stubConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// FuzzOldRSAConn: whatever a client sends, the frame reader hands the
// codec exactly those bytes unless they hold an old-scheme req_DH_params
// for the server's key (which random input never does), and never panics.
func FuzzOldRSAConn(f *testing.F) {
	key := testKey(f)
	for _, seed := range [][]byte{
		{0xef, 0x02, 0, 0, 0, 0, 0, 0, 0, 0},
		{0xee, 0xee, 0xee, 0xee, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{0xdd, 0xdd, 0xdd, 0xdd, 4, 0, 0, 0, 1, 2, 3, 4},
		{24, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0},
		[]byte("POST /api HTTP/1.1\r\n"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &oldRSAConn{Conn: stubConn{r: bytes.NewReader(in)}, key: key}
		c.r = bufio.NewReader(c.Conn)
		out, err := io.ReadAll(readerFunc(c.Read))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("%x came out as %x", in, out)
		}
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
