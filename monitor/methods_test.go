package monitor

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/vclock"
)

// distinctMethods is how many made-up, TL-shaped method names the
// cardinality test reports (issue 11: 50,000 once made 50,000 series and
// took half an hour to ingest).
const distinctMethods = 50_000

// Reported signals carry any TL-shaped method name. Names outside the TL
// schema are counted under one "other" label and share one flood-wait
// entry, so neither the metric series nor the account's per-method state
// grow with the number of distinct names; the event keeps the reported
// name.
func TestReportedMethodsOutsideTheSchemaShareOneLabel(t *testing.T) {
	clk := vclock.New(epoch)
	reg := prometheus.NewPedanticRegistry()
	mon, err := New(Options{Clock: clk, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := mon.Account("alice")
	fw := signal.Parse(420, "FLOOD_WAIT_60")
	for i := range distinctMethods {
		acct.ObserveSignal(clk.Now(), fmt.Sprintf("ns%d.madeUp%d", i, i), fw)
	}
	acct.ObserveSignal(clk.Now(), "messages.sendMessage", fw)

	methods := map[string]bool{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == LabelMethod {
					methods[l.GetValue()] = true
				}
			}
		}
	}
	if len(methods) != 2 || !methods[OtherMethod] || !methods["messages.sendMessage"] {
		t.Fatalf("method label values = %d (%v...), want other and messages.sendMessage", len(methods), firstKeys(methods, 3))
	}
	if got := testutil.ToFloat64(mon.metrics.errors.WithLabelValues("alice", OtherMethod, "flood_wait")); got != distinctMethods {
		t.Errorf("errors{method=other} = %v, want %d", got, distinctMethods)
	}
	s := acct.Snapshot()
	if len(s.FloodWaits) != 2 || s.FloodWaits[0].Method != "messages.sendMessage" || s.FloodWaits[1].Method != OtherMethod {
		t.Fatalf("flood waits = %d entries, want messages.sendMessage and other", len(s.FloodWaits))
	}
	if ev := acct.Events(); ev[len(ev)-2].Method != fmt.Sprintf("ns%d.madeUp%d", distinctMethods-1, distinctMethods-1) {
		t.Errorf("event method = %q, want the reported name", ev[len(ev)-2].Method)
	}
	if acct.FloodWaitUntil("ns1.madeUp1", clk.Now()).IsZero() {
		t.Error("a wait on a method outside the schema is not held under other")
	}

	// The state expires: once the waits and the repeat window are over,
	// nothing per method is left.
	clk.Advance(time.Minute + mon.policy.RepeatWindow + time.Second)
	acct.Refresh()
	acct.mu.Lock()
	left := len(acct.waits)
	acct.mu.Unlock()
	if left != 0 {
		t.Errorf("%d per-method entries left after every wait ended", left)
	}
}

func firstKeys(m map[string]bool, n int) []string {
	var out []string
	for k := range m {
		if len(out) == n {
			break
		}
		out = append(out, k)
	}
	return out
}

func TestKnownMethodIsTheTLSchema(t *testing.T) {
	for _, m := range []string{"messages.sendMessage", "contacts.resolveUsername", "help.getAppConfig", "users.getUsers", "invokeWithLayer"} {
		if !KnownMethod(m) || MethodLabel(m) != m {
			t.Errorf("%s: known %v, label %q", m, KnownMethod(m), MethodLabel(m))
		}
	}
	// Constructors are types, not methods; names are case-sensitive.
	for _, m := range []string{"messages.messages", "user", "messages.sendmessage", "ns1.madeUp1", ""} {
		if KnownMethod(m) || MethodLabel(m) != OtherMethod {
			t.Errorf("%s: known %v, label %q", m, KnownMethod(m), MethodLabel(m))
		}
	}
	if MethodLabel("unknown") != "unknown" {
		t.Error(`MethodName's "unknown" is not kept`)
	}
}
