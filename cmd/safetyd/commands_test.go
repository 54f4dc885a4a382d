package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCheckConfigCommand(t *testing.T) {
	code, out, errOut := runCmd("check-config", "--config", fixture.ExamplePath)
	if code != 0 || errOut != "" ||
		out != "ok: 3 accounts (crm-bot-1, crm-bot-2, staging), store /var/lib/tgsafety/safetyd.db (retention 90d), "+
			"http 127.0.0.1:9464 (loopback, token required), guard observe (margin 0.8), limits profile default\n" {
		t.Errorf("example: %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// --resolve-secrets reads the environment.
	code, _, errOut = runCmd("check-config", "--config", fixture.ExamplePath, "--resolve-secrets")
	if code != 1 || !strings.Contains(errOut, fixture.ExamplePath+":14: telegram.api_hash_env: the environment variable named here is not set") {
		t.Errorf("unresolved secrets: %d %s", code, errOut)
	}
	for k, v := range fixture.ExampleEnv {
		t.Setenv(k, v)
	}
	code, out, errOut = runCmd("check-config", "--config", fixture.ExamplePath, "--resolve-secrets")
	if code != 0 || !strings.HasSuffix(out, ", secrets resolved (api_id, api_hash, 3 phone numbers, API token)\n") {
		t.Errorf("resolved: %d\n%s%s", code, out, errOut)
	}
	fixture.NoSecrets(t, "stdout", out)

	// Errors: one per line, prefixed with the file, exit 1.
	dir := t.TempDir()
	bad := fixture.WriteFile(t, dir, "bad.yaml", fixture.Base+"  - {name: a, phone: \""+fixture.PhoneA+"\"}\nguard: {mode: strict}\n", 0o644)
	code, out, errOut = runCmd("check-config", "--config", bad)
	want := bad + ":9: accounts[1].name: \"a\" is already the name of accounts[0]; names must be unique\n" +
		bad + ":9: accounts[1].phone: same number as accounts[0]; each account needs its own number\n" +
		bad + ":10: guard.mode: unknown mode \"strict\" (observe, enforce or off)\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("bad config: %d\nstdout: %s\nstderr: %s\nwant:\n%s", code, out, errOut, want)
	}
	fixture.NoSecrets(t, "stderr", errOut)

	// Warnings go to stderr and do not fail; --print shows the redacted config.
	warn := fixture.WriteFile(t, dir, "warn.yaml", fixture.Base+"http: {listen: '0.0.0.0:9464', token_env: T}\n", 0o644)
	code, out, errOut = runCmd("check-config", "--print", "--config", warn)
	if code != 0 || !strings.HasPrefix(errOut, warn+":9: warning: http.listen: 0.0.0.0:9464 is not a loopback address") ||
		!strings.Contains(out, "http 0.0.0.0:9464 (not loopback, token required)") || !strings.Contains(out, "phone: <redacted>") {
		t.Errorf("warning: %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	fixture.NoSecrets(t, "stdout", out)

	code, _, errOut = runCmd("check-config", "--config", filepath.Join(dir, "nope.yaml"))
	if code != 1 || !strings.Contains(errOut, "nope.yaml: cannot read the configuration") {
		t.Errorf("missing file: %d %s", code, errOut)
	}

	// Bad usage: exit 2.
	for _, args := range [][]string{
		{"check-config"},
		{"check-config", "--config"},
		{"check-config", "--cfg", fixture.ExamplePath},
		{"check-config", "--config", fixture.ExamplePath, "extra"},
	} {
		if code, _, errOut := runCmd(args...); code != 2 || !strings.Contains(errOut, "usage: safetyd check-config") {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
	if code, _, _ := runCmd("check-config", "-h"); code != 0 {
		t.Errorf("-h: %d", code)
	}
}

func TestCommands(t *testing.T) {
	if code, out, _ := runCmd("version"); code != 0 || !strings.HasPrefix(out, "safetyd dev") {
		t.Errorf("version: %d %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "run: --config FILE is required"},
		{[]string{"login", "--config", "x.yaml"}, "login: --config FILE and --account NAME are required"},
		{[]string{"demo", "--accounts", "0"}, "demo: --accounts 0: want 1 to 10000"},
		{[]string{"demo", "--speed", "0.5"}, "demo: --speed 0.5: want 1 to 100000"},
		{[]string{"demo", "--listen", "0.0.0.0:9464"}, "the demo serves loopback addresses only"},
		{[]string{"demo", "extra"}, `demo: unexpected argument "extra"`},
		{[]string{"demo", "--cpuprofile", "/nonexistent-dir/cpu.pprof"}, "demo: --cpuprofile: open /nonexistent-dir/cpu.pprof: no such file or directory"},
	} {
		if code, _, errOut := runCmd(tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: %d %q, want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	if code, _, errOut := runCmd(); code != 2 || !strings.HasPrefix(errOut, "usage: safetyd") {
		t.Errorf("no args: %d %q", code, errOut)
	}
	if code, _, errOut := runCmd("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown: %d %q", code, errOut)
	}
	if code, out, _ := runCmd("help"); code != 0 || !strings.Contains(out, "check-config --config FILE") {
		t.Errorf("help: %d %q", code, out)
	}
	if code, _, _ := runCmd("version", "x"); code != 2 {
		t.Errorf("version x: %d", code)
	}
}

// check-config --check-paths finds what would stop `run` (a missing store
// directory) or leave an account unmonitored (no session file), before a
// start.
func TestCheckConfigChecksPaths(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "safetyd.yaml")
	write := func(store, sessions string) {
		t.Helper()
		body := fmt.Sprintf(`telegram:
  api_id_env: TGSAFETY_TEST_API_ID
  api_hash_env: TGSAFETY_TEST_API_HASH
sessions_dir: %s
store:
  path: %s
accounts:
  - name: crm-bot-1
    phone_env: TGSAFETY_TEST_PHONE_1
`, sessions, store)
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func() (int, string) {
		var out, errb bytes.Buffer
		code := checkConfig([]string{"--config", cfgPath, "--check-paths"}, &out, &errb)
		return code, errb.String()
	}
	write(filepath.Join(dir, "missing", "history.db"), filepath.Join(dir, "missing", "sessions"))
	if code, out := run(); code != 1 || !strings.Contains(out, "store.path: directory") || !strings.Contains(out, "sessions_dir: directory") {
		t.Fatalf("missing directories: %d %s", code, out)
	}
	if err := os.MkdirAll(filepath.Join(dir, "lib", "sessions"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dir, "lib", "history.db"), filepath.Join(dir, "lib", "sessions"))
	code, out := run()
	if code != 0 || !strings.Contains(out, "no session for account crm-bot-1: it will not be monitored until you sign in with `safetyd login --account crm-bot-1`") {
		t.Fatalf("no session file: %d %s", code, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "lib", "sessions", "crm-bot-1.session"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := run(); code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("everything in place: %d %s", code, out)
	}
}

// An *_env key holding a pasted secret (config.TestSecretPastedIntoEnvKeyIsRefusedUnshown)
// is not shown by check-config, nor in the log line of a SIGHUP reload.
func TestSecretPastedIntoEnvKeyIsNotShownByCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := fixture.WriteFile(t, dir, "safetyd.yaml", "telegram: {api_id: 1, api_hash_env: "+fixture.HexSecret+"}\n"+fixture.BaseAccounts, 0o644)
	code, out, errOut := runCmd("check-config", "--config", cfg, "--resolve-secrets")
	if code != 1 || !strings.Contains(errOut, "looks like a secret") {
		t.Errorf("check-config: %d\n%s%s", code, out, errOut)
	}
	fixture.NoPastedSecret(t, "check-config", out+errOut)
}
