package audit

import (
	"fmt"
	"sort"
	"time"

	"github.com/tgsafety/tgsafety/monitor/signal"
)

// FaultReport is what became of one fault of the plan: when it fired,
// when the client met it, and what the client did next.
type FaultReport struct {
	Name    string `json:"name"`
	Account string `json:"account"`
	// Does and When describe the fault as the plan gives it.
	Does string `json:"does"`
	When string `json:"when"`
	// Status is "met", "fired, not met", "armed, not fired", "not armed"
	// or "could not fire".
	Status string `json:"status"`
	// FiredAt and MetAt are times since the start (real time).
	FiredAt time.Duration `json:"fired_at_ns,omitempty"`
	FiredOn string        `json:"fired_on,omitempty"`
	MetAt   time.Duration `json:"met_at_ns,omitempty"`
	MetBy   string        `json:"met_by,omitempty"`
	// Reaction says what the client did after meeting the fault; Good
	// judges it (nil when there is nothing to judge).
	Reaction string `json:"reaction,omitempty"`
	Good     *bool  `json:"good,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Mark is ✔, ✘ or – for the text report.
func (f *FaultReport) Mark() string {
	switch {
	case f.Good == nil:
		return "–"
	case *f.Good:
		return "✔"
	}
	return "✘"
}

// faultReports describes every fault after the run.
func faultReports(t *trace, e *executor) []FaultReport {
	if e == nil {
		return nil
	}
	var out []FaultReport
	for _, fs := range e.faults {
		fr := FaultReport{Name: fs.f.Name, Account: fs.f.Account, Does: fs.f.Describe(), When: fs.f.When()}
		switch {
		case fs.fireErr != "":
			fr.Status, fr.Error = "could not fire", fs.fireErr
		case fs.delivered:
			fr.Status = "met"
		case fs.fired:
			fr.Status = "fired, not met"
		case fs.armed:
			fr.Status = "armed, not fired"
			if fs.f.On != nil {
				fr.Reaction = fmt.Sprintf("the account made %d of the %d matching calls", fs.matched, fs.f.On.Call)
			}
		default:
			fr.Status = "not armed"
			if fs.f.After != "" {
				fr.Reaction = fmt.Sprintf("waiting for %s, which was not met", fs.f.After)
			}
		}
		if fs.fired {
			fr.FiredAt = fs.firedAt.Sub(t.start)
			if fs.firedSeq != 0 {
				fr.FiredOn = fmt.Sprintf("call #%d %s", fs.firedSeq, fs.firedMethod)
			}
		}
		if fs.delivered {
			fr.MetAt = fs.deliveredAt.Sub(t.start)
			if c := t.callBySeq(fs.deliveredCall.seq, &fs.deliveredCall); fs.deliveredCall.seq != 0 {
				fr.MetBy = fmt.Sprintf("call #%d %s → %s", c.seq, c.method, c.result())
				fr.MetAt = c.arrived.Sub(t.start)
				fr.Reaction, fr.Good = reaction(t, fs, c)
			}
		}
		out = append(out, fr)
	}
	return out
}

// callBySeq finds a call in the trace, or returns the copy kept by the
// fault when the cap left it out.
func (t *trace) callBySeq(seq uint64, fallback *call) *call {
	i := sort.Search(len(t.calls), func(i int) bool { return t.calls[i].seq >= seq })
	if i < len(t.calls) && t.calls[i].seq == seq {
		return &t.calls[i]
	}
	return fallback
}

func verdict(good bool) *bool { return &good }

// reaction describes what the client did after meeting fault fs with
// call met.
func reaction(t *trace, fs *faultState, met *call) (string, *bool) {
	acct := fs.acct
	var later []*call
	for _, i := range t.callsOf(acct) {
		if c := &t.calls[i]; c.seq > met.seq && c.sentAfter(met.answered) {
			later = append(later, c)
		}
	}
	switch fs.f.Action {
	case ActError:
		var next *call
		for _, c := range later {
			if c.method == met.method {
				next = c
				break
			}
		}
		if met.sig.Kind != signal.FloodWait {
			if next == nil {
				return fmt.Sprintf("did not call %s again", met.method), nil
			}
			return fmt.Sprintf("called %s again %s later", met.method, fmtOffset(next.sent.Sub(met.answered))), nil
		}
		if next == nil {
			return fmt.Sprintf("did not call %s again", met.method), verdict(true)
		}
		waited := next.sent.Sub(met.answered)
		if waited < met.sig.Wait {
			return fmt.Sprintf("called %s again %s later, before the %s wait ended", met.method, fmtOffset(waited), fmtDur(met.sig.Wait)), verdict(false)
		}
		return fmt.Sprintf("waited: called %s again %s later", met.method, fmtOffset(waited)), verdict(true)
	case ActDrop:
		for _, c := range later {
			if c.conn != met.conn && c.conn != 0 {
				return fmt.Sprintf("reconnected: next call %s later on connection %d", fmtOffset(c.sent.Sub(met.answered)), c.conn), verdict(true)
			}
		}
		return "did not call again after the drop", nil
	case ActLimit:
		n := 0
		for _, c := range later {
			if c.cold || c.sig.Kind == signal.PeerFlood {
				n++
			}
		}
		if n > 0 {
			return fmt.Sprintf("kept writing to strangers: %s", plural(n, "more attempt")), verdict(false)
		}
		return fmt.Sprintf("wrote to no stranger after PEER_FLOOD (%d other calls)", len(later)), verdict(true)
	case ActFreeze:
		// The client may learn of the freeze from the app config or from
		// its first refused write; the writes refused after that one are
		// the ones it should not have made (writes-while-frozen).
		first := met
		if met.sig.Kind != signal.Frozen {
			first = nil
			for _, c := range later {
				if c.sig.Kind == signal.Frozen {
					first = c
					break
				}
			}
		}
		n := 0
		for _, c := range later {
			if first != nil && c.seq > first.seq && c.sig.Kind == signal.Frozen && c.sentAfter(first.answered) {
				n++
			}
		}
		if n > 0 {
			return fmt.Sprintf("kept writing: %s refused as frozen after the first", plural(n, "more write")), verdict(false)
		}
		if first != nil && first != met {
			return fmt.Sprintf("stopped writing after its first refused write (%d other calls)", len(later)-1), verdict(true)
		}
		return fmt.Sprintf("no write refused after the freeze (%d other calls)", len(later)), verdict(true)
	case ActBan:
		if len(later) > 0 {
			return fmt.Sprintf("kept calling: %s", plural(len(later), "more call")), verdict(false)
		}
		return "stopped: no call after the ban", verdict(true)
	case ActRevoke:
		n := 0
		for i := range t.calls {
			c := &t.calls[i]
			if c.key == met.key && c.seq > met.seq && c.sentAfter(met.answered) && !loginMethods[c.method] {
				n++
			}
		}
		if n > 0 {
			return fmt.Sprintf("kept using the revoked session: %s", plural(n, "more call")), verdict(false)
		}
		return "stopped using the revoked session", verdict(true)
	}
	return "", nil
}

// plural writes "1 more call", "2 more calls".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
