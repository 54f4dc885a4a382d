package testserver

import (
	"context"
	"fmt"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/testserver/internal/tlschema"
)

// rawResult keeps an answer's bytes for the benchmark to decode.
type rawResult struct{ b []byte }

func (r *rawResult) Decode(b *bin.Buffer) error {
	r.b = append(r.b[:0], b.Buf...)
	b.Skip(b.Len())
	return nil
}

// BenchmarkSendMessageLayers compares messages.sendMessage from a client
// of an older layer (its request encoded, and its answer decoded, with
// that layer's schema; the server translates both ways) with the native
// layer-228 path, in one run, through the full simulation. The client is
// a real gotd client in both cases. gotd wraps every call in
// invokeWithLayer(228), so the older layer's calls carry their own
// invokeWithLayer inside it (Telethon and GramJS send theirs once, on
// connect); the wrapper costs 12 bytes (docs/performance.md).
func BenchmarkSendMessageLayers(b *testing.B) {
	set, err := tlschema.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	for _, layer := range []int{NativeLayer, 198, 144} {
		b.Run(fmt.Sprintf("layer=%d", layer), func(b *testing.B) {
			sc, err := set.Schema(layer)
			if err != nil {
				b.Fatal(err)
			}
			s := newServer(b, Options{Profile: benchProfile(), Users: 10})
			phone := fmt.Sprintf("99966210%d", layer)
			opts := provisioned(b, s, AccountSpec{Phone: phone, Age: adult, MutualContacts: 1})
			run(b, opts, func(ctx context.Context, c *telegram.Client) error {
				api := c.API()
				var peer *tg.User
				for _, n := range s.Usernames(10) {
					if u := resolve(ctx, b, api, n); u.MutualContact {
						peer = u
					}
				}
				if peer == nil {
					b.Fatal("no mutual contact")
				}
				if layer == NativeLayer {
					req := &tg.MessagesSendMessageRequest{Peer: &tg.InputPeerUser{UserID: peer.ID, AccessHash: peer.AccessHash}, Message: "hi"}
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; b.Loop(); i++ {
						req.RandomID = int64(i)
						if _, err := api.MessagesSendMessage(ctx, req); err != nil {
							b.Fatal(err)
						}
					}
					return nil
				}
				mk := func(name string, f map[string]any) *tlschema.Object {
					o, err := sc.New(name, f)
					if err != nil {
						b.Fatal(err)
					}
					return o
				}
				invoke := func(o *tlschema.Object, out *rawResult) {
					var body bin.Buffer
					if err := sc.EncodeCall(&body, o); err != nil {
						b.Fatal(err)
					}
					if err := c.Invoke(ctx, rawBytes(body.Buf), out); err != nil {
						b.Fatal(err)
					}
				}
				var out rawResult
				send := sc.FunctionNamed("messages.sendMessage")
				peerObj := mk("inputPeerUser", map[string]any{"user_id": peer.ID, "access_hash": peer.AccessHash})
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					invoke(mk("invokeWithLayer", map[string]any{"layer": int32(layer), "query": mk("messages.sendMessage",
						map[string]any{"peer": peerObj, "message": []byte("hi"), "random_id": int64(i)})}), &out)
					v, err := sc.DecodeResult(out.b, send)
					if o, ok := v.(*tlschema.Object); err != nil || !ok || o.C.Name != "updateShortSentMessage" {
						b.Fatalf("layer %d answer: %v %v", layer, v, err)
					}
				}
				return nil
			})
		})
	}
}
