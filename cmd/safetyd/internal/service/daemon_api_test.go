package service

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
)

// The same with the daemon's own wiring: an account without a session
// stops its runner at once, and the scheduler it leaves behind no longer
// runs anything.
func TestProbeRequestForAccountWithoutSessionIs409(t *testing.T) {
	w := newDaemonWorld(t, "alpha", "bravo")
	if err := os.Remove(w.cfg.SessionPath("alpha")); err != nil {
		t.Fatal(err)
	}
	base, svc, stop := w.start(t)
	defer stop()
	svc.mu.Lock()
	r := svc.runners["alpha"]
	svc.mu.Unlock()
	<-r.Done() // the runner gave up: no session
	code, body := postProbe(t, base, "alpha")
	if code != http.StatusConflict || !strings.Contains(body, "not running") {
		t.Fatalf("probe for a stopped account: %d %s, want 409", code, body)
	}
	if code, body := postProbe(t, base, "bravo"); code != http.StatusAccepted {
		t.Fatalf("probe for a running account: %d %s, want 202", code, body)
	}
}

func postProbe(t *testing.T, base, name string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/accounts/"+name+"/probe", nil)
	req.Header.Set("Authorization", "Bearer "+fixture.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
