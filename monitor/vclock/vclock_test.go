package vclock

import (
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestTimerFiresAtDeadline(t *testing.T) {
	c := New(epoch)
	tm := c.Timer(10 * time.Second)
	c.Advance(9 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Second)
	select {
	case got := <-tm.C():
		if !got.Equal(epoch.Add(10 * time.Second)) {
			t.Fatalf("fired with %v", got)
		}
	default:
		t.Fatal("did not fire")
	}
	if tm.Stop() {
		t.Fatal("Stop after firing reported pending")
	}
}

func TestTickerDropsInsteadOfBlocking(t *testing.T) {
	c := New(epoch)
	tk := c.Ticker(time.Second)
	c.Advance(time.Hour) // 3600 ticks, nobody reading: must not block
	select {
	case got := <-tk.C():
		if !got.Equal(epoch.Add(time.Second)) {
			t.Fatalf("first kept tick = %v, want the first one", got)
		}
	default:
		t.Fatal("no tick")
	}
	tk.Stop()
	if c.Pending() != 0 {
		t.Fatalf("pending = %d after Stop", c.Pending())
	}
}

func TestAdvanceOrdersDeadlinesAndSetsNow(t *testing.T) {
	c := New(epoch)
	a := c.Timer(3 * time.Second)
	b := c.Timer(time.Second)
	if next, ok := c.Next(); !ok || !next.Equal(epoch.Add(time.Second)) {
		t.Fatalf("Next = %v %v", next, ok)
	}
	c.Advance(5 * time.Second)
	if got := <-b.C(); !got.Equal(epoch.Add(time.Second)) {
		t.Fatalf("b fired at %v", got)
	}
	if got := <-a.C(); !got.Equal(epoch.Add(3 * time.Second)) {
		t.Fatalf("a fired at %v", got)
	}
	if !c.Now().Equal(epoch.Add(5 * time.Second)) {
		t.Fatalf("Now = %v", c.Now())
	}
	if c.Advance(-time.Hour); !c.Now().Equal(epoch.Add(5 * time.Second)) {
		t.Fatal("time went backwards")
	}
}

func TestResetAndZeroTimer(t *testing.T) {
	c := New(epoch)
	tm := c.Timer(0)
	select {
	case <-tm.C():
	default:
		t.Fatal("zero timer did not fire immediately")
	}
	tm.Reset(time.Minute)
	if len(c.Deadlines()) != 1 {
		t.Fatalf("deadlines = %v", c.Deadlines())
	}
	c.AdvanceTo(epoch.Add(time.Minute))
	select {
	case <-tm.C():
	default:
		t.Fatal("reset timer did not fire")
	}
}
