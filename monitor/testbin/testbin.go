// Package testbin gives tests the project's own programs (safetyd,
// scenario-run) as real binaries, built once.
//
// A test that must see a program as other processes do (exit codes,
// signals, SIGKILL, flags) runs the binary. Building it inside each test,
// under go test's per-package timeout, made a first `make test` on a cold
// 2-core machine time out: gotd's generated code is compiled again for
// each build. So `make test` builds every binary once, before the tests,
// and names the directory in TGSAFETY_BIN_DIR; a test run without it
// (go test ./... by hand) builds each program once per test process, with
// a deadline of its own and a message saying what to do when it is slow.
//
// The package lives under monitor/ because every part of the project may
// import monitor (docs/architecture.md); it imports nothing of ours.
package testbin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvDir names the directory holding prebuilt binaries (set by make test).
const EnvDir = "TGSAFETY_BIN_DIR"

// BuildTimeout bounds one fallback build. A cold build of safetyd takes
// about 4 minutes on 2 quiet cores; this leaves room for a loaded machine.
const BuildTimeout = 20 * time.Minute

var (
	mu     sync.Mutex
	builds = map[string]*build{}
	tmpDir string
)

type build struct {
	once sync.Once
	path string
	err  error
}

// Path returns the path of the program built from ./cmd/<name> of this
// module, failing the test with a clear message when it cannot be had.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	p, err := Get(name)
	if err != nil {
		tb.Fatalf("testbin: %v", err)
	}
	return p
}

// Get is Path for callers without a testing.TB (a TestMain).
func Get(name string) (string, error) {
	if dir := os.Getenv(EnvDir); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s has no %s (make bins builds it): %w", EnvDir, dir, name, err)
		}
		return p, nil
	}
	mu.Lock()
	b, ok := builds[name]
	if !ok {
		b = &build{}
		builds[name] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.path, b.err = buildOnce("./cmd/"+name, name) })
	return b.path, b.err
}

// Package returns the path of a program built from pkg, a package path
// relative to the module root ("./scenarios/audit/internal/goodclient"),
// built once per test process: for the small programs tests run as
// subjects, which make test does not prebuild. It fails the test when
// the build fails.
func Package(tb testing.TB, pkg string) string {
	tb.Helper()
	if !strings.HasPrefix(pkg, "./") || strings.Contains(pkg, "..") {
		tb.Fatalf("testbin: package %q: want a path inside the module, such as ./scenarios/audit/internal/goodclient", pkg)
	}
	mu.Lock()
	b, ok := builds[pkg]
	if !ok {
		b = &build{}
		builds[pkg] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.path, b.err = buildOnce(pkg, path.Base(pkg)) })
	if b.err != nil {
		tb.Fatalf("testbin: %v", b.err)
	}
	return b.path
}

// buildOnce builds the package pkg into the fallback directory as name.
func buildOnce(pkg, name string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	mu.Lock()
	if tmpDir == "" {
		tmpDir, err = os.MkdirTemp("", "tgsafety-testbin-")
	}
	dir := tmpDir
	mu.Unlock()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	args := []string{"build", "-o", out}
	if raceBuild {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("building %s took over %v (a cold build cache on a slow machine?); run `make test`, which builds once before the tests, or set %s to a directory of prebuilt binaries", pkg, BuildTimeout, EnvDir)
		}
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
	}
	if d := time.Since(start); d > time.Minute {
		fmt.Fprintf(os.Stderr, "testbin: built %s in %v (make test builds once before the tests)\n", pkg, d.Round(time.Second))
	}
	return out, nil
}

// moduleRoot finds the directory of this module's go.mod from the test's
// working directory (its package directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Cleanup removes the fallback builds; a TestMain calls it after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if tmpDir != "" {
		_ = os.RemoveAll(tmpDir)
		tmpDir = ""
	}
}

// Main runs the tests and removes the fallback builds: a package whose
// tests use Path has `func TestMain(m *testing.M) { testbin.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Buffer collects a child process's output while the test reads it: safe
// for the exec package's copying goroutine and the test at once.
type Buffer struct {
	mu sync.Mutex
	b  []byte
}

// Write implements io.Writer.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
