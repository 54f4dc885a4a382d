package api

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// docExample returns the first ```json block after the line of
// docs/api.md that contains marker, decoded.
func docExample(t *testing.T, marker string) any {
	t.Helper()
	b, err := os.ReadFile("../../../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("docs/api.md has no %q", marker)
	}
	start := strings.Index(doc[i:], "```json\n")
	if start < 0 {
		t.Fatalf("docs/api.md has no JSON example after %q", marker)
	}
	block := doc[i+start+len("```json\n"):]
	block = block[:strings.Index(block, "```")]
	var v any
	if err := json.Unmarshal([]byte(block), &v); err != nil {
		t.Fatalf("docs/api.md example after %q: %v", marker, err)
	}
	return v
}

// sameAsDoc compares a real answer with the documented example.
func sameAsDoc(t *testing.T, marker, body string) {
	t.Helper()
	var got any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if want := docExample(t, marker); !reflect.DeepEqual(got, want) {
		pretty, _ := json.MarshalIndent(got, "", "  ")
		t.Errorf("docs/api.md's example after %q is not what the API answers; the real answer:\n%s", marker, pretty)
	}
}

// The examples in docs/api.md are real answers: the same accounts, set up
// as the text describes, answer exactly the documented JSON (risk on its
// 0-100 scale, field names and shapes included).
func TestAPIDocExamplesAreRealAnswers(t *testing.T) {
	f := newAPIFixture(t, nil)
	f.mon.Remove("charlie")
	alpha, _ := f.mon.Lookup("alpha")
	alpha.ObserveSpamBot(fixture.Epoch, spambot.Result{State: spambot.LimitedTemporary, Until: fixture.Epoch.Add(48 * time.Hour)})
	bravo, _ := f.mon.Lookup("bravo")
	bravo.ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(420, "FLOOD_WAIT_30"))
	res := f.get("/api/v1/accounts")
	sameAsDoc(t, "    GET /api/v1/accounts\n", res.body)

	g := newAPIFixture(t, nil)
	ga, _ := g.mon.Lookup("alpha")
	ga.ObserveSignal(fixture.Epoch, "messages.sendMessage", fixture.Classify(400, "PEER_FLOOD"))
	if err := g.w.Close(context.Background()); err != nil { // everything recorded is stored
		t.Fatal(err)
	}
	res = g.get("/api/v1/accounts/alpha/events?since=2026-03-01T00:00:00Z&limit=100")
	sameAsDoc(t, "    GET /api/v1/accounts/{name}/events", res.body)
}
