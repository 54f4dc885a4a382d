package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"

	"github.com/tgsafety/tgsafety/scenarios/audit/internal/behave"
)

// failureGuard bounds a test's audit: generous, so that a loaded machine
// only makes it slower. Tests assert which rules broke and on what, never
// how long anything took.
const failureGuard = 3 * time.Minute

func fastPlan(t *testing.T) *Plan {
	t.Helper()
	p, err := LoadPlan("testdata/fast-plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// behaveAccounts turns an audit's Env into the test subjects' accounts.
func behaveAccounts(env *Env) []behave.Account {
	var out []behave.Account
	for _, a := range env.Accounts {
		out = append(out, behave.Account{Name: a.Name, Options: a.Options, Contacts: a.Contacts, Strangers: env.Usernames})
	}
	return out
}

func runFuncAudit(t *testing.T, fn func(ctx context.Context, accts []behave.Account, out *bytes.Buffer) error) (*Report, string) {
	t.Helper()
	var progress, out bytes.Buffer
	rep, err := Run(context.Background(), Options{Plan: fastPlan(t), For: failureGuard, Progress: &progress,
		Func: func(ctx context.Context, env *Env) error { return fn(ctx, behaveAccounts(env), &out) }})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s\nclient:\n%s\nreport:\n%s", progress.String(), out.String(), text.String())
	if !rep.Client.Exited {
		t.Fatalf("the client did not finish: %s", rep.Client.Stopped)
	}
	return rep, text.String()
}

func TestGoodGoClientPassesWithEveryFaultMetAndReactedTo(t *testing.T) {
	t.Parallel()
	rep, _ := runFuncAudit(t, func(ctx context.Context, accts []behave.Account, out *bytes.Buffer) error {
		return behave.Good(ctx, accts, out)
	})
	if !rep.Passed || len(rep.Findings) != 0 {
		t.Errorf("verdict %s; findings %+v", rep.Verdict(), rep.Findings)
	}
	if len(rep.Faults) != 7 {
		t.Fatalf("%d faults reported, want 7", len(rep.Faults))
	}
	for _, f := range rep.Faults {
		if f.Status != "met" || f.Good == nil || !*f.Good {
			t.Errorf("fault %s: %s, reaction %q (good %v)", f.Name, f.Status, f.Reaction, f.Good)
		}
	}
	if rep.Client.Error != "" {
		t.Errorf("client error: %s", rep.Client.Error)
	}
}

func TestBadGoClientBreaksExactlyTheRulesOfWhatItDid(t *testing.T) {
	t.Parallel()
	rep, text := runFuncAudit(t, func(ctx context.Context, accts []behave.Account, out *bytes.Buffer) error {
		return behave.Bad(ctx, accts, out)
	})
	assertBadVerdict(t, rep, text)
}

// assertBadVerdict checks the misbehaving client's report: exactly the
// three rules it broke, on acct-1, with the calls that broke them.
func assertBadVerdict(t *testing.T, rep *Report, text string) {
	t.Helper()
	if rep.Passed {
		t.Error("the bad client passed")
	}
	var got []string
	byRule := map[string]Finding{}
	for _, f := range rep.Findings {
		got = append(got, f.Account+" "+f.Rule+" "+string(f.Severity))
		byRule[f.Rule] = f
	}
	want := []string{"acct-1 flood-wait-retry error", "acct-1 peer-flood-ignored error", "acct-1 reconnect-storm error"}
	if !slices.Equal(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	for _, e := range byRule[idFloodWaitRetry].Evidence {
		if e.Method != "contacts.resolveUsername" || !strings.Contains(e.Note, "after FLOOD_WAIT_2") {
			t.Errorf("flood-wait-retry evidence %s", e)
		}
	}
	pf := byRule[idPeerFloodIgnored]
	if len(pf.Evidence) < 2 {
		t.Errorf("peer-flood-ignored: %d calls, want the writes after PEER_FLOOD", len(pf.Evidence))
	}
	for _, e := range pf.Evidence {
		if e.Method != "messages.sendMessage" {
			t.Errorf("peer-flood-ignored evidence %s", e)
		}
	}
	if rs := byRule[idReconnectStorm]; len(rs.Evidence) == 0 || rs.Evidence[0].Conn == 0 || !strings.Contains(rs.Evidence[0].Note, "connection opened") {
		t.Errorf("reconnect-storm evidence %+v", rs.Evidence)
	}
	for _, want := range []string{"FAILED: 3 error(s)", "✘ error flood-wait-retry", "why: called a method again before its FLOOD_WAIT expired"} {
		if !strings.Contains(text, want) {
			t.Errorf("the text report lacks %q", want)
		}
	}
	reacted := map[string]string{}
	for _, f := range rep.Faults {
		reacted[f.Name] = f.Mark() + " " + f.Reaction
	}
	if r := reacted["flood-wait"]; !strings.HasPrefix(r, "✘ called contacts.resolveUsername again") {
		t.Errorf("flood-wait reaction %q", r)
	}
	if r := reacted["peer-flood"]; !strings.HasPrefix(r, "✘ kept writing to strangers") {
		t.Errorf("peer-flood reaction %q", r)
	}
}

func TestReportMarshalsAndWritesOneJUnitCasePerRulePerAccount(t *testing.T) {
	b := newTrace("a", "b")
	b.call(0, 0, "contacts.resolveUsername", "FLOOD_WAIT_10")
	b.call(0, time.Second, "contacts.resolveUsername", "")
	b.t.attribute()
	fs := judge(b.t, map[string]Severity{idQRLogin: SeverityOff, idFloodWaitRetry: SeverityError})
	rep := &Report{Command: []string{"./bot"}, Plan: "none", Findings: fs, Rules: ruleResults(b.t, map[string]Severity{idQRLogin: SeverityOff}, fs)}
	var x bytes.Buffer
	if err := rep.WriteJUnit(&x); err != nil {
		t.Fatal(err)
	}
	var suites reporters.JUnitTestSuites
	if err := xml.Unmarshal(x.Bytes(), &suites); err != nil {
		t.Fatal(err)
	}
	s := suites.TestSuites[0]
	if s.Tests != 2*len(rules) || s.Failures != 1 || s.Skipped != 2 {
		t.Errorf("tests %d failures %d skipped %d", s.Tests, s.Failures, s.Skipped)
	}
	for _, tc := range s.TestCases {
		if tc.Name == "flood-wait-retry (a)" && (tc.Failure == nil || !strings.Contains(tc.Failure.Description, "contacts.resolveUsername")) {
			t.Errorf("case %+v", tc)
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}
