package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/testbin"
)

// TestEndToEndWithPrometheus runs `safetyd demo` (simulated accounts
// through the daemon's real wiring), lets Debian's Prometheus scrape it
// every second with the generated rule file loaded, and requires, eventually
// (a 10-minute failure guard; about 20 s on a quiet machine): every rule group healthy and evaluated, TgsafetyAccountBanned
// and TgsafetyAccountLimited firing for the demo's banned and limited
// accounts, and every dashboard query (panels and variables) returning
// data at some point of the run (those over rareSeries: evaluating).
func TestEndToEndWithPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	if _, err := os.Stat(filepath.Join("..", "cmd", "safetyd", "demo.go")); err != nil {
		t.Skip("safetyd demo does not exist yet (cmd/safetyd/internal/demo)")
	}
	promBin := requireBinary(t, "prometheus")
	dir := t.TempDir()
	start := time.Now()

	// The daemon's demo, built from this tree.
	demoBin := testbin.Path(t, "safetyd")
	demoAddr := freeAddr(t)
	// At 3000 virtual seconds per second the demo's accounts are limited,
	// frozen, banned and dead within about 20 s (a simulated day takes 29 s).
	notify, ready := testbin.NotifySocket(t)
	demo := startProcess(t, filepath.Join(dir, "demo.log"), []string{notify}, demoBin, "demo",
		"--listen", demoAddr, "--speed", "3000", "--accounts", "12", "--quiet")
	select { // the daemon says when it serves (sd_notify READY=1)
	case <-ready:
	case <-demo.done:
		t.Fatalf("the demo exited before it was ready: %s", tail(filepath.Join(dir, "demo.log")))
	case <-time.After(5 * time.Minute): // a failure guard, not a budget
		t.Fatalf("the demo not ready within 5 minutes: %s", tail(filepath.Join(dir, "demo.log")))
	}
	t.Logf("demo ready after %v", time.Since(start).Round(time.Millisecond))

	// Prometheus scraping it every second, with the committed rule file,
	// and telling the test each time it has stored new samples (remote
	// write): what the test waits on instead of polling on a timer.
	ingest := newIngestWatch(t)
	rules, err := filepath.Abs(filepath.Join("generated", PrometheusRulesFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: tgsafety
    static_configs:
      - targets: [%q]
remote_write:
  - url: %q
    queue_config:
      batch_send_deadline: 1s
`, rules, demoAddr, ingest.url)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	promAddr := freeAddr(t)
	prom := startProcess(t, filepath.Join(dir, "prometheus.log"), nil, promBin,
		"--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	api := "http://" + promAddr
	// Its first samples pushed: it serves queries and is scraping.
	if !ingest.next(t, prom, time.Now().Add(5*time.Minute)) { // a failure guard
		t.Fatalf("prometheus pushed no samples within 5 minutes: %s", tail(filepath.Join(dir, "prometheus.log")))
	}
	promStart := time.Now()

	// What must eventually hold.
	pending := map[string]string{} // query description -> PromQL
	for _, q := range dashboardQueries(t) {
		expr := e2eVariables.Replace(q.expr)
		if q.variable {
			m := labelValuesRE.FindStringSubmatch(expr)
			expr = m[1]
		}
		pending[q.where] = expr
	}
	nQueries := len(pending)
	wantAlerts := map[string]bool{"TgsafetyAccountBanned": false, "TgsafetyAccountLimited": false}
	var rulesOK bool
	var lastProblem string

	// A failure guard, not a budget: on a loaded machine the demo runs
	// slower than --speed (it waits for its applications), and that is fine.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		rulesOK, lastProblem = rulesHealthy(t, api, promStart)
		for name := range wantAlerts {
			wantAlerts[name] = wantAlerts[name] || alertFiring(t, api, name)
		}
		for where, expr := range pending {
			if hasData(t, api, expr, promStart, afterRareEvent(expr)) {
				delete(pending, where)
			}
		}
		fired := wantAlerts["TgsafetyAccountBanned"] && wantAlerts["TgsafetyAccountLimited"]
		if rulesOK && fired && len(pending) == 0 {
			break
		}
		if !ingest.next(t, prom, deadline) {
			var missing []string
			for where, expr := range pending {
				missing = append(missing, where+": "+expr)
			}
			sort.Strings(missing)
			t.Fatalf("after %v: rules healthy %v (%s); alerts fired %v; %d of %d dashboard queries never returned data:\n%s\ndemo log: %s\nprometheus log: %s",
				time.Since(start).Round(time.Second), rulesOK, lastProblem, wantAlerts, len(missing), nQueries,
				strings.Join(missing, "\n"), tail(filepath.Join(dir, "demo.log")), tail(filepath.Join(dir, "prometheus.log")))
		}
	}
	t.Logf("all %d dashboard queries returned data, every rule group healthy, banned and limited alerts firing, %v after start",
		nQueries, time.Since(start).Round(time.Millisecond))
}

// e2eVariables are the Grafana variables for the end-to-end queries: all
// jobs, instances and accounts, and a rate interval of five 1 s scrapes
// (Grafana would use at least four).
var e2eVariables = strings.NewReplacer(
	"$__rate_interval", "5s",
	"$job", ".+", "$instance", ".+", "$account", ".+",
)

// freeAddr returns a loopback address with a port that was free a moment
// ago (the processes under test take a fixed --listen address).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// process is a started external process; done closes when it exits.
type process struct {
	name string
	done chan struct{}
}

// startProcess starts a command, with env added to the test's
// environment and its output in logPath, and stops it (SIGINT, then
// SIGKILL after 5 s) when the test ends.
func startProcess(t *testing.T, logPath string, env []string, bin string, args ...string) process {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
	return process{name: filepath.Base(bin), done: done}
}

// ingestWatch is a remote-write endpoint for Prometheus: each push of
// samples it receives (their content unread) tells the test that new data
// can be queried.
type ingestWatch struct {
	url    string
	pushed chan struct{}
}

func newIngestWatch(t *testing.T) *ingestWatch {
	t.Helper()
	w := &ingestWatch{pushed: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rw.WriteHeader(http.StatusNoContent)
		select {
		case w.pushed <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL + "/write"
	return w
}

// next waits for Prometheus's next push; false when the deadline (a
// failure guard) passes first. It fails the test if Prometheus exits.
func (w *ingestWatch) next(t *testing.T, p process, deadline time.Time) bool {
	t.Helper()
	select {
	case <-w.pushed:
		return true
	case <-p.done:
		t.Fatalf("%s exited", p.name)
	case <-time.After(time.Until(deadline)):
	}
	return false
}

func getJSON(t *testing.T, u string, v any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// rareSeries are metrics whose series appear only with an event the demo
// does not produce on every run: a probe's failure (SpamBot silent, a
// timeout). Counters are created with their first increment
// (docs/metrics.md), so a query over them has no data until then; it
// must still evaluate, and promtool (alerts_test.yml) and
// TestQueriesNameExportedMetricsAndLabels check what it says.
var rareSeries = []string{probe.MetricProbeErrors.Name}

// afterRareEvent reports whether expr reads one of rareSeries.
func afterRareEvent(expr string) bool {
	for _, m := range rareSeries {
		if strings.Contains(expr, m) {
			return true
		}
	}
	return false
}

// hasData reports whether a range query over the run returns any sample,
// or, with evaluatesOnly, whether Prometheus evaluated it.
func hasData(t *testing.T, api, expr string, from time.Time, evaluatesOnly bool) bool {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	q := url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(from.Unix(), 10)},
		"end":   {strconv.FormatInt(time.Now().Unix(), 10)},
		"step":  {"1"},
	}
	if err := getJSON(t, api+"/api/v1/query_range?"+q.Encode(), &r); err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	return r.Status == "success" && (evaluatesOnly || len(r.Data.Result) > 0)
}

// rulesHealthy reports whether Prometheus loaded every generated group
// with every alert, and evaluated each rule without error since start.
func rulesHealthy(t *testing.T, api string, since time.Time) (bool, string) {
	t.Helper()
	var r struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name           string    `json:"name"`
					Health         string    `json:"health"`
					LastError      string    `json:"lastError"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(t, api+"/api/v1/rules", &r); err != nil {
		t.Fatal(err)
	}
	loaded := map[string]bool{}
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			if rule.Health != "ok" || !rule.LastEvaluation.After(since) {
				return false, fmt.Sprintf("%s/%s health %q %s, last evaluated %v", g.Name, rule.Name, rule.Health, rule.LastError, rule.LastEvaluation)
			}
			loaded[g.Name+"/"+rule.Name] = true
		}
	}
	for _, a := range Alerts() {
		if !loaded[a.Group+"/"+a.Name] {
			return false, a.Group + "/" + a.Name + " not loaded"
		}
	}
	return true, ""
}

// alertFiring reports whether an alert of that name is firing for one of
// the demo's accounts.
func alertFiring(t *testing.T, api, name string) bool {
	t.Helper()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := getJSON(t, api+"/api/v1/alerts", &r); err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == name && a.State == "firing" && strings.HasPrefix(a.Labels["account"], "demo-") {
			return true
		}
	}
	return false
}

// tail is the end of a log file, for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
