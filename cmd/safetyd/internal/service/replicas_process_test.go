package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture/fleet"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/store"
	"github.com/tgsafety/tgsafety/monitor/store/pgtest"
	"github.com/tgsafety/tgsafety/monitor/testbin"
)

// Replica processes: three real `safetyd run` processes share a fleet of
// 300 accounts on one PostgreSQL database and one simulated Telegram,
// while applications post reports to all of them. One is SIGKILLed, one
// is paused (SIGSTOP) past its leases' TTL and resumed. What must hold:
// every account is run by exactly one replica at a time (lease history,
// and the simulated Telegram sees no auth key used by two clients), the
// killed replica's accounts are run again within a TTL (plus the margin),
// the paused one writes nothing over their new holders (no account's
// event sequence has a number twice), and every acknowledged report is
// stored exactly once.

const (
	fleetSize  = 300
	leaseTTL   = 3 * time.Second
	leaseSlack = time.Second // store.lease_margin
)

// replicaProc is one safetyd process of the fleet.
type replicaProc struct {
	cmd    *exec.Cmd
	base   string
	out    *syncWriter // stderr
	exited chan error  // cmd.Wait's result
	name   string      // its replica name in the lease rows, once known
	gone   bool
}

// fleetWatch follows the lease rows: it wakes on every lease NOTIFY and
// reads who holds what.
type fleetWatch struct {
	t    *testing.T
	conn *pgx.Conn // LISTENs
	db   *pgx.Conn // reads
}

func watchFleet(t *testing.T, dsn string) *fleetWatch {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close(context.Background())
		_ = db.Close(context.Background())
	})
	if _, err := conn.Exec(ctx, "LISTEN "+store.LeaseChannel); err != nil {
		t.Fatal(err)
	}
	return &fleetWatch{t: t, conn: conn, db: db}
}

// holders returns how many live leases each replica holds.
func (w *fleetWatch) holders() map[string]int {
	w.t.Helper()
	rows, err := w.db.Query(context.Background(),
		"SELECT holder, count(*) FROM leases WHERE holder <> '' AND expires_ns > $1 GROUP BY holder", time.Now().UnixNano())
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var h string
		var n int
		if err := rows.Scan(&h, &n); err != nil {
			w.t.Fatal(err)
		}
		out[h] = n
	}
	return out
}

// until waits for cond on the lease rows, checking it after every lease
// notification; the 5 minutes are a failure guard, not a budget.
func (w *fleetWatch) until(what string, cond func(map[string]int) bool) map[string]int {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		h := w.holders()
		if cond(h) {
			return h
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		_, err := w.conn.WaitForNotification(ctx)
		cancel()
		if err != nil {
			w.t.Fatalf("%s: not after 5 minutes (holders %v): %v", what, h, err)
		}
	}
}

func sum(h map[string]int) int {
	n := 0
	for _, v := range h {
		n += v
	}
	return n
}

// Its first runs found what docs/operations.md ("Replicas: what the
// three-process test found") lists: renewals starved of connections,
// hand-overs applied one account at a time, a runner of an ended term
// reconnecting on its old MTProto session (AUTH_KEY_DUPLICATED), and an
// account started fresh when its restore failed.
func TestThreeReplicaProcessesShareTheFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three daemons")
	}
	rf := newProcFleet(t, fleetSize)
	dsn, names, watch := rf.dsn, rf.names, rf.watch

	var procs []*replicaProc
	for i := range 3 {
		procs = append(procs, rf.start(i))
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if !p.gone {
				_ = p.cmd.Process.Signal(syscall.SIGCONT)
				_ = p.cmd.Process.Kill()
				_ = p.wait()
			}
		}
	})
	h := watch.until("the fleet split three ways", func(h map[string]int) bool {
		return len(h) == 3 && sum(h) == fleetSize && h[maxKey(h)] == fleetSize/3
	})
	identify(t, procs, h)
	checkListing(t, procs[2], h)

	// Applications report to every replica throughout.
	load := startLoad(procs, names)

	// SIGKILL one replica: the others run its accounts within TTL plus
	// the margin of its last renewal.
	killed := procs[0]
	load.waitAcked(t, 500)
	kill := time.Now()
	if err := killed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = killed.wait()
	watch.until("the killed replica's accounts taken over", func(h map[string]int) bool {
		return h[killed.name] == 0 && sum(h) == fleetSize
	})
	failover := time.Since(kill)
	t.Logf("SIGKILL: all %d accounts held again after %v (TTL %v, margin %v)", fleetSize, failover.Round(time.Millisecond), leaseTTL, leaseSlack)

	// Pause another past its TTL: the last one takes its accounts; on
	// resuming it writes nothing over them and rejoins.
	paused, last := procs[1], procs[2]
	load.waitAcked(t, load.acked()+500)
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	watch.until("the paused replica's accounts taken over", func(h map[string]int) bool {
		return h[last.name] == fleetSize
	})
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	watch.until("the resumed replica rejoined", func(h map[string]int) bool {
		return len(h) == 2 && sum(h) == fleetSize && h[paused.name] == fleetSize/2
	})
	load.waitAcked(t, load.acked()+500)
	load.stop()

	// Stop the survivors (SIGTERM: each hands its leases back).
	for _, p := range []*replicaProc{paused, last} {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.wait(); err != nil {
			t.Errorf("replica %s: %v\n%s", p.name, err, p.log())
		}
	}

	if n := rf.f.Srv.DuplicatedKeys(); n != 0 {
		t.Errorf("the simulated Telegram refused %d messages with AUTH_KEY_DUPLICATED: an account ran on two replicas at once", n)
	}
	st, err := store.OpenPostgres(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkTerms(t, st)
	checkSequences(t, watch.db)
	checkReports(t, watch.db, load)
	t.Logf("reports: %d sent, %d acknowledged; the paused replica's log has %d refused writes",
		load.next.Load(), load.acked(), strings.Count(paused.log(), "lease moved to another replica"))
}

// procFleet is what the replica processes of a test share: a
// database, a simulated Telegram holding the fleet's accounts, their
// session files, the safetyd binary, and a watch on the lease rows.
type procFleet struct {
	t       *testing.T
	dsn     string
	names   []string
	f       *fleet.Accounts
	server  string // the simulated Telegram's address
	keyFile string
	bin     string
	dir     string
	watch   *fleetWatch
}

// newProcFleet sets up a fleet of n accounts (acct-00000, ...).
func newProcFleet(t *testing.T, n int) *procFleet {
	t.Helper()
	rf := &procFleet{t: t, dsn: pgtest.NewDatabase(t), names: make([]string, n), dir: t.TempDir()}
	for i := range rf.names {
		rf.names[i] = fmt.Sprintf("acct-%05d", i)
	}
	rf.f = fleet.NewAccounts(t, rf.names...)
	addr, err := rf.f.Srv.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rf.server = addr.String()
	rf.keyFile = fixture.WriteFile(t, rf.dir, "server.pem", string(rf.f.Srv.PublicKeyPEM()), 0o600)
	rf.bin = testbin.Path(t, "safetyd")
	rf.watch = watchFleet(t, rf.dsn)
	return rf
}

// start starts replica i (its own directory) and waits for READY=1.
func (rf *procFleet) start(i int) *replicaProc {
	return startReplicaProc(rf.t, rf.f, rf.bin, rf.dsn, rf.keyFile, rf.server, rf.names, filepath.Join(rf.dir, fmt.Sprint(i)))
}

func maxKey(h map[string]int) string {
	best, k := -1, ""
	for name, n := range h {
		if n > best {
			best, k = n, name
		}
	}
	return k
}

// startReplicaProc starts `safetyd run` for the fleet with its own
// session files and waits for READY=1.
func startReplicaProc(t *testing.T, f *fleet.Accounts, bin, dsn, keyFile, server string, names []string, dir string) *replicaProc {
	t.Helper()
	sessions := filepath.Join(dir, "sessions")
	if err := os.MkdirAll(sessions, 0o700); err != nil {
		t.Fatal(err)
	}
	port := fixture.FreePort(t)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "telegram:\n  api_id: 1\n  api_hash_env: TGS_API_HASH\n  simulated: {address: %q, public_key_file: %q}\n", server, keyFile)
	fmt.Fprintf(&cfg, "sessions_dir: %q\nstore:\n  driver: postgres\n  dsn_env: TGS_DSN\n  lease_ttl: %s\n  lease_margin: %s\n", sessions, leaseTTL, leaseSlack)
	level := "warn"
	if v := os.Getenv("TGSAFETY_MEASURE_LOG_LEVEL"); v != "" {
		level = v // TestMeasureReplicas, looking into a failure
	}
	fmt.Fprintf(&cfg, "http:\n  listen: %q\n  token_env: TGS_TOKEN\nlog:\n  level: %s\naccounts:\n", port, level)
	for i, n := range names {
		b, err := os.ReadFile(f.Cfg.SessionPath(n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sessions, n+".session"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "  - {name: %s, phone: \"+99977%05d\"}\n", n, i+1)
	}
	path := fixture.WriteFile(t, dir, "safetyd.yaml", cfg.String(), 0o600)
	cmd := exec.Command(bin, "run", "--config", path)
	notify, ready := testbin.NotifySocket(t)
	cmd.Env = append(os.Environ(), notify, "TGS_API_HASH=0123456789abcdef0123456789abcdef", "TGS_DSN="+dsn, "TGS_TOKEN="+fixture.Token)
	p := &replicaProc{cmd: cmd, base: "http://" + port, out: &syncWriter{w: &bytes.Buffer{}}}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p.exited = exited
	select {
	case <-ready:
	case err := <-exited:
		p.gone = true
		t.Fatalf("replica exited before it was ready (%v): %s", err, p.log())
	case <-time.After(5 * time.Minute):
		t.Fatalf("replica not ready within 5 minutes: %s", p.log())
	}
	return p
}

// log is what the process wrote to stderr so far.
func (p *replicaProc) log() string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return p.out.w.String()
}

// wait waits for the process to exit (after a signal that ends it).
func (p *replicaProc) wait() error {
	p.gone = true
	return <-p.exited
}

// syncWriter lets the test read a process's stderr while it writes.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// identify finds each process's replica name among the lease holders:
// it carries the process id (host/pid/random).
func identify(t *testing.T, procs []*replicaProc, h map[string]int) {
	t.Helper()
	for _, p := range procs {
		for name := range h {
			if strings.Contains(name, fmt.Sprintf("/%d/", p.cmd.Process.Pid)) {
				p.name = name
			}
		}
		if p.name == "" {
			t.Fatalf("no lease holder is process %d: %v", p.cmd.Process.Pid, h)
		}
	}
}

// checkListing checks a replica lists every account, naming the replica
// that runs each one it does not.
func checkListing(t *testing.T, p *replicaProc, h map[string]int) {
	t.Helper()
	var list struct {
		Accounts []struct{ Name, Replica string } `json:"accounts"`
	}
	fixture.GetJSON(t, p.base+"/api/v1/accounts", &list)
	if len(list.Accounts) != fleetSize {
		t.Fatalf("%s lists %d accounts, want %d", p.base, len(list.Accounts), fleetSize)
	}
	for _, a := range list.Accounts {
		if a.Replica != "" && h[a.Replica] == 0 {
			t.Errorf("%s lists %s as run by %s, which holds no lease", p.base, a.Name, a.Replica)
		}
	}
}

// fleetLoad posts reports, each a FLOOD_WAIT with a unique number of
// seconds, for random accounts to random live replicas.
type fleetLoad struct {
	next    atomic.Int64
	mu      sync.Mutex
	ackedID map[int64]string // id -> account
	// failures counts failed posts by error (the first kinds).
	failures map[string]int
	more     chan struct{} // signalled at every acknowledgement batch
	quit     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(procs []*replicaProc, names []string) *fleetLoad {
	l := &fleetLoad{ackedID: map[int64]string{}, failures: map[string]int{}, more: make(chan struct{}, 1), quit: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second} // a paused replica answers nothing
	for w := range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-l.quit:
					return
				default:
				}
				p := procs[r.IntN(len(procs))]
				ids := make([]int64, 20)
				accts := make([]string, len(ids))
				sigs := make([]map[string]any, len(ids))
				for i := range sigs {
					ids[i] = l.next.Add(1)
					accts[i] = names[r.IntN(len(names))]
					sigs[i] = map[string]any{"account": accts[i], "method": "messages.sendMessage", "code": 420,
						"message": fmt.Sprintf("FLOOD_WAIT_%d", ids[i])}
				}
				body, _ := json.Marshal(map[string]any{"signals": sigs})
				req, _ := http.NewRequest(http.MethodPost, p.base+"/api/v1/signals", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+fixture.Token)
				resp, err := client.Do(req)
				if err != nil {
					l.note(err.Error())
					continue // killed or paused
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					l.note(fmt.Sprintf("%d %s", resp.StatusCode, msg))
					continue
				}
				l.mu.Lock()
				for i, id := range ids {
					l.ackedID[id] = accts[i]
				}
				l.mu.Unlock()
				select {
				case l.more <- struct{}{}:
				default:
				}
			}
		}()
	}
	return l
}

// note counts a failed post by what went wrong, for the failure message.
func (l *fleetLoad) note(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 100 {
		l.failures[what]++
	}
}

func (l *fleetLoad) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ackedID)
}

// waitAcked waits until n reports are acknowledged.
func (l *fleetLoad) waitAcked(t *testing.T, n int) {
	t.Helper()
	guard := time.After(5 * time.Minute)
	for l.acked() < n {
		select {
		case <-l.more:
		case <-guard:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("only %d of %d reports acknowledged after 5 minutes; failed posts: %v", len(l.ackedID), n, l.failures)
		}
	}
}

func (l *fleetLoad) stop() {
	close(l.quit)
	l.wg.Wait()
}

// checkTerms checks the lease history: epochs grow, and each term began
// after its predecessor expired plus the margin or was released.
func checkTerms(t *testing.T, st *store.Postgres) {
	t.Helper()
	h, err := st.LeaseHistory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	handovers := 0
	for i, term := range h {
		if i == 0 || h[i-1].Account != term.Account {
			continue
		}
		handovers++
		if term.Epoch <= h[i-1].Epoch {
			t.Errorf("%s: epoch %d after %d", term.Account, term.Epoch, h[i-1].Epoch)
		}
		released := term.PrevExpires.UnixNano() == 0
		if !released && term.Taken.Before(term.PrevExpires.Add(leaseSlack)) {
			t.Errorf("%s epoch %d taken by %s at %v, before %s's lease expired (%v) plus the margin",
				term.Account, term.Epoch, term.Holder, term.Taken, term.PrevHolder, term.PrevExpires)
		}
	}
	t.Logf("lease history: %d terms, %d hand-overs", len(h), handovers)
}

// checkSequences checks that no account's event sequence has a number
// twice: a replica writing after it lost the lease would continue the
// sequence its successor continues too.
func checkSequences(t *testing.T, db *pgx.Conn) {
	t.Helper()
	rows, err := db.Query(context.Background(),
		"SELECT account, seq, count(*) FROM events WHERE seq IS NOT NULL GROUP BY account, seq HAVING count(*) > 1 LIMIT 10")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		var seq, n int64
		if err := rows.Scan(&a, &seq, &n); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s: event number %d stored %d times: two replicas wrote the account's history", a, seq, n)
	}
}

// checkReports checks every acknowledged report is stored exactly once
// (in its account's history, or still in the inbox for its next holder)
// and no report more than once.
func checkReports(t *testing.T, db *pgx.Conn, l *fleetLoad) {
	t.Helper()
	stored := map[int64]int{}
	for _, q := range []string{"SELECT body FROM events WHERE type = 'signal'", "SELECT body FROM inbox"} {
		rows, err := db.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var body []byte
			if err := rows.Scan(&body); err != nil {
				t.Fatal(err)
			}
			var e monitor.Event
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			stored[int64(e.Signal.Wait/time.Second)]++
		}
		rows.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var lost, twice []int64
	for id := range l.ackedID {
		if stored[id] == 0 {
			lost = append(lost, id)
		}
	}
	for id, n := range stored {
		if n > 1 {
			twice = append(twice, id)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
	if len(lost) > 0 || len(twice) > 0 {
		t.Fatalf("of %d acknowledged reports, %d are not stored (first %v), %d stored more than once", len(l.ackedID), len(lost), lost[:min(len(lost), 5)], len(twice))
	}
}
