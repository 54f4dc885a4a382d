package signal

import (
	"errors"
	"fmt"
	"testing"

	gferrors "github.com/go-faster/errors"
	"github.com/gotd/td/tgerr"
)

func BenchmarkClassify(b *testing.B) {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"nil", nil},
		{"flood_wait", tgerr.New(420, "FLOOD_WAIT_30")},
		{"wrapped", gferrors.Wrap(fmt.Errorf("send: %w", tgerr.New(400, "PEER_FLOOD")), "rpc")},
		{"other_rpc", tgerr.New(400, "MESSAGE_EMPTY")},
		{"chat_send_prefix", tgerr.New(403, "CHAT_SEND_MEDIA_FORBIDDEN")},
		{"not_rpc", errors.New("connection reset")},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Classify(c.err)
			}
		})
	}
}
