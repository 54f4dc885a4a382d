package monitor

import (
	"context"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
)

// Middleware returns the telegram.Middleware that observes every RPC of
// the account: method, outcome, duration and classified signal. It never
// changes a call's result and never waits on anything but the account's
// own short critical section, taken only when a call fails (or while a
// success would change the state). A successful call costs a few atomic
// operations and no allocation.
func (a *Account) Middleware() telegram.Middleware { return middleware{a} }

type middleware struct{ a *Account }

func (mw middleware) Handle(next tg.Invoker) telegram.InvokeFunc {
	a := mw.a
	clk := a.mon.clock
	return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
		method := MethodName(input)
		mm := a.methodMetrics(method)
		ticket := a.calls.Add(1)
		start := clk.Now()
		err := next.Invoke(ctx, input, output)
		end := clk.Now()
		mm.requests.Inc()
		mm.duration.Observe(end.Sub(start).Seconds())
		if err != nil {
			a.observeError(method, ticket, end, err)
		} else if a.needsSuccess.Load() {
			a.observeSuccess(method, ticket, end)
		}
		return err
	}
}

type typeNamer interface{ TypeName() string }

// MethodName returns the TL name of a request ("messages.sendMessage"),
// looking inside the invoke wrappers a client may add, or "unknown".
func MethodName(input bin.Encoder) string {
	var q any = input
	switch v := input.(type) {
	case *tg.InvokeWithoutUpdatesRequest:
		q = v.Query
	case *tg.InvokeWithTakeoutRequest:
		q = v.Query
	case *tg.InvokeAfterMsgRequest:
		q = v.Query
	case *tg.InvokeWithMessagesRangeRequest:
		q = v.Query
	case *tg.InvokeWithLayerRequest:
		q = v.Query
	}
	if n, ok := q.(typeNamer); ok {
		return n.TypeName()
	}
	return "unknown"
}
