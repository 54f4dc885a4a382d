package main

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/monitor/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// The example works as its doc comment says: against a real
// `scenario-run serve`, it signs up, hears from SpamBot that the account
// is free, writes to strangers until PEER_FLOOD, stops, and then hears
// that it is limited.
func TestExampleAgainstServe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs scenario-run serve")
	}
	key := filepath.Join(t.TempDir(), "key.pem")
	cmd := exec.Command(testbin.Path(t, "scenario-run"), "serve", "--addr", "127.0.0.1:0", "--key-out", key)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	r, err := readReady(bufio.NewReader(stdout))
	if err != nil {
		t.Fatal(err)
	}
	// A failure guard only: the run itself is a few dozen local calls.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, r, "9996612345", &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"signed up +9996612345", "@SpamBot: Good news", "PEER_FLOOD after", "@SpamBot: "} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "@SpamBot: Good news") != 1 {
		t.Errorf("SpamBot still says free after PEER_FLOOD:\n%s", got)
	}
}

func TestReadReadyErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "no ready line",
		"{\n":                 "ready line",
		`{"addr":"x"}` + "\n": "run serve with --key-out",
	} {
		if _, err := readReady(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
