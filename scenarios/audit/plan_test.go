package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/scenarios"
)

func TestDefaultPlanProvokesEachReactionOnce(t *testing.T) {
	p := DefaultPlan()
	got := map[Action]int{}
	for _, f := range p.Faults {
		got[f.Action]++
	}
	// PEER_FLOOD on a cold DM and "a limit" are both limits: the server's
	// policy answers PEER_FLOOD to the cold DM of a limited account.
	want := map[Action]int{ActError: 1, ActLimit: 2, ActDrop: 1, ActFreeze: 1, ActBan: 1, ActRevoke: 1}
	for a, n := range want {
		if got[a] != n {
			t.Errorf("%s: %d faults, want %d", a, got[a], n)
		}
	}
	if len(p.Faults) != 7 || len(p.Accounts) != 3 {
		t.Errorf("%d faults over %d accounts", len(p.Faults), len(p.Accounts))
	}
	var cold bool
	for _, f := range p.Faults {
		if f.On != nil && len(f.On.Methods) == 1 && f.On.Methods[0] == ColdDM && f.Action == ActLimit {
			cold = true
		}
	}
	if !cold {
		t.Error("no PEER_FLOOD on a cold DM")
	}
}

func TestParsePlanReadsEveryField(t *testing.T) {
	p, err := ParsePlan([]byte(`
accounts:
  - {name: alice, age: 10d, lang: ru, premium: true, contacts: 3}
faults:
  - name: wait
    account: alice
    on: {call: 3, methods: [contacts.resolveUsername, cold_dm]}
    error: FLOOD_WAIT_30
  - name: lim
    account: alice
    after: wait
    delay: 2s
    limit: permanent
  - {name: fr, account: alice, at: 1m, freeze: 14d}
  - {name: custom, account: alice, error: SOMETHING_ODD, code: 403}
rules:
  budget: error
  qr-login: off
`), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := p.Accounts[0]
	if a.Name != "alice" || a.Age != 10*24*time.Hour || a.Lang != "ru" || !a.Premium || a.Contacts != 3 {
		t.Errorf("account %+v", a)
	}
	w, l, fr, c := p.Faults[0], p.Faults[1], p.Faults[2], p.Faults[3]
	if w.Action != ActError || w.Error != "FLOOD_WAIT_30" || w.Code != 420 || w.On.Call != 3 || len(w.On.Methods) != 2 {
		t.Errorf("wait %+v on %+v", w, w.On)
	}
	if l.Action != ActLimit || l.For != 0 || l.After != "wait" || l.Delay != 2*time.Second {
		t.Errorf("lim %+v", l)
	}
	if fr.Action != ActFreeze || fr.For != 14*24*time.Hour || !fr.HasAt || fr.At != time.Minute {
		t.Errorf("fr %+v", fr)
	}
	if c.Code != 403 {
		t.Errorf("custom code %d", c.Code)
	}
	if p.Severity[idBudget] != SeverityError || p.Severity[idQRLogin] != SeverityOff {
		t.Errorf("severity %v", p.Severity)
	}
	if got := w.When(); got != "on the 3rd contacts.resolveUsername or cold_dm" {
		t.Errorf("When() = %q", got)
	}
}

func TestParsePlanErrorsNameFileLineAndField(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown field", "faults:\n  - {name: a, account: x, eror: FLOOD_WAIT_3}\n", "p.yaml:2:27: faults[0].eror: unknown key (did you mean error?)"},
		{"two actions", "faults:\n  - {name: a, account: x, ban: true, drop: true}\n", "p.yaml:2:5: faults[0]: give exactly one action"},
		{"no action", "faults:\n  - {name: a, account: x}\n", "p.yaml:2:5: faults[0]: give exactly one action"},
		{"bad error", "faults:\n  - {name: a, account: x, error: flood}\n", `p.yaml:2:34: faults[0].error: must be an RPC error message such as FLOOD_WAIT_30 or PEER_FLOOD, got "flood"`},
		{"after unknown", "faults:\n  - {name: a, account: x, after: b, ban: true}\n", `faults[0].after: no fault "b" before this one`},
		{"after and at", "faults:\n  - {name: a, account: x, ban: true}\n  - {name: b, account: x, at: 1s, after: a, ban: true}\n", "faults[1].after: give at or after, not both"},
		{"delay alone", "faults:\n  - {name: a, account: x, delay: 1s, ban: true}\n", "faults[0].delay: delay goes with after"},
		{"duplicate name", "faults:\n  - {name: a, account: x, ban: true}\n  - {name: a, account: x, ban: true}\n", `faults[1].name: fault "a" is already defined on line 2`},
		{"bad method", "faults:\n  - {name: a, account: x, on: {methods: [sendMessage]}, ban: true}\n", "faults[0].on.methods[0]: must be a TL method name"},
		{"call zero", "faults:\n  - {name: a, account: x, on: {call: 0}, ban: true}\n", "faults[0].on.call: must be within 1-100000, got 0"},
		{"ban false", "faults:\n  - {name: a, account: x, ban: false}\n", "faults[0].ban: must be true"},
		{"code alone", "faults:\n  - {name: a, account: x, ban: true, code: 420}\n", "faults[0].code: code goes with error"},
		{"unknown account", "accounts: [{name: alice}]\nfaults:\n  - {name: a, account: bob, ban: true}\n", `p.yaml:3: faults[0].account: no account "bob" in this plan's accounts (alice)`},
		{"phone as name", "accounts: [{name: '79991234567'}]\n", "accounts[0].name: account name looks like a phone number"},
		{"unknown rule", "rules: {budgte: off}\n", `rules.budgte: no rule "budgte"`},
		{"bad severity", "rules: {budget: fatal}\n", `rules.budget: severity must be error, warning or off, got "fatal"`},
		{"anchor", "faults:\n  - &f {name: a, account: x, ban: true}\n  - *f\n", "anchors and aliases"},
		{"syntax", "faults: [\n", "p.yaml:1: YAML syntax"},
		{"at too late", "faults:\n  - {name: a, account: x, at: 2d, ban: true}\n", "faults[0].at: must be at most 1d"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(c.yaml), "p.yaml")
			var pe scenarios.ParseErrors
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want ParseErrors", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("got\n%v\nwant it to contain\n%s", err, c.want)
			}
		})
	}
}

func TestPlanCheckNamesUnknownAccountsAndUnservedMethods(t *testing.T) {
	p, err := ParsePlan([]byte("faults:\n  - {name: a, account: acct-2, ban: true}\n  - {name: b, account: acct-1, on: {methods: [auth.exportLoginToken]}, error: FLOOD_WAIT_3}\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = p.check([]AccountSpec{{Name: "acct-1"}}, []string{"messages.sendMessage"})
	for _, want := range []string{`p.yaml:2: faults[0].account: no account "acct-2" in this audit (accounts: acct-1)`,
		"p.yaml:3: faults[1].on.methods[0]: the test server does not serve auth.exportLoginToken"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %s", err, want)
		}
	}
}

func TestLoadPlanKnowsTheBuiltInPlansAndReadsFiles(t *testing.T) {
	if p, err := LoadPlan("none"); err != nil || len(p.Faults) != 0 || p.File != "none" {
		t.Errorf("none: %+v, %v", p, err)
	}
	if p, err := LoadPlan("default"); err != nil || len(p.Faults) != 7 {
		t.Errorf("default: %v", err)
	}
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte("faults:\n  - {name: a, account: x, revoke: yes}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPlan(path); err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Errorf("got %v, want an error at %s:2", err, path)
	}
	if _, err := LoadPlan(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file loaded")
	}
}

func FuzzParsePlan(f *testing.F) {
	f.Add(DefaultPlanYAML())
	f.Add([]byte("faults:\n  - {name: a, account: x, on: {call: 2, methods: [cold_dm]}, limit: permanent}\nrules: {budget: off}\n"))
	f.Add([]byte("accounts: [{name: a, age: 1d, lang: ru}]\n"))
	f.Add([]byte("faults: [{name: a, account: b, after: a, delay: 1s, error: X_1, code: 500}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePlan(data, "fuzz.yaml")
		if err != nil {
			var pe scenarios.ParseErrors
			if !errors.As(err, &pe) || len(pe) == 0 {
				t.Fatalf("error is not ParseErrors: %v", err)
			}
			if strings.Contains(err.Error(), "internal parser error") {
				t.Fatalf("parser panicked: %v", err)
			}
			return
		}
		for _, f := range p.Faults {
			if f.Name == "" || f.Action == "" || f.Describe() == "" || f.When() == "" {
				t.Fatalf("accepted an incomplete fault %+v", f)
			}
		}
	})
}
