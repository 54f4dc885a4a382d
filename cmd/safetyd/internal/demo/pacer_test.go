package demo

import (
	"testing"
	"time"
)

// The pacer counts an application active from its deadline on, however
// many share that deadline, and one stopped while parked becomes active
// again once, not twice.
func TestPacerWakesEveryApplicationOfADeadlineOnce(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPacer(0)
	for range 4 {
		p.enter("app")
	}
	a := p.park(t0.Add(time.Minute))
	b := p.park(t0.Add(time.Minute))
	c := p.park(t0.Add(time.Hour))
	idle := p.park(time.Time{})
	if p.active != 0 {
		t.Fatalf("active %d after all parked", p.active)
	}
	if next, ok := p.next(); !ok || !next.Equal(t0.Add(time.Minute)) {
		t.Fatalf("next = %v %v, want +1m", next, ok)
	}
	p.wake(t0.Add(30 * time.Minute))
	if p.active != 2 {
		t.Fatalf("after waking to +30m: active %d, want the two of +1m", p.active)
	}
	p.unpark(a) // woken already: no change
	p.unpark(b)
	if p.active != 2 {
		t.Fatalf("unpark after wake changed active to %d", p.active)
	}
	if next, ok := p.next(); !ok || !next.Equal(t0.Add(time.Hour)) {
		t.Fatalf("next = %v %v, want +1h", next, ok)
	}
	p.unpark(c) // stopped while parked
	p.unpark(c)
	if p.active != 3 {
		t.Fatalf("a parked application stopped: active %d, want 3", p.active)
	}
	if _, ok := p.next(); ok {
		t.Fatal("only an idle application is parked, yet next has a deadline")
	}
	p.wake(t0.Add(1000 * time.Hour))
	if p.active != 3 {
		t.Fatalf("an idle application (no deadline) was woken: active %d", p.active)
	}
	p.unpark(idle)
	if p.active != 4 || len(p.parked) != 0 {
		t.Fatalf("active %d, %d groups parked; want 4 and none", p.active, len(p.parked))
	}
}
