package audit

import (
	"fmt"
	"slices"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/testserver"
)

// faultState is one fault of the plan during a run.
type faultState struct {
	f    *Fault
	acct int

	armed   bool
	armedAt time.Time
	// matched counts the calls matching f.On since arming.
	matched int
	timer   *time.Timer

	fired   bool
	firedAt time.Time
	// firedSeq is the call it fired on; minSeq the first call that can
	// meet it (the calls before were already being handled).
	firedSeq, minSeq uint64
	firedMethod      string
	fireErr          string

	delivered     bool
	deliveredAt   time.Time
	deliveredCall call
}

// executor runs a plan on a server: it arms faults at their time or
// when the fault they follow was delivered, fires them (through the
// control API) on the call that triggers them, and notes when the client
// met each. Its state is guarded by the recorder's lock.
type executor struct {
	r       *recorder
	srv     *testserver.Server
	faults  []*faultState
	byName  map[string]*faultState
	stopped bool
	// awaiting counts the faults fired and not yet met, armedCalls the
	// faults armed and not yet fired: only while one is does a call need
	// a look.
	awaiting, armedCalls int
}

func newExecutor(r *recorder, srv *testserver.Server, plan *Plan, accounts []AccountSpec) *executor {
	e := &executor{r: r, srv: srv, byName: map[string]*faultState{}}
	for _, f := range plan.Faults {
		fs := &faultState{f: f, acct: slices.IndexFunc(accounts, func(a AccountSpec) bool { return a.Name == f.Account })}
		e.faults = append(e.faults, fs)
		e.byName[f.Name] = fs
	}
	return e
}

// start arms the faults that wait for nothing, and schedules those with
// a time. The recorder's start time is set.
func (e *executor) start() {
	var now []*faultState
	e.r.mu.Lock()
	for _, fs := range e.faults {
		if fs.f.After != "" {
			continue
		}
		if fs.f.At > 0 {
			e.schedule(fs, fs.f.At)
			continue
		}
		if e.armLocked(fs) {
			now = append(now, fs)
		}
	}
	e.r.mu.Unlock()
	for _, fs := range now {
		e.fire(fs, nil)
	}
}

// schedule arms fs after d (real time). r.mu is held.
func (e *executor) schedule(fs *faultState, d time.Duration) {
	fs.timer = time.AfterFunc(d, func() {
		e.r.mu.Lock()
		fire := !e.stopped && e.armLocked(fs)
		e.r.mu.Unlock()
		if fire {
			e.fire(fs, nil)
		}
	})
}

// armLocked arms fs and reports whether it fires now: an action on the
// account (not on a call) without an On trigger. r.mu is held.
func (e *executor) armLocked(fs *faultState) bool {
	if fs.armed || e.stopped {
		return false
	}
	fs.armed, fs.armedAt = true, time.Now()
	e.armedCalls++
	if fs.wantsCold() {
		e.r.coldWanted.Add(1)
	}
	if fs.f.On == nil && fs.f.Action != ActError && fs.f.Action != ActDrop {
		e.markFiredLocked(fs, nil)
		return true
	}
	return false
}

func (e *executor) markFiredLocked(fs *faultState, c *call) {
	if fs.wantsCold() {
		e.r.coldWanted.Add(-1)
	}
	fs.fired, fs.firedAt = true, time.Now()
	e.awaiting++
	e.armedCalls--
	fs.minSeq = e.r.lastSeq + 1
	if c != nil {
		fs.firedSeq, fs.minSeq, fs.firedMethod = c.seq, c.seq, c.method
	}
}

// onCallLocked counts the call against the armed faults of its account
// and returns those it fires. r.mu is held.
func (e *executor) onCallLocked(acct int, c *call) []*faultState {
	if e.stopped || acct < 0 {
		return nil
	}
	var out []*faultState
	for _, fs := range e.faults {
		if fs.acct != acct || !fs.armed || fs.fired || !fs.matches(c) {
			continue
		}
		fs.matched++
		need := 1
		if fs.f.On != nil {
			need = fs.f.On.Call
		}
		if fs.matched == need {
			e.markFiredLocked(fs, c)
			out = append(out, fs)
		}
	}
	return out
}

// wantsCold reports whether the fault's trigger counts cold DMs, which
// the recorder then classifies as they come.
func (fs *faultState) wantsCold() bool {
	return fs.f.On != nil && slices.Contains(fs.f.On.Methods, ColdDM)
}

func (fs *faultState) matches(c *call) bool {
	if fs.f.On == nil || len(fs.f.On.Methods) == 0 {
		return true
	}
	for _, m := range fs.f.On.Methods {
		if m == c.method || m == ColdDM && c.cold {
			return true
		}
	}
	return false
}

// fire applies a fault through the control API; c is the call it fires
// on (nil for a fault fired by time). An error or drop is injected for
// c's method, so that c itself meets it.
func (e *executor) fire(fs *faultState, c *call) {
	a := e.r.accounts[fs.acct]
	f := fs.f
	var err error
	switch f.Action {
	case ActError, ActDrop:
		flt := testserver.Fault{Method: c.method, Times: 1, Drop: f.Action == ActDrop}
		if f.Action == ActError {
			flt.Error = tgerr.New(f.Code, f.Error)
		}
		err = e.srv.Inject(a.phone, flt)
	case ActLimit:
		err = e.srv.Limit(a.phone, f.For)
	case ActRelease:
		err = e.srv.Release(a.phone)
	case ActFreeze:
		var until time.Time
		if f.For > 0 {
			until = e.srv.Clock().Now().Add(f.For)
		}
		err = e.srv.Freeze(a.phone, until)
	case ActUnfreeze:
		err = e.srv.Unfreeze(a.phone)
	case ActBan:
		err = e.srv.Ban(a.phone)
	case ActUnban:
		err = e.srv.Unban(a.phone)
	case ActRevoke:
		_, err = e.srv.RevokeSessions(a.phone)
	}
	on := ""
	if c != nil {
		on = fmt.Sprintf(" on call #%d %s", c.seq, c.method)
	}
	at := fmtOffset(time.Since(e.r.start))
	if err != nil {
		e.r.mu.Lock()
		fs.fireErr = err.Error()
		e.awaiting--
		e.r.mu.Unlock()
		e.r.progress("+%s %s: fault %s could not fire: %v", at, a.spec.Name, f.Name, err)
		return
	}
	e.r.progress("+%s %s: fault %s: %s%s", at, a.spec.Name, f.Name, f.Describe(), on)
	switch f.Action {
	case ActRelease, ActUnfreeze, ActUnban:
		// Nothing for the client to meet: delivered when applied.
		e.r.mu.Lock()
		d := e.deliverLocked(fs, nil)
		e.r.mu.Unlock()
		if d {
			e.delivered(fs, nil)
		}
	}
}

// afterCallLocked returns the fired faults of the account that this
// answered call delivered. r.mu is held.
func (e *executor) afterCallLocked(acct int, c *call) []*faultState {
	if acct < 0 {
		return nil
	}
	var out []*faultState
	for _, fs := range e.faults {
		if fs.acct != acct || !fs.fired || fs.delivered || fs.fireErr != "" || c.seq < fs.minSeq || !fs.meets(c) {
			continue
		}
		if e.deliverLocked(fs, c) {
			out = append(out, fs)
		}
	}
	return out
}

// meets reports whether an answered call shows the client met the fault.
func (fs *faultState) meets(c *call) bool {
	switch fs.f.Action {
	case ActError:
		return c.method == fs.firedMethod && c.err == fs.f.Error
	case ActDrop:
		return c.method == fs.firedMethod && c.dropped
	case ActLimit:
		return c.sig.Kind == signal.PeerFlood
	case ActFreeze:
		return c.sig.Kind == signal.Frozen || c.method == "help.getAppConfig" && c.err == "" && !c.dropped
	case ActBan:
		return c.sig.Kind == signal.Banned
	case ActRevoke:
		return c.err == "SESSION_REVOKED"
	}
	return false
}

// deliverLocked marks fs delivered by c (nil: when applied) and arms the
// faults that follow it. r.mu is held.
func (e *executor) deliverLocked(fs *faultState, c *call) bool {
	if fs.delivered {
		return false
	}
	fs.delivered, fs.deliveredAt = true, time.Now()
	e.awaiting--
	if c != nil {
		fs.deliveredCall = *c
	}
	return true
}

// delivered reports a delivery and arms the faults waiting for it.
func (e *executor) delivered(fs *faultState, c *call) {
	name := e.r.accounts[fs.acct].spec.Name
	if c != nil {
		e.r.progress("+%s %s: met fault %s: call #%d %s → %s", fmtOffset(c.arrived.Sub(e.r.start)), name, fs.f.Name, c.seq, c.method, c.result())
	}
	var now []*faultState
	e.r.mu.Lock()
	for _, next := range e.faults {
		if next.f.After != fs.f.Name {
			continue
		}
		if next.f.Delay > 0 {
			if !e.stopped {
				e.schedule(next, next.f.Delay)
			}
			continue
		}
		if e.armLocked(next) {
			now = append(now, next)
		}
	}
	e.r.mu.Unlock()
	for _, next := range now {
		e.fire(next, nil)
	}
}

// stop arms and fires nothing more.
func (e *executor) stop() {
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	e.stopped = true
	for _, fs := range e.faults {
		if fs.timer != nil {
			fs.timer.Stop()
		}
	}
}
