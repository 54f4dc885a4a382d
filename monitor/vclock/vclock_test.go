package vclock

import (
	"fmt"
	"sync"
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

// Stopping and resetting timers in the middle of the heap keeps the rest
// in deadline order: walking the clock with Next visits exactly the
// remaining deadlines, sorted, and each timer fires with its deadline.
func TestStopAndResetKeepDeadlineOrder(t *testing.T) {
	c := New(epoch)
	const n = 300
	timers := make([]clockTimer, n)
	want := map[int]time.Duration{}
	for i := range timers {
		d := time.Duration((i*7919)%1000+1) * time.Second // a permutation-ish spread
		timers[i] = c.Timer(d)
		want[i] = d
	}
	for i := range timers {
		switch i % 5 {
		case 0:
			if !timers[i].Stop() {
				t.Fatalf("timer %d was not pending", i)
			}
			delete(want, i)
		case 1:
			d := time.Duration((i*104729)%1500+1) * time.Second
			timers[i].Reset(d)
			want[i] = d
		}
	}
	if c.Pending() != len(want) {
		t.Fatalf("pending %d, want %d", c.Pending(), len(want))
	}
	var prev time.Time
	for {
		next, ok := c.Next()
		if !ok {
			break
		}
		if next.Before(prev) {
			t.Fatalf("Next went back from %v to %v", prev, next)
		}
		prev = next
		c.AdvanceTo(next)
	}
	for i, tm := range timers {
		d, pending := want[i]
		select {
		case got := <-tm.C():
			if !pending {
				t.Errorf("stopped timer %d fired", i)
			} else if !got.Equal(epoch.Add(d)) {
				t.Errorf("timer %d fired with %v, want %v", i, got, epoch.Add(d))
			}
		default:
			if pending {
				t.Errorf("timer %d did not fire", i)
			}
		}
	}
	if c.Pending() != 0 {
		t.Errorf("%d still pending", c.Pending())
	}
}

// clockTimer is what Clock.Timer returns.
type clockTimer = interface {
	C() <-chan time.Time
	Stop() bool
	Reset(time.Duration)
}

// Timers created, stopped and reset from many goroutines while another
// advances the clock: the race detector checks the heap's locking, and
// every timer still pending at the end is accounted for.
func TestConcurrentTimersWhileAdvancing(t *testing.T) {
	c := New(epoch)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				tm := c.Timer(time.Duration(i%50+1) * time.Second)
				switch i % 3 {
				case 0:
					tm.Stop()
				case 1:
					tm.Reset(time.Duration(g+1) * time.Second)
				}
				_ = c.Now()
			}
		}(g)
	}
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			c.Advance(time.Second)
		}
	}()
	wg.Wait()
	<-done
	c.Advance(time.Hour)
	if c.Pending() != 0 {
		t.Errorf("%d timers pending after every deadline passed", c.Pending())
	}
}

// BenchmarkFire is the cost of one fired timer with pending others
// waiting far in the future (a fleet's pings, probes and guards): the
// clock must not scan them.
func BenchmarkFire(b *testing.B) {
	for _, pending := range []int{100, 1000, 10000, 40000} {
		b.Run(fmt.Sprintf("pending=%d", pending), func(b *testing.B) {
			c := New(epoch)
			for i := 0; i < pending; i++ {
				c.Timer(time.Duration(i+1) * 24 * time.Hour)
			}
			b.ResetTimer()
			for b.Loop() {
				tm := c.Timer(time.Millisecond)
				c.Advance(time.Millisecond)
				<-tm.C()
			}
		})
	}
}

// A goroutine woken by a timer that reads Now while the same Advance is
// still firing later timers must see where the Advance ends, not the
// deadline of the timer that woke it: it arms its next timer relative to
// what it read, and the clock schedules relative to where it stands once
// Advance lets go. Reading a mid-Advance time put the probe scheduler's
// timer later than the run it promised (its test hung in CI when a run
// fell due inside a 5-minute step). Many timers after the first keep the
// Advance busy long enough for the woken goroutine to read Now during it.
func TestNowReadByAWokenGoroutineIsWhereAdvanceEnds(t *testing.T) {
	for round := 0; round < 5; round++ {
		c := New(epoch)
		first := c.Timer(time.Minute)
		for i := 0; i < 5000; i++ {
			c.Timer(2*time.Minute + time.Duration(i)*time.Millisecond)
		}
		seen := make(chan time.Time)
		go func() {
			<-first.C()
			seen <- c.Now()
		}()
		end := c.Advance(10 * time.Minute)
		if got := <-seen; !got.Equal(end) {
			t.Fatalf("round %d: woken goroutine read %v during Advance to %v", round, got.Sub(epoch), end.Sub(epoch))
		}
	}
}
