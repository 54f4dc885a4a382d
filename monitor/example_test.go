package monitor_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

// scripted answers each method with the next error of its script (nil:
// success), standing in for Telegram in this example.
type scripted map[string][]error

func (s scripted) Invoke(_ context.Context, in bin.Encoder, _ bin.Decoder) error {
	m := monitor.MethodName(in)
	if len(s[m]) == 0 {
		return nil
	}
	err := s[m][0]
	s[m] = s[m][1:]
	return err
}

// An account's day: a resolveUsername storm at start-up gets flood waits,
// cold DMs end in PEER_FLOOD, and a day later the limit has run out.
// Time is virtual: the whole day runs instantly.
func Example() {
	clk := vclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	mon, _ := monitor.New(monitor.Options{Clock: clk, Registerer: reg})
	mon.Subscribe(func(e monitor.Event) {
		line := fmt.Sprintf("%s %-9s -> %-9s %s", e.Time.Format("Jan 2 15:04:05"), e.From, e.State, e.Reason)
		fmt.Println(strings.TrimSpace(line))
	})
	acct, _ := mon.Account("crm-bot-1")

	telegram := scripted{
		"contacts.resolveUsername": {nil, nil, tgerr.New(420, "FLOOD_WAIT_14"), tgerr.New(420, "FLOOD_WAIT_38"), tgerr.New(420, "FLOOD_WAIT_56785")},
		"messages.sendMessage":     {nil, nil, nil, nil, tgerr.New(400, "PEER_FLOOD")},
	}
	call := acct.Middleware().Handle(telegram)
	ctx := context.Background()

	for i := 0; i < 5; i++ {
		_ = call(ctx, &tg.ContactsResolveUsernameRequest{Username: "someone"}, nil)
		clk.Advance(time.Minute)
	}
	for i := 0; i < 5; i++ {
		_ = call(ctx, &tg.MessagesSendMessageRequest{Peer: &tg.InputPeerSelf{}, Message: "hello"}, nil)
		clk.Advance(30 * time.Second)
	}
	s := acct.Snapshot()
	fmt.Printf("now: %s, risk %.1f, limited until %s (assumed: %v)\n",
		s.State, s.Risk, s.Limit.Until.Format("Jan 2 15:04"), !s.Limit.UntilKnown)

	clk.Advance(36 * time.Hour)
	s = acct.Snapshot()
	fmt.Printf("36 h later: %s, risk %.1f\n", s.State, s.Risk)

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "tgsafety_signals_total" {
			for _, m := range mf.GetMetric() {
				if v := m.GetCounter().GetValue(); v > 0 {
					fmt.Printf("tgsafety_signals_total{kind=%q} %v\n", labelValue(m.GetLabel(), "kind"), v)
				}
			}
		}
	}
	// Output:
	// Mar 1 09:00:00 unknown   -> ok
	// Mar 1 09:02:00 ok        -> throttled FLOOD_WAIT of 14s on contacts.resolveUsername
	// Mar 1 09:02:14 throttled -> ok
	// Mar 1 09:03:00 ok        -> throttled FLOOD_WAIT of 38s on contacts.resolveUsername
	// Mar 1 09:03:38 throttled -> ok
	// Mar 1 09:04:00 ok        -> throttled FLOOD_WAIT of 15h46m25s on contacts.resolveUsername
	// Mar 1 09:07:00 throttled -> limited   PEER_FLOOD on messages.sendMessage
	// now: limited, risk 67.4, limited until Mar 2 09:07 (assumed: true)
	// Mar 2 09:07:00 limited   -> ok
	// 36 h later: ok, risk 43.5
	// tgsafety_signals_total{kind="flood_wait"} 3
	// tgsafety_signals_total{kind="peer_flood"} 1
}

func labelValue(pairs []*dto.LabelPair, name string) string {
	for _, p := range pairs {
		if p.GetName() == name {
			return p.GetValue()
		}
	}
	return ""
}
