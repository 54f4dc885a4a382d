package monitor

import (
	"context"
	"time"

	"github.com/gotd/td/clock"

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
	// Durations are offsets from a base time. With the system clock,
	// time.Since reads only the monotonic clock, which costs half a
	// time.Now; clock reads dominate the success path on some machines.
	// The wall clock is read only when an event is recorded.
	base := clk.Now()
	offset := func() time.Duration { return clk.Now().Sub(base) }
	if clk == clock.System {
		offset = func() time.Duration { return time.Since(base) }
	}
	return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
		mm := a.methodMetrics(input)
		method := mm.name
		gen := a.gen.Load()
		begin := offset()
		err := next.Invoke(ctx, input, output)
		mm.requests.Inc()
		mm.duration.Observe((offset() - begin).Seconds())
		if err != nil {
			a.observeError(method, clk.Now(), err)
		} else if a.needsSuccess.Load() {
			a.observeSuccess(method, gen, clk.Now())
		}
		return err
	}
}

type typeNamer interface{ TypeName() string }

type typeIDer interface{ TypeID() uint32 }

// UnwrapQuery returns the query inside the invoke wrappers a client may
// add (invokeWithoutUpdates, invokeWithTakeout, invokeAfterMsg,
// invokeWithMessagesRange, invokeWithLayer, initConnection), however
// deeply they are nested, so that a call is named, budgeted and counted
// by what it does. A wrapper without a query is returned as it is. It is
// the one unwrapping rule: the monitor and the guard both use it, and it
// does not allocate.
func UnwrapQuery(input bin.Encoder) bin.Encoder {
	for {
		var q bin.Object
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
		case *tg.InitConnectionRequest:
			q = v.Query
		default:
			return input
		}
		if q == nil {
			return input
		}
		input = q
	}
}

// MethodName returns the TL name of a request ("messages.sendMessage"),
// looking inside the invoke wrappers a client may add (UnwrapQuery), or
// "unknown".
func MethodName(input bin.Encoder) string {
	if n, ok := UnwrapQuery(input).(typeNamer); ok {
		return n.TypeName()
	}
	return unknownMethod
}

// methodID returns the TL type id of the (unwrapped) request, or 0.
func methodID(input bin.Encoder) uint32 {
	if t, ok := UnwrapQuery(input).(typeIDer); ok {
		return t.TypeID()
	}
	return 0
}
