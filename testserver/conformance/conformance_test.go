package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/crypto"

	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/testbin"
)

// requireEnv makes a client that is not installed a failure instead of a
// skip. make test installs every client (make deps) and sets it, so CI
// never skips.
const requireEnv = "TGSAFETY_REQUIRE_CLIENTS"

// idleEnv overrides the idle step's length (a Go duration). It stays real
// time: what the step tests is that the server's read timeout and the
// clients' pings keep an idle connection open, and only the wall clock
// drives either.
const idleEnv = "TGSAFETY_CONFORMANCE_IDLE"

// defaultIdle is the idle of the issue: two minutes, above every client's
// ping interval (60 s) and tgtest's default read timeout (30 s).
const defaultIdle = 2 * time.Minute

// matrixEnv names a file the test writes the matrix to (Markdown), for
// docs/clients.md.
const matrixEnv = "TGSAFETY_CONFORMANCE_MATRIX"

// debianPython is Debian's interpreter, the one python3-telethon installs
// for (a python3 earlier on PATH, e.g. pyenv's, does not see it).
const debianPython = "/usr/bin/python3"

// clientsDir holds the client programs and the npm project.
const clientsDir = "clients"

// guard bounds every wait on a child process beyond the idle step. It is a
// failure guard only: nothing waits for it to pass.
const guard = 4 * time.Minute

// steps are the rows of the matrix, in the order the client programs run
// them. install and spambot_parse are checked by the test itself; the
// others are reported by the client program.
var steps = []string{
	"install", "connect", "send_code", "sign_up", "get_me", "resolve", "peer_flood", "flood_wait",
	"spambot_update", "spambot_history", "spambot_parse", "idle", "ban", "reconnect",
}

// client is one library under test.
type client struct {
	name  string // the matrix column
	phone string
	// install checks that the library is installed as make deps installs
	// it and returns its version, or why not.
	install func() (string, error)
	// argv runs the client program with the ready file, phone and idle
	// seconds.
	argv func(ready, phone string, idleSeconds int) []string
	// lowFingerprintFails: the library cannot match a server key whose
	// fingerprint starts with a zero nibble (mtcute 0.30.3 compares hex
	// strings, one with and one without leading zeros).
	lowFingerprintFails bool
}

var clients = []client{
	{
		name: "Telethon", phone: "9996621001",
		install: func() (string, error) {
			out, err := exec.Command(debianPython, "-c", "import telethon; print(telethon.__version__)").CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("%s cannot import telethon (apt-get install python3-telethon): %v: %s", debianPython, err, bytes.TrimSpace(out))
			}
			return "telethon " + strings.TrimSpace(string(out)), nil
		},
		argv: func(ready, phone string, idle int) []string {
			return []string{debianPython, "telethon_client.py", ready, phone, fmt.Sprint(idle)}
		},
	},
	{
		name: "GramJS", phone: "9996621002",
		install: func() (string, error) { return npmInstalled("telegram") },
		argv: func(ready, phone string, idle int) []string {
			return []string{"node", "gramjs_client.mjs", ready, phone, fmt.Sprint(idle)}
		},
	},
	{
		name: "mtcute", phone: "9996621003",
		install: func() (string, error) {
			v, err := npmInstalled("@mtcute/node")
			if err != nil {
				return "", err
			}
			// The layer is @mtcute/core's, which @mtcute/node 0.30.3 pins.
			core, err := installedVersion("@mtcute/core")
			if err != nil {
				return "", err
			}
			return v + ", @mtcute/core " + core, nil
		},
		argv: func(ready, phone string, idle int) []string {
			return []string{"node", "mtcute_client.mjs", ready, phone, fmt.Sprint(idle)}
		},
		lowFingerprintFails: true,
	},
}

// result is one cell of the matrix.
type result struct {
	OK     bool
	Detail string
}

// row is one client's column: step -> result.
type row map[string]result

func TestConformance(t *testing.T) {
	t.Parallel() // alongside the Telethon audit: both mostly wait in real time
	idle := defaultIdle
	if v := os.Getenv(idleEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d%time.Second != 0 {
			t.Fatalf("%s=%q: want a positive whole number of seconds as a Go duration, such as 2m or 90s", idleEnv, v)
		}
		idle = d
	}
	required := os.Getenv(requireEnv) != ""
	if testing.Short() && !required {
		t.Skipf("runs three client libraries for over %s; not in -short mode", idle)
	}

	versions := map[string]string{}
	var installed []client
	for _, c := range clients {
		v, err := c.install()
		if err != nil {
			if !required {
				t.Logf("%s not installed (%v); run make deps, or set %s=1 to make this a failure", c.name, err, requireEnv)
				continue
			}
			versions[c.name] = "not installed"
			t.Errorf("%s: install: %v", c.name, err)
			continue
		}
		versions[c.name] = v
		installed = append(installed, c)
	}
	if len(installed) == 0 && !required {
		t.Skip("no client library installed; make deps installs them")
	}

	bin := scenarioRun(t)
	rows := map[string]row{}
	var mu sync.Mutex
	// The clients run at the same time, each subtest from its own
	// goroutine rather than with t.Parallel, which -parallel (GOMAXPROCS,
	// 2 in CI) would limit: the suite's length is one idle, not three.
	var wg sync.WaitGroup
	for _, c := range clients {
		if versions[c.name] == "" { // skipped above: not installed, not required
			continue
		}
		wg.Go(func() {
			t.Run(c.name, func(t *testing.T) {
				r := row{}
				if versions[c.name] == "not installed" {
					for _, s := range steps {
						r[s] = result{false, "not run: needs install"}
					}
					r["install"] = result{false, "not installed (see the error above)"}
				} else {
					r["install"] = result{true, versions[c.name]}
					runClient(t, bin, c, idle, r)
				}
				for _, s := range steps {
					if _, ok := r[s]; !ok {
						r[s] = result{false, "not reported"}
					}
					if !r[s].OK {
						t.Errorf("%s: step %s failed: %s", c.name, s, r[s].Detail)
					}
				}
				mu.Lock()
				rows[c.name] = r
				mu.Unlock()
			})
		})
	}
	wg.Wait()

	matrix := formatMatrix(rows)
	t.Logf("conformance matrix (idle %s):\n%s", idle, matrix)
	if path := os.Getenv(matrixEnv); path != "" {
		if err := os.WriteFile(path, []byte(matrix), 0o644); err != nil {
			t.Errorf("%s: %v", matrixEnv, err)
		}
	}
}

// runClient runs one client program against its own `scenario-run serve`
// (its own world: the control API's ban and dropped connections touch no
// other client) and fills r with what it reports.
func runClient(t *testing.T, bin string, c client, idle time.Duration, r row) {
	dir := t.TempDir()
	srv, ready, err := startServeFor(t, bin, dir, c)
	if err != nil {
		r["connect"] = result{false, err.Error()}
		return
	}
	readyFile := filepath.Join(dir, "ready.json")
	if err := os.WriteFile(readyFile, ready.raw, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), idle+guard)
	defer cancel()
	argv := c.argv(readyFile, c.phone, int(idle/time.Second))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = clientsDir
	stderr := &testbin.Buffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r["connect"] = result{false, fmt.Sprintf("start %s: %v", argv[0], err)}
		return
	}

	var other []string // stdout lines that are not protocol lines
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "STEP "):
			name, res, err := parseStep(line)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if prev, ok := r[name]; ok && !prev.OK {
				continue // a control API failure already decided the step
			}
			r[name] = res
		case strings.HasPrefix(line, "WAIT "):
			name := strings.TrimPrefix(line, "WAIT ")
			if err := srv.prepare(name, c.phone); err != nil {
				r[name] = result{false, "control API: " + err.Error()}
			}
			if _, err := io.WriteString(stdin, "GO\n"); err != nil {
				t.Errorf("%s: write GO: %v", c.name, err)
			}
		default:
			other = append(other, line)
		}
	}
	_ = stdin.Close()
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		t.Errorf("%s: the client program ran over %s and was killed", c.name, idle+guard)
	} else if waitErr != nil {
		t.Errorf("%s: the client program: %v", c.name, waitErr)
	}
	r["spambot_parse"] = parseReplies(r)
	srv.stop(t)
	if t.Failed() {
		t.Logf("%s stderr (last 4 KiB):\n%s", c.name, tail(stderr.String(), 4<<10))
		if len(other) > 0 {
			t.Logf("%s other stdout (last 4 KiB):\n%s", c.name, tail(strings.Join(other, "\n"), 4<<10))
		}
	}
}

// parseStep reads `STEP <name> ok|fail <JSON string>`.
func parseStep(line string) (string, result, error) {
	parts := strings.SplitN(line, " ", 4)
	if len(parts) != 4 || (parts[2] != "ok" && parts[2] != "fail") {
		return "", result{}, fmt.Errorf("malformed step line %q: want STEP <name> ok|fail <JSON string>", line)
	}
	var detail string
	if err := json.Unmarshal([]byte(parts[3]), &detail); err != nil {
		return "", result{}, fmt.Errorf("step line %q: detail is not a JSON string: %v", line, err)
	}
	return parts[1], result{OK: parts[2] == "ok", Detail: detail}, nil
}

// parseReplies is the spambot_parse step: monitor/spambot.Parse must read
// SpamBot's reply, as the client decoded it from the update and from
// messages.getHistory, as limited (the account got PEER_FLOOD before).
func parseReplies(r row) result {
	var notes []string
	ok, seen := true, 0
	for _, s := range []string{"spambot_update", "spambot_history"} {
		if !r[s].OK {
			continue
		}
		seen++
		p := spambot.Parse(r[s].Detail, nil)
		note := fmt.Sprintf("%s: %s", strings.TrimPrefix(s, "spambot_"), p.State)
		if !p.Until.IsZero() {
			note += " until " + p.Until.Format(time.RFC3339)
		}
		if p.State != spambot.LimitedTemporary && p.State != spambot.LimitedPermanent {
			ok = false
			note += fmt.Sprintf(" (want limited; reply %q)", p.Raw)
		}
		notes = append(notes, note)
	}
	if seen == 0 {
		return result{false, "not run: needs spambot_update or spambot_history"}
	}
	return result{ok, strings.Join(notes, "; ")}
}

// readyLine is what the client programs read: serve's ready line, kept
// byte for byte.
type readyLine struct {
	Addr        string `json:"addr"`
	PublicKey   string `json:"public_key"`
	ControlAddr string `json:"control_addr"`
	raw         []byte
}

// server is a running `scenario-run serve`.
type server struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed once Wait has returned waitErr
	waitErr error
	stderr  *testbin.Buffer
	control string
	token   string
}

// startServeFor starts serve for client c. For a library that cannot match
// a fingerprint with a leading zero nibble it starts another server while
// serve still makes such keys (before `serve --key`, issue 14, about 1
// start in 16); once serve has --key, such a key is the server's failure.
func startServeFor(t *testing.T, bin, dir string, c client) (*server, readyLine, error) {
	fixedKeys := serveHasKeyFlag(t, bin)
	for attempt := 1; ; attempt++ {
		srv, ready := startServe(t, bin, dir)
		if !c.lowFingerprintFails {
			return srv, ready, nil
		}
		fp, err := fingerprint(ready.PublicKey)
		if err != nil {
			srv.stop(t)
			return nil, ready, err
		}
		if fp>>60 != 0 {
			return srv, ready, nil
		}
		srv.stop(t)
		if fixedKeys || attempt == 8 {
			return nil, ready, fmt.Errorf("server key fingerprint %016x starts with a zero nibble, which %s cannot match", fp, c.name)
		}
	}
}

// fingerprint is the server key's MTProto fingerprint, as unsigned.
func fingerprint(pemPath string) (uint64, error) {
	b, err := os.ReadFile(pemPath)
	if err != nil {
		return 0, err
	}
	keys, err := crypto.ParseRSAPublicKeys(b)
	if err != nil || len(keys) != 1 {
		return 0, fmt.Errorf("public key %s: %d keys, %v", pemPath, len(keys), err)
	}
	return uint64(crypto.RSAFingerprint(keys[0])), nil
}

var keyFlag = regexp.MustCompile(`(?m)^\s+-key(\s|$)`)

// serveHasKeyFlag reports whether serve takes --key FILE (issue 14).
func serveHasKeyFlag(t *testing.T, bin string) bool {
	out, err := exec.Command(bin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("scenario-run serve --help: %v\n%s", err, out)
	}
	return keyFlag.Match(out)
}

func startServe(t *testing.T, bin, dir string) (*server, readyLine) {
	t.Helper()
	token := randomToken(t)
	s := &server{done: make(chan struct{}), stderr: &testbin.Buffer{}, token: token}
	s.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--key-out", filepath.Join(dir, "key.pem"),
		"--control-addr", "127.0.0.1:0")
	// The token goes through the environment, as serve's help advises.
	s.cmd.Env = append(os.Environ(), "TGSAFETY_CONTROL_TOKEN="+token)
	s.cmd.Stderr = s.stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan []byte, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadBytes('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.kill() })
	var raw []byte
	select {
	case raw = <-lines:
	case <-time.After(guard):
		t.Fatalf("scenario-run serve printed no ready line within %s; stderr:\n%s", guard, s.stderr)
	}
	var ready readyLine
	if err := json.Unmarshal(raw, &ready); err != nil || ready.ControlAddr == "" {
		t.Fatalf("scenario-run serve ready line %q: %v; stderr:\n%s", raw, err, s.stderr)
	}
	ready.raw = raw
	s.control = ready.ControlAddr
	return s, ready
}

// prepare does on the server what the client waits for before a step.
func (s *server) prepare(step, phone string) error {
	switch step {
	case "ban":
		return s.post("accounts/ban", map[string]string{"phone": phone})
	case "reconnect":
		// Lift the ban of the step before, then cut every connection.
		if err := s.post("accounts/unban", map[string]string{"phone": phone}); err != nil {
			return err
		}
		return s.post("connections/drop", map[string]string{})
	default:
		return fmt.Errorf("the client waits for %q, which this test does not prepare", step)
	}
}

func (s *server) post(endpoint string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+s.control+"/control/v1/"+endpoint, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: guard}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %s", endpoint, resp.Status, bytes.TrimSpace(out))
	}
	return nil
}

// stop ends serve with SIGTERM and checks that it exits cleanly.
func (s *server) stop(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.waitErr != nil {
			t.Errorf("scenario-run serve exited with %v after SIGTERM; stderr:\n%s", s.waitErr, tail(s.stderr.String(), 4<<10))
		}
	case <-time.After(guard):
		t.Errorf("scenario-run serve did not exit within %s of SIGTERM", guard)
		s.kill()
	}
}

// kill ends serve unless it has exited.
func (s *server) kill() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// scenarioRun returns the scenario-run binary the suite runs: bin/'s
// from make test, else built once per test process (monitor/testbin). To
// measure the matrix against another build, point TGSAFETY_BIN_DIR at it.
func scenarioRun(t *testing.T) string {
	t.Helper()
	return testbin.Path(t, "scenario-run")
}

// npmInstalled checks that `npm ci` installed the version package.json
// pins, and that node runs.
func npmInstalled(pkg string) (string, error) {
	if out, err := exec.Command("node", "--version").CombinedOutput(); err != nil {
		return "", fmt.Errorf("node does not run (apt-get install nodejs): %v: %s", err, bytes.TrimSpace(out))
	}
	var manifest struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(clientsDir, "package.json"))
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		return "", fmt.Errorf("%s/package.json: %v", clientsDir, err)
	}
	want := manifest.Dependencies[pkg]
	got, err := installedVersion(pkg)
	if err != nil {
		return "", err
	}
	if got != want {
		return "", fmt.Errorf("%s %s is installed, package.json pins %s (run npm ci in %s)", pkg, got, want, clientsDir)
	}
	return pkg + " " + got, nil
}

// installedVersion reads the version of an installed npm package.
func installedVersion(pkg string) (string, error) {
	b, err := os.ReadFile(filepath.Join(clientsDir, "node_modules", pkg, "package.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s is not installed (npm ci --ignore-scripts in %s; make deps does it)", pkg, filepath.Join("testserver/conformance", clientsDir))
	}
	if err != nil {
		return "", err
	}
	var m struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Version == "" {
		return "", fmt.Errorf("%s: no version in its package.json (%v)", pkg, err)
	}
	return m.Version, nil
}

// formatMatrix renders the matrix as Markdown: a table of pass/FAIL, then
// every cell's detail.
func formatMatrix(rows map[string]row) string {
	var names []string
	for _, c := range clients {
		if _, ok := rows[c.name]; ok {
			names = append(names, c.name)
		}
	}
	var b strings.Builder
	b.WriteString("| step |")
	for _, n := range names {
		b.WriteString(" " + n + " |")
	}
	b.WriteString("\n|---|")
	for range names {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, s := range steps {
		b.WriteString("| " + s + " |")
		for _, n := range names {
			if rows[n][s].OK {
				b.WriteString(" pass |")
			} else {
				b.WriteString(" **FAIL** |")
			}
		}
		b.WriteString("\n")
	}
	for _, n := range names {
		fmt.Fprintf(&b, "\n%s:\n", n)
		for _, s := range steps {
			res := rows[n][s]
			verdict := "pass"
			if !res.OK {
				verdict = "FAIL"
			}
			fmt.Fprintf(&b, "- %s %s: %s\n", s, verdict, oneLine(res.Detail, 300))
		}
	}
	return b.String()
}

// oneLine flattens a detail for the matrix and cuts it at n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func randomToken(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestMain removes the binaries testbin built for this package's tests.
func TestMain(m *testing.M) { testbin.Main(m) }
