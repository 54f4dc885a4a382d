package service

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMeasureReplicas is a measurement, run by hand for
// docs/performance.md ("Exposition and 10,000 accounts per replica",
// "Failover and lease acquisition"), not a check: it skips unless
// TGSAFETY_MEASURE_ACCOUNTS is set. It starts TGSAFETY_MEASURE_REPLICAS
// (default 3) `safetyd run` processes for that many accounts on one
// PostgreSQL database and one simulated Telegram, and logs how long until
// every account is held and connected, each replica's RSS, /metrics size
// and scrape time; then it SIGKILLs a replica TGSAFETY_MEASURE_KILLS times
// (round robin, each restarted and the fleet rebalanced before the next)
// and logs the failover times: from the kill until every account is
// held again. Use binaries built without -race (TGSAFETY_BIN_DIR) and a
// test binary without -race, or the figures measure the race detector.
func TestMeasureReplicas(t *testing.T) {
	n := measureEnv(t, "TGSAFETY_MEASURE_ACCOUNTS", 0)
	if n == 0 {
		t.Skip("a measurement: set TGSAFETY_MEASURE_ACCOUNTS (docs/performance.md)")
	}
	replicas := measureEnv(t, "TGSAFETY_MEASURE_REPLICAS", 3)
	kills := measureEnv(t, "TGSAFETY_MEASURE_KILLS", 0)
	rf := newProcFleet(t, n)
	watch, start := rf.watch, rf.start
	var procs []*replicaProc
	t.Cleanup(func() {
		for _, p := range procs {
			if !p.gone {
				_ = p.cmd.Process.Kill()
				_ = p.wait()
			}
		}
	})
	// A measurement that fails leaves each live replica's log, with its
	// goroutines (SIGQUIT), for a look at what it waited for.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, p := range procs {
			if p.gone {
				continue
			}
			_ = p.cmd.Process.Signal(syscall.SIGQUIT)
			_ = p.wait()
			path := filepath.Join(os.TempDir(), fmt.Sprintf("measure-replica-%d.log", p.cmd.Process.Pid))
			if err := os.WriteFile(path, []byte(p.log()), 0o600); err == nil {
				t.Logf("replica pid %d: log and goroutines in %s", p.cmd.Process.Pid, path)
			}
		}
	})
	balanced := func(live int) func(map[string]int) bool {
		return func(h map[string]int) bool {
			if len(h) != live || sum(h) != n {
				return false
			}
			// Each replica takes up to its ceiling share, so the last
			// may hold a little less (3,334 + 3,334 + 3,332).
			share := (n + live - 1) / live
			for _, c := range h {
				if c > share {
					return false
				}
			}
			return true
		}
	}

	begin := time.Now()
	for i := range replicas {
		procs = append(procs, start(i))
	}
	h := watch.until("the fleet balanced", balanced(replicas))
	held := time.Since(begin)
	identify(t, procs, h)
	for _, p := range procs {
		waitConnected(t, p, h[p.name])
	}
	connected := time.Since(begin)
	t.Logf("%d accounts on %d replicas: all held after %v, all connected after %v", n, replicas, held.Round(10*time.Millisecond), connected.Round(10*time.Millisecond))
	for _, p := range procs {
		size, median, worst := scrapeStats(t, p, 5)
		t.Logf("replica pid %d: %d accounts, RSS %s, /metrics %d bytes (%d per account), scrape median %v max %v",
			p.cmd.Process.Pid, h[p.name], rss(t, p.cmd.Process.Pid), size, size/max(h[p.name], 1), median.Round(time.Millisecond), worst.Round(time.Millisecond))
	}

	var failovers []time.Duration
	for k := range kills {
		victim := k % len(procs)
		p := procs[victim]
		kill := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.wait()
		watch.until("the killed replica's accounts taken over", func(h map[string]int) bool {
			return h[p.name] == 0 && sum(h) == n
		})
		failovers = append(failovers, time.Since(kill))
		t.Logf("kill %d: every account held again after %v", k+1, failovers[k].Round(time.Millisecond))
		procs[victim] = start(replicas + k)
		h := watch.until("the restarted replica rebalanced", balanced(replicas))
		identify(t, procs, h)
	}
	if len(failovers) > 0 {
		slices.Sort(failovers)
		q := func(p float64) time.Duration {
			return failovers[int(p*float64(len(failovers)-1))].Round(time.Millisecond)
		}
		t.Logf("failover over %d kills: min %v, median %v, p90 %v, max %v", len(failovers), q(0), q(0.5), q(0.9), q(1))
	}
}

// measureEnv reads a whole-number setting of the measurement.
func measureEnv(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}

// waitConnected waits until the replica reports want clients connected.
// No event says a client connected, so this samples /metrics once a
// second: the "all connected" figure is good to that second. It runs only
// in this by-hand measurement, which skips in make test.
func waitConnected(t *testing.T, p *replicaProc, want int) {
	t.Helper()
	sample := time.NewTicker(time.Second)
	defer sample.Stop()
	deadline := time.After(10 * time.Minute) // a failure guard
	for {
		body, _ := scrape(t, p)
		got := 0
		for line := range strings.Lines(body) {
			if strings.HasPrefix(line, "tgsafety_client_connected{") && strings.HasSuffix(strings.TrimSpace(line), " 1") {
				got++
			}
		}
		if got >= want {
			return
		}
		select {
		case <-sample.C:
		case <-deadline:
			t.Fatalf("replica pid %d: %d of %d clients connected after 10 minutes", p.cmd.Process.Pid, got, want)
		}
	}
}

// scrape reads the replica's /metrics and how long that took.
func scrape(t *testing.T, p *replicaProc) (string, time.Duration) {
	t.Helper()
	begin := time.Now()
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), time.Since(begin)
}

// scrapeStats scrapes k times: the exposition's size, and the median and
// slowest scrape.
func scrapeStats(t *testing.T, p *replicaProc, k int) (size int, median, worst time.Duration) {
	t.Helper()
	var ds []time.Duration
	for range k {
		body, d := scrape(t, p)
		size = len(body)
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return size, ds[len(ds)/2], ds[len(ds)-1]
}

// rss is the process's resident set, from /proc.
func rss(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
