package scenarios

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
)

// coldDMs tries to send n DMs to strangers spread evenly over 24 h of
// virtual time (about 8 an hour) and counts the outcomes.
type outcome struct {
	sent, peerFlood, blockedLocally, floodWaits int
	firstPeerFlood                              int
	// bannedAt is the attempt that found the account banned (0: never).
	bannedAt int
}

func coldDMs(t *testing.T, w *simWorld, opts telegram.Options, n int) outcome {
	var o outcome
	names := w.srv.Usernames(n)
	step := 24 * time.Hour / time.Duration(n)
	run(t, opts, func(ctx context.Context, api *tg.Client) {
		for i, name := range names {
			u, err := resolve(ctx, api, name)
			if err == nil {
				err = dm(ctx, api, u, i)
			}
			var blocked *guard.BlockedError
			switch {
			case err == nil:
				o.sent++
			case errors.As(err, &blocked):
				o.blockedLocally++
			case tgerr.Is(err, "PEER_FLOOD"):
				if o.peerFlood == 0 {
					o.firstPeerFlood = i + 1
				}
				o.peerFlood++
			case tgerr.Is(err, "FLOOD_WAIT"):
				o.floodWaits++
			case tgerr.Is(err, "USER_DEACTIVATED_BAN"):
				o.bannedAt = i + 1
				return
			default:
				t.Fatalf("DM %d: %v", i, err)
			}
			w.srv.Advance(step)
		}
	})
	return o
}

// The decisive test: the same 200 cold DMs over a day, the same limits
// profile. Without the guard Telegram (the test server) answers
// PEER_FLOOD and limits the account; with the guard in enforce mode the
// account never reaches PEER_FLOOD: the calls that would have crossed a
// budget are refused locally instead.
func TestGuardPreventsPeerFlood(t *testing.T) {
	t.Run("without guard", func(t *testing.T) {
		w := newSim(t)
		acct, opts := w.account(t, "naive", "9996630001")
		o := coldDMs(t, w, opts, 200)
		// The default profile allows 40 cold DMs a day (simulated spam
		// reports may limit the account earlier); a client that keeps
		// going after PEER_FLOOD climbs the restriction ladder (three
		// refused attempts per step) to a ban.
		if o.firstPeerFlood == 0 || o.firstPeerFlood > 41 || o.bannedAt == 0 {
			t.Fatalf("without the guard: %+v, want PEER_FLOOD by DM 41 and then a ban", o)
		}
		if s := acct.Snapshot(); s.State != monitor.Banned {
			t.Fatalf("monitor state %s, want banned", s.State)
		}
		t.Logf("without guard: %+v", o)
	})
	t.Run("with guard", func(t *testing.T) {
		w := newSim(t)
		acct, opts := w.account(t, "guarded", "9996630002")
		g, err := guard.New(acct, guard.Options{Profile: w.srv.Profile(), Created: w.srv.Clock().Now().Add(-adult), Registerer: w.reg})
		if err != nil {
			t.Fatal(err)
		}
		opts.Middlewares = []telegram.Middleware{g.Middleware(), acct.Middleware()}
		o := coldDMs(t, w, opts, 200)
		if o.peerFlood != 0 || o.floodWaits != 0 {
			t.Fatalf("Telegram punished the guarded account: %+v", o)
		}
		// 80% of the daily 40 go out; the rest are refused locally.
		if o.sent != 32 || o.blockedLocally != 168 || o.bannedAt != 0 {
			t.Fatalf("with the guard: %+v, want 32 sent and 168 refused locally", o)
		}
		if st, _ := w.srv.Status("9996630002"); st.Limited || st.Restrictions != 0 {
			t.Fatalf("server limited the guarded account: %+v", st)
		}
		if s := acct.Snapshot(); s.State == monitor.Limited {
			t.Fatalf("monitor says limited: %s", s.Reason)
		}
		t.Logf("with guard: %+v", o)
	})
}
