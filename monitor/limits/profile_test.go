package limits

import (
	"flag"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/limits.md from the embedded profile")

func TestDefaultProfileIsValidAndSourced(t *testing.T) {
	p := Default()
	for _, a := range []Action{DMContact, DMNonContact, ResolveUsername, JoinChannel, Invite, ImportContacts, CreateChat} {
		if _, ok := p.Actions[a]; !ok {
			t.Errorf("default profile lacks %s", a)
		}
	}
	if p.Actions[DMNonContact].Penalty != PenaltyPeerFlood || p.Actions[Invite].Penalty != PenaltyPeerFlood {
		t.Error("cold DMs and invites must be penalised with PEER_FLOOD")
	}
	// Young accounts are stricter.
	young := p.LimitsFor(DMNonContact, time.Hour)
	adult := p.LimitsFor(DMNonContact, 365*24*time.Hour)
	if young[len(young)-1].Max >= adult[len(adult)-1].Max {
		t.Errorf("young daily DM limit %d not below adult %d", young[len(young)-1].Max, adult[len(adult)-1].Max)
	}
}

func TestParseErrors(t *testing.T) {
	base := string(DefaultYAML())
	for name, c := range map[string]struct{ yaml, want string }{
		"unknown key":  {strings.Replace(base, "young_account_age: 30d", "young_account_age: 30d\nyoung_acount_age: 1d", 1), "p.yaml: line 14: field young_acount_age not found in type limits.Profile"},
		"bad duration": {strings.Replace(base, "lockout: 16h", "lockout: sixteen hours", 1), `invalid duration "sixteen hours"`},
		"no source": {strings.Replace(base, `source: "api/auth: about 5 logins per phone number per day; observed: auth.sendCode FLOOD_WAIT about 86,300 s"`, "source: \"\"", 1),
			"p.yaml: actions.send_code.limits[0].source: missing"},
		"bad penalty": {strings.Replace(base, "penalty: peer_flood", "penalty: ban", 1), `actions.dm_non_contact.penalty: unknown penalty "ban"`},
		"zero max":    {strings.Replace(base, "max: 5\n", "max: 0\n", 1), ".max: must be at least 1"},
		"empty":       {"", "p.yaml: empty limits profile"},
		"not a map":   {"- 1\n- 2\n", "p.yaml: line 1: cannot unmarshal"},
		"after perm":  {strings.Replace(base, "after_permanent: ban", "after_permanent: nothing", 1), `restrictions.after_permanent: must be ban or freeze, got "nothing"`},
		"probability": {strings.Replace(base, "probability: 0.03", "probability: 3", 1), "reports.probability: must be within 0-1"},
	} {
		_, err := Parse([]byte(c.yaml), "p.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want containing %q", name, err, c.want)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	if _, err := Load("/nonexistent/profile.yaml"); err == nil || !strings.Contains(err.Error(), "/nonexistent/profile.yaml") {
		t.Fatalf("Load error = %v", err)
	}
	path := t.TempDir() + "/p.yaml"
	if err := os.WriteFile(path, DefaultYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"3d": 72 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second} {
		d, err := ParseDuration(in)
		if err != nil || d.D() != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, d, err)
		}
	}
	for _, bad := range []string{"", "d", "xd", "3 days", "1d1d"} {
		if d, err := ParseDuration(bad); err == nil && bad != "" {
			t.Errorf("ParseDuration(%q) = %v, want error", bad, d)
		}
	}
	if s := Duration(72 * time.Hour).String(); s != "3d" {
		t.Errorf("String = %s", s)
	}
}

func TestScaled(t *testing.T) {
	p := Default()
	q := p.Scaled(0.8)
	if got := q.Actions[DMNonContact].Limits[1].Max; got != 32 {
		t.Errorf("80%% of 40 = %d", got)
	}
	if p.Actions[DMNonContact].Limits[1].Max != 40 {
		t.Error("Scaled modified the original")
	}
	if got := q.Actions[DMNonContact].Young[0].Max; got != 2 {
		t.Errorf("80%% of 3 = %d, want 2", got)
	}
}

func TestTracker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ls := []Limit{{Window: Duration(time.Minute), Max: 3, Source: "x"}, {Window: Duration(time.Hour), Max: 5, Source: "y"}}
	tr := NewTracker()
	keep := KeepFor(ls)
	for i := 0; i < 3; i++ {
		now := t0.Add(time.Duration(i) * 10 * time.Second)
		if v := tr.Check(now, Invite, ls, 1); !v.Allowed {
			t.Fatalf("action %d refused: %+v", i, v)
		}
		tr.Record(now, Invite, 1, keep)
	}
	v := tr.Check(t0.Add(30*time.Second), Invite, ls, 1)
	if v.Allowed || v.Limit.Max != 3 || !v.Retry.Equal(t0.Add(time.Minute)) {
		t.Fatalf("4th in a minute: %+v", v)
	}
	// Once the minute has moved on: two more fit the hour, the third does not.
	now := t0.Add(90 * time.Second)
	tr.Record(now, Invite, 2, keep)
	v = tr.Check(now, Invite, ls, 1)
	if v.Allowed || v.Limit.Max != 5 || !v.Retry.Equal(t0.Add(time.Hour)) {
		t.Fatalf("6th in an hour: %+v", v)
	}
	if u := tr.Series(Invite).Used(now, ls); u[1] != 1 {
		t.Fatalf("used = %v", u)
	}
	// A batch larger than the limit never fits.
	if v := NewTracker().Check(t0, ImportContacts, ls, 4); v.Allowed {
		t.Fatal("batch of 4 allowed under max 3")
	}
	// Two hours on, only the new one counts in the hour.
	later := t0.Add(2 * time.Hour)
	tr.Record(later, Invite, 1, keep)
	if u := tr.Series(Invite).Used(later, ls); u[1] != 1.0/5 {
		t.Fatalf("used two hours on = %v, want 1 of 5 in the hour", u)
	}
}

// A long-running tracker keeps bounded history and, once warm, records
// without allocating.
func TestTrackerBoundedAndAllocationFree(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ls := []Limit{{Window: Duration(time.Hour), Max: 50, Source: "x"}}
	keep := KeepFor(ls)
	tr := NewTracker()
	now := t0
	for i := 0; i < 10000; i++ {
		now = now.Add(2 * time.Minute) // 30 per hour: always allowed
		tr.Record(now, JoinChannel, 1, keep)
	}
	// 30 an hour within a 1 h window: compaction keeps about that many.
	if n := len(tr.history(JoinChannel)); n > 2*31 {
		t.Fatalf("history holds %d events, want at most %d", n, 2*31)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(2 * time.Minute)
		_ = tr.Check(now, JoinChannel, ls, 1)
		tr.Record(now, JoinChannel, 1, keep)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per check+record", allocs)
	}
}

// TestLimitsDocIsCurrent keeps docs/limits.md generated from the embedded
// profile: go test ./monitor/limits -run LimitsDoc -update rewrites it.
func TestLimitsDocIsCurrent(t *testing.T) {
	const path = "../../docs/limits.md"
	b, err := os.ReadFile(path)
	if err != nil && !*update {
		t.Fatal(err)
	}
	doc := string(b)
	const marker = "<!-- generated from monitor/limits/default.yaml; do not edit below -->\n"
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("%s lacks the generated-section marker", path)
	}
	want := doc[:i+len(marker)] + Default().Markdown()
	if doc == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is stale: run go test ./monitor/limits -run LimitsDoc -update", path)
}

func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	f.Add([]byte("name: x\nactions: {a: {penalty: flood_wait, limits: [{window: 1d, max: 1, source: s}]}}"))
	f.Add([]byte("young_account_age: -3d"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b, "fuzz.yaml")
		if err == nil {
			if p.Validate() != nil {
				t.Fatal("Parse returned an invalid profile")
			}
			_ = p.Markdown()
			_ = p.Scaled(0.5)
		}
	})
}

// One format for every duration tgsafety writes: compact, exact with
// units 0 (and read back by ParseDuration), rounded to the largest units
// for displays.
func TestFormatDuration(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		d     time.Duration
		units int
		want  string
	}{
		{0, 0, "0s"}, {42 * time.Second, 0, "42s"}, {90 * time.Second, 0, "1m30s"}, {5 * time.Minute, 0, "5m"},
		{12 * time.Hour, 0, "12h"}, {90 * time.Minute, 0, "1h30m"}, {time.Hour + time.Second, 0, "1h1s"},
		{3 * day, 0, "3d"}, {36 * time.Hour, 0, "1d12h"}, {-5 * time.Minute, 0, "-5m"}, {-36 * time.Hour, 0, "-1d12h"},
		{1500 * time.Millisecond, 0, "1.5s"}, {250 * time.Millisecond, 0, "250ms"}, {time.Minute + 500*time.Millisecond, 0, "1m500ms"},
		// Displays: two units from the largest, rounded to the second.
		{time.Hour + 5*time.Minute, 2, "1h5m"}, {3 * time.Hour, 2, "3h"}, {50 * time.Hour, 2, "2d2h"}, {48*time.Hour + 5*time.Minute, 2, "2d"},
		{1499 * time.Millisecond, 2, "1s"}, {400 * time.Millisecond, 2, "400ms"}, {2*day + 3*time.Hour + 4*time.Minute, 2, "2d3h"},
		// Scenario reports: every unit, to the second.
		{2*day + 3*time.Hour + 4*time.Minute + 5500*time.Millisecond, AllUnits, "2d3h4m6s"}, {time.Hour / 7, AllUnits, "8m34s"}, {500 * time.Millisecond, AllUnits, "500ms"},
	} {
		if got := FormatDuration(tc.d, tc.units); got != tc.want {
			t.Errorf("FormatDuration(%v, %d) = %q, want %q", tc.d, tc.units, got, tc.want)
		}
	}
	if s := Duration(36 * time.Hour).String(); s != "1d12h" {
		t.Errorf("Duration.String = %s", s)
	}
	for _, bad := range []string{"--1d", "-d", "-xd"} {
		if d, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want error", bad, d)
		}
	}
}

// FuzzFormatDuration checks that ParseDuration reads back every duration
// FormatDuration writes.
func FuzzFormatDuration(f *testing.F) {
	for _, d := range []int64{0, 1, int64(time.Second), int64(36 * time.Hour), -int64(time.Minute), 1<<63 - 1, -1 << 63, 1500000} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		d := time.Duration(n)
		if d == math.MinInt64 {
			return // written as -MaxInt64: one nanosecond off by design
		}
		s := FormatDuration(d, 0)
		back, err := ParseDuration(s)
		if err != nil || back.D() != d {
			t.Fatalf("FormatDuration(%d) = %q, read back as %v, %v", n, s, back.D(), err)
		}
	})
}
