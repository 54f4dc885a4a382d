package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/probe"
)

func parse(t *testing.T, text string) (*Config, *ConfigError) {
	t.Helper()
	c, err := ParseConfig([]byte(text), "test.yaml")
	if err == nil {
		return c, nil
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T, not *ConfigError: %v", err, err)
	}
	if c != nil {
		t.Errorf("config returned with an error")
	}
	return nil, ce
}

func TestExampleLoadsAndValidates(t *testing.T) {
	c, err := LoadConfig(fixture.ExamplePath)
	if err != nil {
		t.Fatalf("docs/examples/safetyd.yaml: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("the example has warnings: %v", w)
	}
	if len(c.Accounts) != 3 {
		t.Fatalf("accounts: %d, want 3", len(c.Accounts))
	}
	a := c.Accounts[0]
	if a.Name != "crm-bot-1" || a.PhoneEnv != "TGSAFETY_PHONE_CRM1" || a.DC != DCProduction ||
		strings.Join(a.Tags, ",") != "crm,eu" || !a.Created.Equal(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("accounts[0] = %+v", a)
	}
	if c.Accounts[1].DC != DCProduction || c.Accounts[2].DC != DCTest {
		t.Errorf("dc: %s, %s", c.Accounts[1].DC, c.Accounts[2].DC)
	}
	if c.Telegram.APIID != 12345 || c.Telegram.APIHashEnv != "TGSAFETY_API_HASH" {
		t.Errorf("telegram = %+v", c.Telegram)
	}
	if c.SessionsDir != DefaultSessionsDir || c.Store.Path != DefaultStorePath || c.Store.Retention != DefaultRetention {
		t.Errorf("paths: %s %+v", c.SessionsDir, c.Store)
	}
	if c.HTTP.Listen != DefaultListen || c.HTTP.TokenEnv != "TGSAFETY_API_TOKEN" {
		t.Errorf("http = %+v", c.HTTP)
	}
	if c.Guard.Mode != GuardObserve || c.Guard.Margin != guard.DefaultMargin || c.Guard.MaxWait != 0 {
		t.Errorf("guard = %+v", c.Guard)
	}
	if c.Log.Level != "info" || c.LimitsProfile != "" || c.Profile == nil || c.Profile.Name != limits.Default().Name {
		t.Errorf("log %q, profile %q", c.Log.Level, c.LimitsProfile)
	}
	// The example spells out the defaults; they must be the defaults.
	def := probe.DefaultSchedules()
	for _, k := range ProbeKinds {
		if got := c.Probes[k].Schedule(); got != def[k] {
			t.Errorf("probes.%s = %+v, want the default %+v", k, got, def[k])
		}
	}
	if _, err := c.ResolveSecrets(fixture.EnvFunc(fixture.ExampleEnv)); err != nil {
		t.Errorf("ResolveSecrets: %v", err)
	}
	// `safetyd run` needs no phone numbers (only login does).
	noPhones := map[string]string{"TGSAFETY_API_HASH": fixture.Hash, "TGSAFETY_API_TOKEN": fixture.Token}
	if _, err := c.ResolveSecrets(fixture.EnvFunc(noPhones)); err == nil || !strings.Contains(err.Error(), "accounts[0].phone_env: the environment variable named here is not set") {
		t.Errorf("ResolveSecrets without phones: %v, want an error at accounts[0].phone_env", err)
	}
	if s, err := c.Resolve(fixture.EnvFunc(noPhones), false); err != nil || s.APIHash.Reveal() != fixture.Hash || len(s.Phones) != 0 {
		t.Errorf("resolveSecrets for run: %v %v", s, err)
	}
}

// TestDefaults: everything left out gets its documented default.
func TestDefaults(t *testing.T) {
	c, ce := parse(t, fixture.Base)
	if ce != nil {
		t.Fatal(ce)
	}
	want := DefaultConfig()
	if c.SessionsDir != want.SessionsDir || c.Store != want.Store || c.HTTP.Listen != DefaultListen ||
		c.Guard != want.Guard || c.Log != want.Log || c.LimitsProfile != "" {
		t.Errorf("defaults not filled in: %+v", c)
	}
	if c.Guard.Mode != GuardObserve || c.Guard.Margin != 0.8 || c.Store.Retention.String() != "90d" {
		t.Errorf("guard %+v, retention %s", c.Guard, c.Store.Retention)
	}
	if c.Accounts[0].DC != DCProduction {
		t.Errorf("dc default %q", c.Accounts[0].DC)
	}
	if got := c.Schedules(); fmt.Sprint(got) != fmt.Sprint(probe.DefaultSchedules()) {
		t.Errorf("Schedules() = %v", got)
	}
	// A partial override keeps the other fields' defaults.
	c, ce = parse(t, fixture.Base+"probes:\n  spambot: {interval: 12h}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	s := c.Schedules()[monitor.ProbeSpamBot]
	if s.Interval != 12*time.Hour || s.Jitter != time.Hour || s.Floor != 30*time.Minute {
		t.Errorf("spambot schedule %+v", s)
	}
	if s := c.Schedules()["self"]; s.Floor != time.Minute {
		t.Errorf("self schedule %+v", s)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	acct := func(fields string) string { return fixture.BaseTelegram + "accounts:\n  - name: a\n" + fields }
	cases := []struct {
		name, text, path, msg string
	}{
		{"unknown top-level key", fixture.Base + "stroe: {}\n", "stroe", "unknown key (did you mean store?)"},
		{"unknown nested key", fixture.Base + "store: {paht: x}\n", "store.paht", "unknown key (did you mean path?)"},
		{"unknown account key", acct("    phone: \"" + fixture.PhoneA + "\"\n    nmae: b\n"), "accounts[0].nmae", "did you mean name?"},
		{"duplicate key", fixture.Base + "log: {level: info}\nlog: {level: debug}\n", "log", "appears twice"},
		{"merge key", fixture.Base + "store:\n  <<: {path: x}\n", "store.<<", "merge keys"},
		{"inline api_hash refused", fixture.Base + "", "", ""}, // replaced below
		{"inline token refused", fixture.Base + "http:\n  token: abc\n", "http.token", "inline token is refused"},
		{"missing api_id", "telegram: {api_hash_env: H}\n" + fixture.BaseAccounts, "telegram.api_id", "missing"},
		{"two api_id sources", "telegram: {api_id: 1, api_id_env: ID, api_hash_env: H}\n" + fixture.BaseAccounts, "telegram.api_id", "only one"},
		{"negative api_id", "telegram: {api_id: -4, api_hash_env: H}\n" + fixture.BaseAccounts, "telegram.api_id", "positive"},
		{"api_id not a number", "telegram: {api_id: abc, api_hash_env: H}\n" + fixture.BaseAccounts, "telegram.api_id", "expected an integer"},
		{"missing api_hash", "telegram: {api_id: 1}\n" + fixture.BaseAccounts, "telegram.api_hash", "missing"},
		{"two api_hash sources", "telegram: {api_id: 1, api_hash_env: H, api_hash_file: f}\n" + fixture.BaseAccounts, "telegram.api_hash", "only one"},
		{"bad env name", "telegram: {api_id: 1, api_hash_env: 'my hash'}\n" + fixture.BaseAccounts, "telegram.api_hash_env", "not an environment variable name"},
		{"telegram not a mapping", "telegram: [1]\n" + fixture.BaseAccounts, "telegram", "expected key: value pairs, got a list"},
		{"no accounts key", fixture.BaseTelegram, "accounts", "at least one account"},
		{"empty accounts", fixture.BaseTelegram + "accounts: []\n", "accounts", "at least one account"},
		{"accounts not a list", fixture.BaseTelegram + "accounts: {name: a}\n", "accounts", "expected a list of accounts"},
		{"account missing name", fixture.Base + "  - phone: \"" + fixture.PhoneB + "\"\n", "accounts[1].name", "missing"},
		{"bad account name", fixture.Base + "  - name: 'a b'\n    phone: \"" + fixture.PhoneB + "\"\n", "accounts[1].name", "not allowed"},
		{"name like a phone", fixture.Base + "  - name: \"+1 555 000 3333\"\n    phone: \"" + fixture.PhoneB + "\"\n", "accounts[1].name", "looks like a phone number"},
		{"name starting with a dot", fixture.Base + "  - name: .hidden\n    phone: \"" + fixture.PhoneB + "\"\n", "accounts[1].name", "must not start with '.'"},
		{"duplicate name", fixture.Base + "  - name: a\n    phone: \"" + fixture.PhoneB + "\"\n", "accounts[1].name", `"a" is already the name of accounts[0]`},
		{"missing phone", acct(""), "accounts[0].phone", "missing: set phone"},
		{"phone and phone_env", acct("    phone: \"" + fixture.PhoneA + "\"\n    phone_env: P\n"), "accounts[0].phone", "only one of phone and phone_env"},
		{"not a phone", acct("    phone: \"+1555000111x\"\n"), "accounts[0].phone", "not a phone number"},
		{"phone as a list", acct("    phone: [\"" + fixture.PhoneA + "\"]\n"), "accounts[0].phone", "expected the phone number as a single value"},
		{"duplicate phone", fixture.Base + "  - name: b\n    phone: \"+1 (555) 000-1111\"\n", "accounts[1].phone", "same number as accounts[0]"},
		{"bad dc", acct("    phone_env: P\n    dc: prod\n"), "accounts[0].dc", `unknown data centre "prod" (production or test)`},
		{"empty dc", acct("    phone_env: P\n    dc: ''\n"), "accounts[0].dc", "missing"},
		{"bad tag", acct("    phone_env: P\n    tags: [ok, 'no way']\n"), "accounts[0].tags[1]", "not allowed"},
		{"duplicate tag", acct("    phone_env: P\n    tags: [eu, eu]\n"), "accounts[0].tags[1]", `duplicate tag "eu"`},
		{"tags not a list", acct("    phone_env: P\n    tags: eu\n"), "accounts[0].tags", "expected a list"},
		{"bad created", acct("    phone_env: P\n    created: last year\n"), "accounts[0].created", "not a date"},
		{"future created", acct("    phone_env: P\n    created: 2999-01-01\n"), "accounts[0].created", "in the future"},
		{"empty sessions_dir", fixture.Base + "sessions_dir: ''\n", "sessions_dir", "missing"},
		{"empty store path", fixture.Base + "store: {path: ''}\n", "store.path", "missing"},
		{"short retention", fixture.Base + "store: {retention: 12h}\n", "store.retention", "12h is less than 1d"},
		{"bad retention", fixture.Base + "store: {retention: forever}\n", "store.retention", `"forever" is not a duration`},
		{"bad listen", fixture.Base + "http: {listen: localhost}\n", "http.listen", "not host:port"},
		{"bad port", fixture.Base + "http: {listen: '127.0.0.1:99999'}\n", "http.listen", "not a number from 1 to 65535"},
		{"empty listen", fixture.Base + "http: {listen: ''}\n", "http.listen", "missing"},
		{"public listen without token", fixture.Base + "http: {listen: '0.0.0.0:9464'}\n", "http.token", "required because http.listen 0.0.0.0:9464 is not a loopback address"},
		{"all interfaces without token", fixture.Base + "http: {listen: ':9464'}\n", "http.token", "required"},
		{"two token sources", fixture.Base + "http: {token_env: T, token_file: f}\n", "http.token", "only one of token_env and token_file"},
		{"allowed host with a port", fixture.Base + "http: {allowed_hosts: [ok.example, 'bad.example:80']}\n", "http.allowed_hosts[1]", "not a host name"},
		{"allowed host with a scheme", fixture.Base + "http: {allowed_hosts: ['https://x.example']}\n", "http.allowed_hosts[0]", "no scheme"},
		{"too few connections", fixture.Base + "http: {max_connections: 2}\n", "http.max_connections", "must be from 8 to 65536"},
		{"floor above interval", fixture.Base + "probes:\n  spambot: {interval: 6h, floor: 8h}\n", "probes.spambot.interval", "6h is shorter than floor 8h"},
		{"spambot floor lowered", fixture.Base + "probes:\n  spambot: {floor: 10m}\n", "probes.spambot.floor", "10m is below the minimum of 30m: each SpamBot probe is a /start message to @SpamBot"},
		{"freeze floor lowered", fixture.Base + "probes:\n  freeze: {floor: 1m}\n", "probes.freeze.floor", "help.getAppConfig"},
		{"sessions floor lowered", fixture.Base + "probes:\n  sessions: {floor: 0s}\n", "probes.sessions.floor", "account.getAuthorizations"},
		{"interval below default floor", fixture.Base + "probes:\n  spambot: {interval: 10m}\n", "probes.spambot.interval", "below the spambot probe's floor of 30m, so runs could not come that often"},
		{"negative jitter", fixture.Base + "probes:\n  sessions: {jitter: -5m}\n", "probes.sessions.jitter", "must not be negative"},
		{"unknown probe kind", fixture.Base + "probes:\n  self: {floor: 1m}\n", "probes.self", "unknown key; known keys here: spambot, freeze, sessions"},
		{"unknown probe field", fixture.Base + "probes:\n  spambot: {every: 1h}\n", "probes.spambot.every", "unknown key"},
		{"bad guard mode", fixture.Base + "guard: {mode: audit}\n", "guard.mode", `unknown mode "audit" (observe, enforce or off)`},
		{"zero margin", fixture.Base + "guard: {margin: 0}\n", "guard.margin", "must be more than 0 and at most 1"},
		{"margin above 1", fixture.Base + "guard: {margin: 1.5}\n", "guard.margin", "got 1.5"},
		{"margin not a number", fixture.Base + "guard: {margin: high}\n", "guard.margin", `expected a number, got "high"`},
		{"negative max_wait", fixture.Base + "guard: {max_wait: -1s}\n", "guard.max_wait", "must not be negative"},
		{"bad log level", fixture.Base + "log: {level: verbose}\n", "log.level", `unknown level "verbose"`},
		{"missing limits profile", fixture.Base + "limits_profile: /nonexistent/profile.yaml\n", "limits_profile", "/nonexistent/profile.yaml"},
		{"second document", fixture.Base + "---\nlog: {level: info}\n", "", "a second YAML document"},
		{"root not a mapping", "- a\n- b\n", "", "the configuration must be key: value pairs"},
	}
	cases[5] = struct{ name, text, path, msg string }{
		"inline api_hash refused", "telegram:\n  api_id: 1\n  api_hash: " + fixture.Hash + "\n" + fixture.BaseAccounts,
		"telegram.api_hash", "inline api_hash is refused: configuration files end up in backups, tickets and version control",
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, ce := parse(t, tc.text)
			if ce == nil {
				t.Fatalf("no error for:\n%s", tc.text)
			}
			fixture.NoSecrets(t, "error", ce.Error())
			for _, p := range ce.Problems {
				if p.Path == tc.path && strings.Contains(p.Msg, tc.msg) {
					if !strings.Contains(ce.Error(), "test.yaml") {
						t.Errorf("error does not name the file: %s", ce)
					}
					return
				}
			}
			t.Errorf("no problem at %q containing %q; got:\n%s", tc.path, tc.msg, ce)
		})
	}
}

func TestSyntaxAndEmpty(t *testing.T) {
	_, ce := parse(t, fixture.Base+"log: [unclosed\n")
	if ce == nil || len(ce.Problems) != 1 || ce.Problems[0].Line == 0 || !strings.Contains(ce.Problems[0].Msg, "YAML syntax") {
		t.Errorf("syntax error: %v", ce)
	}
	// The parser quotes anchors; a number there is not shown.
	_, ce = parse(t, fixture.BaseTelegram+"accounts:\n  - name: a\n    phone: *"+fixture.PhoneADigits+"\n")
	if ce == nil || !strings.Contains(ce.Error(), "YAML syntax: unknown anchor '(number not shown)'") {
		t.Errorf("anchor: %v", ce)
	}
	// A second document is reported with the first one's problems.
	_, ce = parse(t, fixture.Base+"guard: {mode: x}\n---\nlog: {}\n")
	if ce == nil || len(ce.Problems) != 2 || ce.Problems[0].Path != "guard.mode" || !strings.Contains(ce.Problems[1].Msg, "second YAML document") {
		t.Errorf("second document: %v", ce)
	}
	// A document that is not a mapping says only that.
	if _, ce := parse(t, "- a\n"); ce == nil || len(ce.Problems) != 1 {
		t.Errorf("list document: %v", ce)
	}
	for _, text := range []string{"", "# only a comment\n"} {
		if _, ce := parse(t, text); ce == nil || !strings.Contains(ce.Error(), "test.yaml: the configuration is empty") {
			t.Errorf("empty %q: %v", text, ce)
		}
	}
	_, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml: cannot read the configuration") {
		t.Errorf("missing file: %v", err)
	}
}

func TestAllProblemsReportedTogether(t *testing.T) {
	text := `telegram:
  api_id: 1
  api_hash: ` + fixture.Hash + `
accounts:
  - name: "+1 555 000 1111"
    phone: "` + fixture.PhoneA + `"
    dc: moon
  - name: b
    phone: "` + fixture.PhoneA + `"
store:
  retention: 1h
http:
  listen: 0.0.0.0:9464
guard:
  mode: enforce
  margin: 2
probes:
  spambot: {floor: 1m}
colour: blue
`
	_, ce := parse(t, text)
	if ce == nil {
		t.Fatal("no error")
	}
	want := []struct {
		path string
		line int
	}{
		{"telegram.api_hash", 3},
		{"accounts[0].name", 5},
		{"accounts[0].dc", 7},
		{"accounts[1].phone", 9},
		{"store.retention", 11},
		{"http.token", 12},
		{"guard.margin", 16},
		{"probes.spambot.floor", 18},
		{"colour", 19},
	}
	if len(ce.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(ce.Problems), len(want), ce)
	}
	for i, w := range want {
		if i >= len(ce.Problems) {
			break
		}
		if p := ce.Problems[i]; p.Path != w.path || p.Line != w.line {
			t.Errorf("problem %d = %s (line %d), want %s (line %d)", i, p.Path, p.Line, w.path, w.line)
		}
	}
	lines := strings.Split(ce.Error(), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "test.yaml:") {
			t.Errorf("line not prefixed with the file: %q", l)
		}
	}
	if lines[0] != "test.yaml:3: telegram.api_hash: "+refused["telegram.api_hash"] {
		t.Errorf("first line %q", lines[0])
	}
	fixture.NoSecrets(t, "error", ce.Error())
}

// TestValidateWithoutFile: Validate works on a configuration built in Go,
// without lines.
func TestValidateWithoutFile(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil {
		t.Fatal("DefaultConfig validates without accounts")
	}
	c.Telegram = TelegramConfig{APIID: 1, APIHashFile: "/etc/h"}
	c.Accounts = []AccountConfig{{Name: "x", Phone: NewSecret(fixture.PhoneA), DC: DCTest}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Guard.Margin = 0
	c.Accounts = append(c.Accounts, AccountConfig{Name: "x", PhoneEnv: "P", DC: DCProduction})
	err := c.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("Validate: %v", err)
	}
	if got := err.Error(); got != "accounts[1].name: \"x\" is already the name of accounts[0]; names must be unique\n"+
		"guard.margin: must be more than 0 and at most 1 (the fraction of each profile limit the guard allows), got 0" {
		t.Errorf("Validate:\n%s", got)
	}
}

func TestWarnings(t *testing.T) {
	c, ce := parse(t, fixture.Base+"http: {listen: '0.0.0.0:9464', token_env: T}\nguard: {mode: 'off'}\nprobes:\n  sessions: {interval: 0}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	var got []string
	for _, w := range c.Warnings() {
		got = append(got, w.Path)
	}
	if strings.Join(got, " ") != "http.listen probes.sessions.interval guard.mode" {
		t.Errorf("warnings at %v", got)
	}
	for _, listen := range []string{"127.0.0.1:1", "127.3.4.5:80", "[::1]:9464", "localhost:9464", "LOCALHOST:1"} {
		if lb, err := ListenLoopback(listen); !lb || err != nil {
			t.Errorf("%s: loopback %v, %v", listen, lb, err)
		}
	}
	for _, listen := range []string{"0.0.0.0:1", ":9464", "[::]:9464", "example.com:9464", "10.0.0.1:80"} {
		if lb, err := ListenLoopback(listen); lb || err != nil {
			t.Errorf("%s: loopback %v, %v", listen, lb, err)
		}
	}
}

func TestGuardOptions(t *testing.T) {
	c, ce := parse(t, fixture.BaseTelegram+"accounts:\n  - {name: b, phone_env: P, created: 2024-05-06}\nguard: {mode: enforce, margin: 0.5, max_wait: 2m}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	o, ok := c.GuardOptions(c.Accounts[0])
	if !ok || o.Mode != guard.Enforce || o.Margin != 0.5 || o.MaxWait != 2*time.Minute ||
		!o.Created.Equal(time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)) || o.Profile != c.Profile {
		t.Errorf("GuardOptions = %+v, %v", o, ok)
	}
	c.Guard.Mode = GuardObserve
	if o, _ := c.GuardOptions(c.Accounts[0]); o.Mode != guard.Observe {
		t.Errorf("observe: %v", o.Mode)
	}
	c.Guard.Mode = GuardOff
	if _, ok := c.GuardOptions(c.Accounts[0]); ok {
		t.Error("off: guard enabled")
	}
	if got := c.SessionPath("b"); got != filepath.Join(DefaultSessionsDir, "b.session") {
		t.Errorf("SessionPath = %s", got)
	}
}

func TestLimitsProfile(t *testing.T) {
	dir := t.TempDir()
	fixture.WriteFile(t, dir, "profile.yaml", string(limits.DefaultYAML()), 0o644)
	cfg := fixture.WriteFile(t, dir, "safetyd.yaml", fixture.Base+"limits_profile: profile.yaml\n", 0o644)
	c, err := LoadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.LimitsProfile != filepath.Join(dir, "profile.yaml") || c.Profile == nil {
		t.Errorf("profile %q %v", c.LimitsProfile, c.Profile)
	}
	fixture.WriteFile(t, dir, "profile.yaml", "name: x\nbogus: 1\n", 0o644)
	_, err = LoadConfig(cfg)
	// t.TempDir's name has 7+ digits: the path is not shown.
	if err == nil || !strings.Contains(err.Error(), cfg+":9: limits_profile: cannot use the limits profile (path not shown): not a limits profile (YAML problems at line 2)") {
		t.Errorf("bad profile: %v", err)
	}
}

func TestPlanReload(t *testing.T) {
	old, ce := parse(t, fixture.BaseTelegram+"accounts:\n  - {name: a, phone_env: PA}\n  - {name: b, phone_env: PB}\n  - {name: c, phone_env: PC}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	next, ce := parse(t, fixture.BaseTelegram+"accounts:\n  - {name: a, phone_env: PA}\n  - {name: c, phone_env: PC, tags: [x]}\n  - {name: d, phone_env: PD}\nhttp: {listen: '127.0.0.1:9000'}\nlog: {level: debug}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	p := old.PlanReload(next)
	if fmt.Sprint(p.Added, p.Removed, p.Changed, p.Restart) != "[d] [b] [c] [http]" {
		t.Errorf("plan %+v", p)
	}
	next.Guard.Margin = 0.5
	p = old.PlanReload(next)
	if fmt.Sprint(p.Changed) != "[a c]" {
		t.Errorf("a guard change restarts every kept account: %+v", p)
	}
	if p := old.PlanReload(old); len(p.Added)+len(p.Removed)+len(p.Changed)+len(p.Restart) != 0 {
		t.Errorf("no change: %+v", p)
	}
}

// TestDocsNameEveryKey keeps docs/configuration.md and the example
// complete: every key of a fully set configuration is documented, and
// appears in the example (refused keys and alternatives aside).
func TestDocsNameEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(fixture.ExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Telegram = TelegramConfig{APIID: 1, APIIDEnv: "A", APIIDFile: "a", APIHashEnv: "H", APIHashFile: "h"}
	c.Accounts = []AccountConfig{{Name: "a", Phone: NewSecret(fixture.PhoneA), PhoneEnv: "P", DC: DCTest, Tags: []string{"t"}, Created: time.Now()}}
	c.HTTP.TokenEnv, c.HTTP.TokenFile = "T", "t"
	c.HTTP.AllowedHosts = []string{"monitor.internal"}
	c.LimitsProfile = "p.yaml"
	c.Store.DSN, c.Store.DSNEnv, c.Store.DSNFile, c.Store.PasswordEnv, c.Store.PasswordFile = "d", "D", "d", "P", "p"
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(c.Redacted()), &root); err != nil {
		t.Fatal(err)
	}
	notInExample := map[string]bool{"api_id_env": true, "api_id_file": true, "api_hash_file": true, "phone": true, "token_file": true,
		"dsn": true, "dsn_env": true, "dsn_file": true, "password_env": true, "password_file": true}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for i, k := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				documented := false
				for _, form := range []string{"| `%s` |", "### `%s`", "- `%s`:"} {
					documented = documented || bytes.Contains(doc, []byte(fmt.Sprintf(form, k.Value)))
				}
				if !documented {
					t.Errorf("docs/configuration.md does not document `%s` (in a table row, heading or list item)", k.Value)
				}
				if !notInExample[k.Value] && !bytes.Contains(example, []byte(k.Value+":")) {
					t.Errorf("docs/examples/safetyd.yaml does not set %s", k.Value)
				}
			}
			walk(k)
		}
	}
	walk(&root)
	for key := range refused {
		if !bytes.Contains(doc, []byte("`"+key[strings.LastIndex(key, ".")+1:]+"` | – | – | **refused**")) {
			t.Errorf("docs/configuration.md does not list %s as refused", key)
		}
	}
}

// Secrets that could be pasted by mistake into a key that takes a name:
// a hex api_hash and an `openssl rand -hex 32` token that start with a
// letter (both valid variable names), and a mixed-case token.

// A limits_profile that does not load is reported without quoting the
// file (it may be any file: /etc/shadow) and without a path shaped like a
// phone number.
func TestLimitsProfileErrorsDoNotQuoteTheFile(t *testing.T) {
	// ParseConfig anchors relative paths at "." (the package directory
	// here), so the paths stay free of t.TempDir's digits and are shown.
	for _, tc := range []struct{ path, want string }{
		{"testdata/limits/shadow", "not a limits profile (YAML problems at line 1)"},
		{"testdata/limits/shadow2", "not a limits profile (YAML problems at line 1, 2)"},
		{"testdata/limits/fields.yaml", "not a limits profile (YAML problems at line 1, 2)"},
		{"testdata/limits/bad-penalty.yaml", "actions.dm_contact.penalty is missing or not valid"},
		{"testdata/limits/nonexistent.yaml", "not found"},
	} {
		_, ce := parse(t, fixture.Base+"limits_profile: "+tc.path+"\n")
		if ce == nil {
			t.Fatalf("%s loaded as a limits profile", tc.path)
		}
		msg := ce.Error()
		if !strings.Contains(msg, "limits_profile: cannot use the limits profile "+tc.path+": "+tc.want) {
			t.Errorf("%s: %s", tc.path, msg)
		}
		for _, x := range []string{"root", "bash", "alice", "saltsalt", "bob", "carol", "dave", "erin"} {
			if strings.Contains(msg, x) {
				t.Errorf("the error quotes the file (%s): %s", x, msg)
			}
		}
	}
	for _, p := range []string{"/srv/profiles/79991234567.yaml", "/srv/" + fixture.HexSecret + "/p.yaml"} {
		_, ce := parse(t, fixture.Base+"limits_profile: "+p+"\n")
		if ce == nil || !strings.Contains(ce.Error(), "limits_profile: cannot use the limits profile (path not shown): not found") {
			t.Errorf("%s: %v", p, ce)
		}
		if ce != nil && (strings.Contains(ce.Error(), "9991234567") || strings.Contains(ce.Error(), "feedface")) {
			t.Errorf("path echoed: %v", ce)
		}
	}
}

// With the PostgreSQL store, store.path is unused, so its directory is
// not required.
func TestPathProblemsIgnoreStorePathWithPostgres(t *testing.T) {
	c := DefaultConfig()
	c.SessionsDir = t.TempDir()
	c.Store.Path = "/nonexistent-tgsafety-dir/safetyd.db"
	if errs, _ := c.PathProblems(); len(errs) == 0 {
		t.Fatal("sqlite: a missing store directory is not reported")
	}
	c.Store.Driver = DriverPostgres
	for _, p := range func() []Problem { errs, _ := c.PathProblems(); return errs }() {
		if p.Path == "store.path" {
			t.Errorf("postgres: %v", p)
		}
	}
}
