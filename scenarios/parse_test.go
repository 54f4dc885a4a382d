package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `name: minimal
accounts:
  - name: alice
steps:
  - login: alice
expect:
  - account: alice
    state: ok
`

func TestParseMinimalAppliesDefaults(t *testing.T) {
	s, err := Parse([]byte(minimal), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := s.Accounts[0]
	if s.Users != 300 || s.Seed != 1 || s.Profile != "default" || !s.HasLabel(LabelSim) ||
		a.Age != 730*24*time.Hour || a.Lang != "en" || a.Client != ClientNaive {
		t.Fatalf("defaults: %+v %+v", s, a)
	}
}

// Every bad file gets an error naming the file, the line and the field.
func TestParseErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown top-level field", minimal + "colour: red\n", `bad.yaml:9:1: colour: unknown field (known here: name, description`},
		{"unknown account field", strings.Replace(minimal, "  - name: alice", "  - name: alice\n    agee: 3d", 1),
			`bad.yaml:4:5: accounts[0].agee: unknown field`},
		{"unknown step", strings.Replace(minimal, "login: alice", "logon: alice", 1), `bad.yaml:5:5: steps[0]: unknown step "logon"`},
		{"unknown step field", strings.Replace(minimal, "  - login: alice", "  - login: alice\n  - send: {account: alice, to: non_contacts, cuont: 3}", 1),
			`bad.yaml:6:46: steps[1].send.cuont: unknown field (known here: account, to, count, over, rate, stop_on)`},
		{"bad duration", strings.Replace(minimal, "  - login: alice", "  - login: alice\n  - advance: 3 days", 1),
			`bad.yaml:6:14: steps[1].advance: invalid duration "3 days"`},
		{"bad state", strings.Replace(minimal, "state: ok", "state: fine", 1), `bad.yaml:8:12: expect[0].state: unknown state "fine"`},
		{"bad range", strings.Replace(minimal, "state: ok", "signals: {peer_flood: \">= many\"}", 1),
			`bad.yaml:8:27: expect[0].signals.peer_flood: "many" is not a number`},
		{"bad signal kind", strings.Replace(minimal, "state: ok", "signals: {peer_fluid: 1}", 1),
			`bad.yaml:8:15: expect[0].signals.peer_fluid: unknown signal kind "peer_fluid"`},
		{"undefined account", strings.Replace(minimal, "  - login: alice", "  - login: alice\n  - ban: bob", 1),
			`bad.yaml:6: steps[1].ban: no account "bob" in accounts`},
		{"not logged in", strings.Replace(minimal, "  - login: alice", "  - ask_spambot: alice", 1),
			"bad.yaml:5: steps[0].ask_spambot: account \"alice\" is not logged in yet; add `- login: alice` before this step"},
		{"phone as account name", strings.Replace(minimal, "alice", "+447700900123", -1), `bad.yaml:3:11: accounts[0].name:`},
		{"missing expect", strings.Split(minimal, "expect:")[0], `bad.yaml:1:1: expect: missing`},
		{"syntax", "name: [unclosed\n", `bad.yaml:1: YAML syntax:`},
		{"empty", "", `bad.yaml:1: empty scenario`},
		{"not a mapping", "- a\n- b\n", `bad.yaml:1:1: must be a mapping`},
		{"alias", minimal + "description: &d x\n", `bad.yaml:9:14: description: YAML anchors and aliases`},
		{"staging with control steps", strings.Replace(minimal, "name: minimal", "name: minimal\nlabels: [staging]", 1) +
			"", ""},
		{"staging with a ban", strings.Replace(strings.Replace(minimal, "name: minimal", "name: minimal\nlabels: [staging]", 1),
			"  - login: alice", "  - login: alice\n  - ban: alice", 1), `steps[1].ban: a scenario labelled staging may only`},
		{"over and rate", strings.Replace(minimal, "  - login: alice", "  - login: alice\n  - resolve: {account: alice, count: 3, over: 1h, rate: 1/m}", 1),
			`steps[1].resolve.rate: give over or rate, not both`},
		{"fault without kind", strings.Replace(minimal, "  - login: alice", "  - login: alice\n  - fault: {account: alice, method: messages.sendMessage}", 1),
			`steps[1].fault: give exactly one of error, drop: true, delay`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "bad.yaml")
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid file refused: %v", err)
				}
				return
			}
			var pe ParseErrors
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T), want ParseErrors", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
		})
	}
}

func TestParseReportsEveryProblemAtOnce(t *testing.T) {
	bad := strings.Replace(minimal, "  - name: alice", "  - name: alice\n    lang: de\n    client: reckless", 1)
	_, err := Parse([]byte(bad), "bad.yaml")
	var pe ParseErrors
	if !errors.As(err, &pe) || len(pe) != 2 {
		t.Fatalf("got %v, want two problems", err)
	}
}

func TestRanges(t *testing.T) {
	cases := []struct {
		text    string
		dur     bool
		in, out []float64
		wantErr bool
	}{
		{text: "5", in: []float64{5}, out: []float64{4, 6}},
		{text: "3..7", in: []float64{3, 5, 7}, out: []float64{2, 8}},
		{text: ">= 3", in: []float64{3, 100}, out: []float64{2}},
		{text: "> 3", in: []float64{4}, out: []float64{3}},
		{text: "<= 3", in: []float64{0, 3}, out: []float64{4}},
		{text: "< 3", in: []float64{2}, out: []float64{3}},
		{text: ">= 16h", dur: true, in: []float64{16 * 3600}, out: []float64{16*3600 - 1}},
		{text: "8m..10m", dur: true, in: []float64{480, 600}, out: []float64{479, 601}},
		{text: "7..3", wantErr: true},
		{text: "2.5", wantErr: true},
		{text: "-1", wantErr: true},
		{text: "< 0", wantErr: true},
		{text: "", wantErr: true},
	}
	for _, c := range cases {
		r, err := parseRange(c.text, c.dur, !c.dur)
		if (err != nil) != c.wantErr {
			t.Fatalf("%q: error %v", c.text, err)
		}
		for _, v := range c.in {
			if !r.Contains(v) {
				t.Errorf("%q should contain %v", c.text, v)
			}
		}
		for _, v := range c.out {
			if r.Contains(v) {
				t.Errorf("%q should not contain %v", c.text, v)
			}
		}
	}
}

// The library and the test files parse, and every step kind and
// expectation field is documented in docs/scenarios.md.
func TestLibraryParsesAndDocsCoverTheFormat(t *testing.T) {
	files, err := Find("library", "testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Error(err)
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "scenarios.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range StepKinds() {
		if !strings.Contains(string(doc), "`"+string(k)+"`") {
			t.Errorf("docs/scenarios.md does not document step %s", k)
		}
	}
	for _, f := range expectFields {
		if !strings.Contains(string(doc), "`"+f+"`") {
			t.Errorf("docs/scenarios.md does not document expectation field %s", f)
		}
	}
}

// FuzzParse: whatever the bytes, Parse returns a scenario or an error,
// never panics (the recover in Parse is a safety net; the fuzzer checks
// that it is never what answers).
func FuzzParse(f *testing.F) {
	files, _ := Find("library", "testdata")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(minimal))
	f.Add([]byte("name: x\naccounts: [{name: a}]\nsteps: [{advance: 1d}]\nexpect: [{account: a, risk: '< 1'}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz.yaml")
		if err == nil && s == nil {
			t.Fatal("nil scenario without an error")
		}
		if err != nil && strings.Contains(err.Error(), "internal parser error") {
			t.Fatalf("parser panicked: %v", err)
		}
	})
}

// On staging, advance waits in real time: the limit must leave room for
// the 5 minutes of advance the parser allows, plus logging in.
func TestStagingTimeoutCoversAdvanceAndLogin(t *testing.T) {
	staging := strings.Replace(minimal, "name: minimal", "name: minimal\nlabels: [staging]", 1)
	staging = strings.Replace(staging, "  - login: alice", "  - login: alice\n  - advance: 3m\n  - ask_spambot: alice\n  - advance: 2m", 1)
	s, err := Parse([]byte(staging), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := StagingConfig{AppID: 1, AppHash: "x", Phone: "9996621234"}
	cases := []struct {
		name string
		opts Options
		want time.Duration
	}{
		{"default timeout on staging", Options{Target: TargetStaging, Staging: cfg}, 5*time.Minute + StagingMargin + 30*time.Second},
		{"a longer timeout is kept", Options{Target: TargetStaging, Staging: cfg, Timeout: time.Hour}, time.Hour},
		{"the test server keeps the timeout", Options{}, 2 * time.Minute},
	}
	for _, c := range cases {
		r, err := NewRunner(c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.timeoutFor(s); got != c.want {
			t.Errorf("%s: timeout %s, want %s", c.name, got, c.want)
		}
	}
	if got := (&Runner{opts: Options{Target: TargetStaging, Timeout: 2 * time.Minute}}).timeoutFor(s); got <= maxStagingAdvance {
		t.Errorf("staging timeout %s does not exceed the %s of advance the parser allows", got, maxStagingAdvance)
	}
}

// When every population user is a contact there is no stranger: a send to
// non_contacts or an invite is refused at parse time, not silently sent
// to a contact.
func TestParseRefusesStrangersWhenEveryUserIsAContact(t *testing.T) {
	base := strings.Replace(minimal, "name: minimal", "name: minimal\nusers: 1", 1)
	base = strings.Replace(base, "  - name: alice", "  - name: alice\n    contacts: 1", 1)
	for _, c := range []struct{ step, want string }{
		{"send: {account: alice, to: non_contacts, count: 1}", "bad.yaml:8: steps[1].send: account \"alice\" has 1 contacts among 1 users: no stranger to write to (raise users above contacts)"},
		{"invite: {account: alice, count: 1}", "bad.yaml:8: steps[1].invite: account \"alice\" has 1 contacts among 1 users: no stranger to invite (raise users above contacts)"},
	} {
		_, err := Parse([]byte(strings.Replace(base, "  - login: alice", "  - login: alice\n  - "+c.step, 1)), "bad.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.step, err, c.want)
		}
	}
	// Writing to the contacts themselves is fine.
	if _, err := Parse([]byte(strings.Replace(base, "  - login: alice", "  - login: alice\n  - send: {account: alice, to: contacts, count: 1}", 1)), "ok.yaml"); err != nil {
		t.Errorf("send to contacts refused: %v", err)
	}
}

// stranger never falls back to a contact.
func TestStrangerIsNeverAContact(t *testing.T) {
	a := &acctRun{w: &world{usernames: []string{"u1", "u2"}}, spec: &Account{Name: "alice"}, contactNames: map[string]bool{"u1": true}}
	for range 3 {
		if name, err := a.stranger(); err != nil || name != "u2" {
			t.Fatalf("stranger: %q, %v; want u2", name, err)
		}
	}
	a.contactNames["u2"] = true
	if name, err := a.stranger(); err == nil {
		t.Fatalf("stranger with every user a contact: %q, want an error", name)
	}
	if name, err := (&acctRun{w: &world{}, spec: &Account{Name: "alice"}}).stranger(); err == nil {
		t.Fatalf("stranger with no population: %q, want an error", name)
	}
}

// The fault codes docs/scenarios.md lists for error messages.
func TestFaultDefaultCodes(t *testing.T) {
	for msg, want := range map[string]int{
		"FLOOD_WAIT_30": 420, "FLOOD_PREMIUM_WAIT_5": 420, "SLOWMODE_WAIT_10": 420, "FROZEN_METHOD_INVALID": 420,
		"USER_DEACTIVATED_BAN": 401, "AUTH_KEY_UNREGISTERED": 401, "SESSION_REVOKED": 401,
		"CHAT_WRITE_FORBIDDEN": 403, "USER_PRIVACY_RESTRICTED": 400,
		"INTERNAL": 500, "MSG_WAIT_RETRY": 500, "RPC_CALL_FAIL": 500, "TIMEOUT": 500,
		"PEER_FLOOD": 400, "USERNAME_NOT_OCCUPIED": 400,
	} {
		if got := defaultCode(msg); got != want {
			t.Errorf("defaultCode(%s) = %d, want %d", msg, got, want)
		}
	}
}

// Durations in failure messages keep their fractions of a second.
func TestRangeFormatKeepsFractionalSeconds(t *testing.T) {
	r := Range{Duration: true}
	for v, want := range map[float64]string{1.5: "1.5s", 0.25: "250ms", 3600: "1h0m0s", 0: "0s"} {
		if got := r.format(v); got != want {
			t.Errorf("format(%v) = %q, want %q", v, got, want)
		}
	}
	if got := (Range{}).format(2.5); got != "2.5" {
		t.Errorf("number format(2.5) = %q", got)
	}
}
