package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv, set to 1, turns a missing PostgreSQL into a failure instead
// of a skip: `make test` sets it, so that CI cannot pass without running
// the PostgreSQL tests.
const RequireEnv = "TGSAFETY_REQUIRE_POSTGRES"

// startTimeout bounds the server's start-up (initdb and recovery on a cold,
// loaded machine); it waits for another process, not for the test's work.
const startTimeout = 2 * time.Minute

// Cluster is a throwaway PostgreSQL server listening only on a unix
// socket in its own temporary directory.
type Cluster struct {
	dir  string // removed by Stop
	sock string
	cmd  *exec.Cmd
	log  *os.File
	n    atomic.Int64 // databases created
	done chan error
}

// Start creates and starts a cluster. It fails with ErrNotInstalled when
// no PostgreSQL server binaries are found.
func Start() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tgsafety-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, sock: dir, done: make(chan error, 1)}
	cred, err := serverUser(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	c.log, err = os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", c.sock,
		"-c", "listen_addresses=", "-c", "max_connections=200", "-c", "shared_buffers=32MB")
	// The server dies with the test process, however that ends.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		c.cleanup()
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		c.cleanup()
		return nil, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	ready := make(chan struct{})
	go c.watch(stderr, ready)
	go func() { c.done <- c.cmd.Wait() }()
	select {
	case <-ready:
		return c, nil
	case err := <-c.done:
		c.done <- err
		c.cleanup()
		return nil, fmt.Errorf("pgtest: postgres exited before it was ready: %v (log: %s)", err, c.log.Name())
	case <-time.After(startTimeout):
		_ = c.Stop()
		return nil, fmt.Errorf("pgtest: postgres not ready after %v", startTimeout)
	}
}

// watch copies the server's log to the log file and closes ready at the
// line that says it accepts connections.
func (c *Cluster) watch(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	once := sync.Once{}
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(c.log, line)
		if strings.Contains(line, "database system is ready to accept connections") {
			once.Do(func() { close(ready) })
		}
	}
}

// DSN is the connection string of database db.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("host=%s user=postgres dbname=%s sslmode=disable", c.sock, db)
}

// NewDatabase creates an empty database and returns its DSN.
func (c *Cluster) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d", c.n.Add(1))
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return c.DSN(name), nil
}

// Stop shuts the server down (fast shutdown: sessions are cut) and
// removes its files.
func (c *Cluster) Stop() error {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(startTimeout):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	c.cleanup()
	return nil
}

func (c *Cluster) cleanup() {
	if c.log != nil {
		c.log.Close()
	}
	os.RemoveAll(c.dir)
}

// ErrNotInstalled says that no PostgreSQL server binaries were found.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL server binaries (initdb, postgres) not found: install Debian's postgresql package (make deps does)")

// binDir finds initdb and postgres: beside an initdb on PATH, from
// pg_config, or in Debian's /usr/lib/postgresql/VERSION/bin.
func binDir() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(r))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(debian) - 1; i >= 0; i-- { // the newest first
		dirs = append(dirs, debian[i])
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// serverUser returns the credential the server runs as: PostgreSQL
// refuses to run as root, so as root it runs as the postgres user (Debian's
// package creates it), owning dir; otherwise as the current user.
func serverUser(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root and there is no postgres user to run the server as: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: postgres user: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

var (
	sharedMu  sync.Mutex
	shared    *Cluster
	sharedErr error
)

// NewDatabase returns the DSN of a new, empty database on the package's
// shared cluster, started at the first call. Without PostgreSQL the test
// is skipped, or fails when RequireEnv is set. The package's TestMain
// must call Main so that the cluster stops at the end.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	sharedMu.Lock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start()
	}
	c, err := shared, sharedErr
	sharedMu.Unlock()
	if err != nil {
		if errors.Is(err, ErrNotInstalled) && os.Getenv(RequireEnv) != "1" {
			tb.Skip(err)
		}
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	dsn, err := c.NewDatabase(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return dsn
}

// Main runs the package's tests and stops the shared cluster, if one was
// started: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup stops the shared cluster, if one was started: for a TestMain
// that does more than Main.
func Cleanup() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		_ = shared.Stop()
		shared = nil
	}
}
