package monitor

import (
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/tgsafety/tgsafety/monitor/signal"
)

func gatherText(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

func TestAccountGaugesAtScrapeTime(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFixture(t, Options{Registerer: reg})
	f.ok("users.getUsers")
	f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_30")
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	if _, err := f.mon.Account("bob"); err != nil {
		t.Fatal(err)
	}

	at := float64(epoch.Unix())
	want := `
# HELP tgsafety_account_limited_until_timestamp_seconds ` + MetricLimitedUntil.Help + `
# TYPE tgsafety_account_limited_until_timestamp_seconds gauge
tgsafety_account_limited_until_timestamp_seconds{account="alice"} ` + ftoa(at+86400) + `
# HELP tgsafety_account_risk_score Risk score 0-100 from time-decayed, weighted signals (docs/signals.md).
# TYPE tgsafety_account_risk_score gauge
tgsafety_account_risk_score{account="alice"} 60
tgsafety_account_risk_score{account="bob"} 0
# HELP tgsafety_flood_wait_until_timestamp_seconds Unix time at which an active flood wait on the method ends; only active waits are exported.
# TYPE tgsafety_flood_wait_until_timestamp_seconds gauge
tgsafety_flood_wait_until_timestamp_seconds{account="alice",method="contacts.resolveUsername"} ` + ftoa(at+30) + `
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		MetricLimitedUntil.Name, MetricRiskScore.Name, MetricFloodWaitUntil.Name); err != nil {
		t.Fatal(err)
	}

	// One state series per account, its current state's, at 1; one
	// SpamBot series (unknown before any probe); signal series only for
	// the kinds that happened.
	want = `
# HELP tgsafety_account_state ` + MetricAccountState.Help + `
# TYPE tgsafety_account_state gauge
tgsafety_account_state{account="alice",state="limited"} 1
tgsafety_account_state{account="bob",state="unknown"} 1
# HELP tgsafety_signals_total ` + MetricSignals.Help + `
# TYPE tgsafety_signals_total counter
tgsafety_signals_total{account="alice",kind="flood_wait"} 1
tgsafety_signals_total{account="alice",kind="peer_flood"} 1
# HELP tgsafety_spambot_status ` + MetricSpamBotStatus.Help + `
# TYPE tgsafety_spambot_status gauge
tgsafety_spambot_status{account="alice",status="unknown"} 1
tgsafety_spambot_status{account="bob",status="unknown"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		MetricAccountState.Name, MetricSignals.Name, MetricSpamBotStatus.Name, MetricFrozenUntil.Name); err != nil {
		t.Fatal(err)
	}

	// The wait ends: its series disappears; the limit stays.
	f.clock.Advance(31 * time.Second)
	if n := testutil.CollectAndCount(reg, MetricFloodWaitUntil.Name); n != 0 {
		t.Errorf("%d wait series after expiry", n)
	}
}

func TestPermanentLimitIsInf(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFixture(t, Options{Registerer: reg})
	f.acct.mu.Lock()
	f.acct.limit = &limitFacts{since: epoch, permanent: true, reason: "test"}
	f.acct.mu.Unlock()
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == MetricLimitedUntil.Name {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); !math.IsInf(v, 1) {
				t.Fatalf("permanent limit exported as %v", v)
			}
			return
		}
	}
	t.Fatal("no limited_until metric")
}

func TestRemoveDropsSeries(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFixture(t, Options{Registerer: reg})
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	if !f.mon.Remove("alice") {
		t.Fatal("Remove reported no account")
	}
	if text := gatherText(t, reg); strings.Contains(text, `account="alice"`) {
		t.Fatalf("series left after Remove:\n%s", text)
	}
}

func TestMetricDefinitionsMatchRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := newFixture(t, Options{Registerer: reg})
	f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_30")
	f.acct.methodMetrics(&tg.ContactsResolveUsernameRequest{}).duration.Observe(0.1) // as the middleware would
	// The until gauges exist only for limited and frozen accounts.
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	bob, err := f.mon.Account("bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.mu.Lock()
	bob.frozen = &freezeFacts{since: epoch, deletion: epoch.Add(30 * 24 * time.Hour), reason: "test"}
	bob.mu.Unlock()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		got[mf.GetName()] = strings.ToLower(mf.GetType().String())
	}
	var names []string
	for _, d := range Metrics() {
		names = append(names, d.Name)
		if got[d.Name] != string(d.Type) {
			t.Errorf("%s: registry type %q, definition %q", d.Name, got[d.Name], d.Type)
		}
	}
	if len(got) != len(names) {
		sort.Strings(names)
		t.Errorf("registry has %d metrics, definitions %d (%v)", len(got), len(names), names)
	}
}

// TestPromtoolCheckMetrics runs Prometheus's own linter on the exposition.
// make test installs promtool and sets TGSAFETY_REQUIRE_PROMTOOL=1 so that
// CI cannot silently skip it.
func TestPromtoolCheckMetrics(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("TGSAFETY_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool not found but TGSAFETY_REQUIRE_PROMTOOL is set (make test installs Debian's prometheus package)")
		}
		t.Skip("promtool not installed; run make test, which installs Debian's prometheus package")
	}
	reg := prometheus.NewPedanticRegistry()
	f := newFixture(t, Options{Registerer: reg})
	f.ok("users.getUsers")
	f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_30")
	f.rpcErr("messages.sendMessage", 400, "PEER_FLOOD")
	f.rpcErr("messages.sendMessage", 500, "RPC_CALL_FAIL")
	mm := f.acct.methodMetrics(&tg.MessagesSendMessageRequest{})
	mm.requests.Inc()
	mm.duration.Observe(0.2)
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(gatherText(t, reg))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestRunNotifiesExpiriesWithoutTraffic(t *testing.T) {
	f := newFixture(t, Options{})
	changes := make(chan Event, 16)
	f.mon.Subscribe(func(e Event) { changes <- e })
	f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_10")
	<-changes // unknown > throttled

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.mon.Run(ctx) }()
	f.clock.BlockUntil(1) // Run's ticker exists
	f.clock.Advance(11 * time.Second)
	// Only Run's refresh can produce this change: nobody else reads the account.
	select {
	case e := <-changes:
		if e.From != Throttled || e.State != OK || !e.Time.Equal(epoch.Add(10*time.Second)) {
			t.Fatalf("change = %s>%s at %v", e.From, e.State, e.Time.Sub(epoch))
		}
	case <-time.After(10 * time.Second): // a failure guard, not synchronisation
		t.Fatal("Run never refreshed the account")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
}

// Run refreshes only the accounts with a fact expiring: alice's wait ends
// at 10 s, carol's at 12 s; bob has nothing due and is not evaluated
// again by the ticks at 11 s and 13 s (carol's change, at the later
// tick, means the 11 s tick is over).
func TestRunRefreshesOnlyAccountsWithSomethingDue(t *testing.T) {
	f := newFixture(t, Options{})
	changes := make(chan Event, 16)
	f.mon.Subscribe(func(e Event) { changes <- e })
	bob, err := f.mon.Account("bob")
	if err != nil {
		t.Fatal(err)
	}
	carol, err := f.mon.Account("carol")
	if err != nil {
		t.Fatal(err)
	}
	f.rpcErr("contacts.resolveUsername", 420, "FLOOD_WAIT_10")
	carol.ObserveSignal(f.clock.Now(), "contacts.resolveUsername", signal.Parse(420, "FLOOD_WAIT_12"))
	for range 2 {
		<-changes // unknown > throttled
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.mon.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	f.clock.BlockUntil(1) // Run's ticker exists
	next := func(who string) Event {
		t.Helper()
		select {
		case e := <-changes:
			if e.Account != who || e.State != OK {
				t.Fatalf("change %s %s>%s, want %s back to ok", e.Account, e.From, e.State, who)
			}
			return e
		case <-time.After(10 * time.Second): // a failure guard, not synchronisation
			t.Fatalf("Run never refreshed %s", who)
			panic("unreachable")
		}
	}
	f.clock.Advance(11 * time.Second)
	next("alice")
	f.clock.Advance(2 * time.Second)
	next("carol")
	bob.mu.Lock()
	evaluated := bob.evaluatedAt
	bob.mu.Unlock()
	if !evaluated.Equal(epoch) {
		t.Fatalf("bob, with nothing due, evaluated again at %v", evaluated.Sub(epoch))
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
