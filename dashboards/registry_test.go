package dashboards

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/daemon"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/store"
)

// exported is what a registry exports for one metric family.
type exported struct {
	typ    monitor.MetricType
	labels map[string]bool
}

// invokerFunc adapts a function to tg.Invoker: the "Telegram" behind the
// middlewares.
type invokerFunc func(ctx context.Context, in bin.Encoder, out bin.Decoder) error

func (f invokerFunc) Invoke(ctx context.Context, in bin.Encoder, out bin.Decoder) error {
	return f(ctx, in, out)
}

// realRegistry wires the monitor, the probe recorder, a guard, the
// history store and the daemon metrics on one registry the way safetyd
// does, makes one call that Telegram answers with a FLOOD_WAIT and one
// that the guard then refuses, so that every labelled family has a child
// (a *Vec without children is missing from Gather), and returns what the
// registry exports, by family name.
func realRegistry(t *testing.T) map[string]exported {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	mon, err := monitor.New(monitor.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := mon.Account("alice")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := probe.NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	rec.Observe("alice", monitor.ProbeSpamBot, time.Now(), nil)
	rec.Observe("alice", monitor.ProbeSpamBot, time.Now(), errors.New("no answer"))
	g, err := guard.New(acct, guard.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "history.db"), store.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	store.NewWriter(st, store.WriterOptions{})
	in, err := daemon.Register(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	in.Connected.WithLabelValues("alice").Set(1)
	in.Restarts.WithLabelValues("alice")

	telegram := invokerFunc(func(_ context.Context, in bin.Encoder, _ bin.Decoder) error {
		if _, ok := in.(*tg.ContactsResolveUsernameRequest); ok {
			return nil
		}
		return tgerr.New(420, "FLOOD_WAIT_600")
	})
	call := g.Middleware().Handle(acct.Middleware().Handle(telegram))
	req := &tg.MessagesSendMessageRequest{Peer: &tg.InputPeerSelf{}, Message: "hi", RandomID: 1}
	if err := call(context.Background(), req, &tg.UpdatesBox{}); !tgerr.IsCode(err, 420) {
		t.Fatalf("first call: %v, want the FLOOD_WAIT", err)
	}
	var blocked *guard.BlockedError
	if err := call(context.Background(), req, &tg.UpdatesBox{}); !asBlocked(err, &blocked) {
		t.Fatalf("second call: %v, want the guard's refusal", err)
	}

	// A username resolved spends a budget (only budgets in use are
	// exported); alice is then limited and frozen with a deletion date
	// (the until gauges exist only then).
	resolve := &tg.ContactsResolveUsernameRequest{Username: "durov"}
	if err := call(context.Background(), resolve, &tg.ContactsResolvedPeer{}); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	now := time.Now()
	acct.ObserveSignal(now, "messages.sendMessage", signal.Parse(400, "PEER_FLOOD"))
	acct.ObserveFreeze(now, monitor.FreezeStatus{Known: true, Frozen: true, Since: now, DeletionDate: now.Add(30 * 24 * time.Hour)})

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]exported{}
	for _, mf := range mfs {
		e := exported{typ: monitor.MetricType(strings.ToLower(mf.GetType().String())), labels: map[string]bool{}}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				e.labels[l.GetName()] = true
			}
		}
		out[mf.GetName()] = e
	}
	return out
}

// TestMetricsMatchRegistry: dashboards.Metrics() and the real registry
// agree on every name, type and label, so checking queries against either
// is checking them against what is exported.
func TestMetricsMatchRegistry(t *testing.T) {
	got := realRegistry(t)
	seen := map[string]bool{}
	for _, d := range Metrics() {
		seen[d.Name] = true
		e, ok := got[d.Name]
		if !ok {
			t.Errorf("%s is defined but the registry does not export it", d.Name)
			continue
		}
		if e.typ != d.Type {
			t.Errorf("%s: registry type %s, definition %s", d.Name, e.typ, d.Type)
		}
		var ls []string
		for l := range e.labels {
			ls = append(ls, l)
		}
		sort.Strings(ls)
		want := append([]string(nil), d.Labels...)
		sort.Strings(want)
		if strings.Join(ls, ",") != strings.Join(want, ",") {
			t.Errorf("%s: registry labels %v, definition %v", d.Name, ls, want)
		}
	}
	for name := range got {
		if !seen[name] {
			t.Errorf("the registry exports %s, which dashboards.Metrics() does not define", name)
		}
	}
}

func asBlocked(err error, target **guard.BlockedError) bool { return errors.As(err, target) }
