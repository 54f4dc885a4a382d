package audit

import (
	"strings"
	"testing"
	"time"
)

// A client that learns of a freeze from its first refused write, not
// from the app config it read before, reacted well if it writes no more.
func TestFreezeMetThroughTheAppConfigAllowsTheFirstRefusedWrite(t *testing.T) {
	for _, c := range []struct {
		name    string
		writes  int
		good    bool
		summary string
	}{
		{"stops after the first refused write", 1, true, "stopped writing after its first refused write"},
		{"keeps writing", 3, false, "kept writing: 2 more writes refused as frozen after the first"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newTrace("a")
			met := b.call(0, time.Second, "help.getAppConfig", "")
			for i := 0; i < c.writes; i++ {
				b.coldDM(0, time.Duration(2+i)*time.Second, "FROZEN_METHOD_INVALID")
			}
			b.call(0, 10*time.Second, "help.getAppConfig", "")
			fs := &faultState{f: &Fault{Name: "freeze", Action: ActFreeze}, acct: 0}
			got, good := reaction(b.t, fs, met)
			if good == nil || *good != c.good || !strings.HasPrefix(got, c.summary) {
				t.Errorf("reaction %q (good %v), want %q (good %v)", got, good, c.summary, c.good)
			}
		})
	}
}
