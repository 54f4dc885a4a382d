package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/probe"
)

const examplePath = "../../docs/examples/safetyd.yaml"

// The phone numbers used in tests. No error, warning or printout may
// contain their digits.
const (
	phoneA       = "+15550001111"
	phoneB       = "+15550002222"
	phoneADigits = "15550001111"
	phoneBDigits = "15550002222"
	testHash     = "0123456789abcdef0123456789abcdef"
	testToken    = "s3cret-token-0123456789"
)

// exampleEnv holds every variable docs/examples/safetyd.yaml names.
var exampleEnv = map[string]string{
	"TGSAFETY_API_HASH":      testHash,
	"TGSAFETY_API_TOKEN":     testToken,
	"TGSAFETY_PHONE_CRM1":    phoneA,
	"TGSAFETY_PHONE_CRM2":    phoneB,
	"TGSAFETY_PHONE_STAGING": "+9996612345",
}

func envFunc(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// base is a minimal valid configuration; tests append to it or replace
// parts of it.
const baseTelegram = `
telegram:
  api_id: 1
  api_hash_env: TGSAFETY_API_HASH
`

const baseAccounts = `
accounts:
  - name: a
    phone: "` + phoneA + `"
`

const base = baseTelegram + baseAccounts

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

// noSecrets fails if s contains a test phone number or secret.
func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, x := range []string{phoneADigits, phoneBDigits, "5550001111", "5550002222", testHash, testToken, "9996612345"} {
		if strings.Contains(s, x) {
			t.Errorf("%s contains a secret (%s):\n%s", what, x, s)
		}
	}
}

func TestExampleLoadsAndValidates(t *testing.T) {
	c, err := LoadConfig(examplePath)
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
	if _, err := c.ResolveSecrets(envFunc(exampleEnv)); err != nil {
		t.Errorf("ResolveSecrets: %v", err)
	}
	// `safetyd run` needs no phone numbers (only login does).
	noPhones := map[string]string{"TGSAFETY_API_HASH": testHash, "TGSAFETY_API_TOKEN": testToken}
	if _, err := c.ResolveSecrets(envFunc(noPhones)); err == nil || !strings.Contains(err.Error(), "accounts[0].phone_env: the environment variable named here is not set") {
		t.Errorf("ResolveSecrets without phones: %v, want an error at accounts[0].phone_env", err)
	}
	if s, err := c.resolveSecrets(envFunc(noPhones), false); err != nil || s.APIHash.Reveal() != testHash || len(s.Phones) != 0 {
		t.Errorf("resolveSecrets for run: %v %v", s, err)
	}
}

// TestDefaults: everything left out gets its documented default.
func TestDefaults(t *testing.T) {
	c, ce := parse(t, base)
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
	c, ce = parse(t, base+"probes:\n  spambot: {interval: 12h}\n")
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
	acct := func(fields string) string { return baseTelegram + "accounts:\n  - name: a\n" + fields }
	cases := []struct {
		name, text, path, msg string
	}{
		{"unknown top-level key", base + "stroe: {}\n", "stroe", "unknown key (did you mean store?)"},
		{"unknown nested key", base + "store: {paht: x}\n", "store.paht", "unknown key (did you mean path?)"},
		{"unknown account key", acct("    phone: \"" + phoneA + "\"\n    nmae: b\n"), "accounts[0].nmae", "did you mean name?"},
		{"duplicate key", base + "log: {level: info}\nlog: {level: debug}\n", "log", "appears twice"},
		{"merge key", base + "store:\n  <<: {path: x}\n", "store.<<", "merge keys"},
		{"inline api_hash refused", base + "", "", ""}, // replaced below
		{"inline token refused", base + "http:\n  token: abc\n", "http.token", "inline token is refused"},
		{"missing api_id", "telegram: {api_hash_env: H}\n" + baseAccounts, "telegram.api_id", "missing"},
		{"two api_id sources", "telegram: {api_id: 1, api_id_env: ID, api_hash_env: H}\n" + baseAccounts, "telegram.api_id", "only one"},
		{"negative api_id", "telegram: {api_id: -4, api_hash_env: H}\n" + baseAccounts, "telegram.api_id", "positive"},
		{"api_id not a number", "telegram: {api_id: abc, api_hash_env: H}\n" + baseAccounts, "telegram.api_id", "expected an integer"},
		{"missing api_hash", "telegram: {api_id: 1}\n" + baseAccounts, "telegram.api_hash", "missing"},
		{"two api_hash sources", "telegram: {api_id: 1, api_hash_env: H, api_hash_file: f}\n" + baseAccounts, "telegram.api_hash", "only one"},
		{"bad env name", "telegram: {api_id: 1, api_hash_env: 'my hash'}\n" + baseAccounts, "telegram.api_hash_env", "not an environment variable name"},
		{"telegram not a mapping", "telegram: [1]\n" + baseAccounts, "telegram", "expected key: value pairs, got a list"},
		{"no accounts key", baseTelegram, "accounts", "at least one account"},
		{"empty accounts", baseTelegram + "accounts: []\n", "accounts", "at least one account"},
		{"accounts not a list", baseTelegram + "accounts: {name: a}\n", "accounts", "expected a list of accounts"},
		{"account missing name", base + "  - phone: \"" + phoneB + "\"\n", "accounts[1].name", "missing"},
		{"bad account name", base + "  - name: 'a b'\n    phone: \"" + phoneB + "\"\n", "accounts[1].name", "not allowed"},
		{"name like a phone", base + "  - name: \"+1 555 000 3333\"\n    phone: \"" + phoneB + "\"\n", "accounts[1].name", "looks like a phone number"},
		{"name starting with a dot", base + "  - name: .hidden\n    phone: \"" + phoneB + "\"\n", "accounts[1].name", "must not start with '.'"},
		{"duplicate name", base + "  - name: a\n    phone: \"" + phoneB + "\"\n", "accounts[1].name", `"a" is already the name of accounts[0]`},
		{"missing phone", acct(""), "accounts[0].phone", "missing: set phone"},
		{"phone and phone_env", acct("    phone: \"" + phoneA + "\"\n    phone_env: P\n"), "accounts[0].phone", "only one of phone and phone_env"},
		{"not a phone", acct("    phone: \"+1555000111x\"\n"), "accounts[0].phone", "not a phone number"},
		{"phone as a list", acct("    phone: [\"" + phoneA + "\"]\n"), "accounts[0].phone", "expected the phone number as a single value"},
		{"duplicate phone", base + "  - name: b\n    phone: \"+1 (555) 000-1111\"\n", "accounts[1].phone", "same number as accounts[0]"},
		{"bad dc", acct("    phone_env: P\n    dc: prod\n"), "accounts[0].dc", `unknown data centre "prod" (production or test)`},
		{"empty dc", acct("    phone_env: P\n    dc: ''\n"), "accounts[0].dc", "missing"},
		{"bad tag", acct("    phone_env: P\n    tags: [ok, 'no way']\n"), "accounts[0].tags[1]", "not allowed"},
		{"duplicate tag", acct("    phone_env: P\n    tags: [eu, eu]\n"), "accounts[0].tags[1]", `duplicate tag "eu"`},
		{"tags not a list", acct("    phone_env: P\n    tags: eu\n"), "accounts[0].tags", "expected a list"},
		{"bad created", acct("    phone_env: P\n    created: last year\n"), "accounts[0].created", "not a date"},
		{"future created", acct("    phone_env: P\n    created: 2999-01-01\n"), "accounts[0].created", "in the future"},
		{"empty sessions_dir", base + "sessions_dir: ''\n", "sessions_dir", "missing"},
		{"empty store path", base + "store: {path: ''}\n", "store.path", "missing"},
		{"short retention", base + "store: {retention: 12h}\n", "store.retention", "12h is less than 1d"},
		{"bad retention", base + "store: {retention: forever}\n", "store.retention", `"forever" is not a duration`},
		{"bad listen", base + "http: {listen: localhost}\n", "http.listen", "not host:port"},
		{"bad port", base + "http: {listen: '127.0.0.1:99999'}\n", "http.listen", "not a number from 1 to 65535"},
		{"empty listen", base + "http: {listen: ''}\n", "http.listen", "missing"},
		{"public listen without token", base + "http: {listen: '0.0.0.0:9464'}\n", "http.token", "required because http.listen 0.0.0.0:9464 is not a loopback address"},
		{"all interfaces without token", base + "http: {listen: ':9464'}\n", "http.token", "required"},
		{"two token sources", base + "http: {token_env: T, token_file: f}\n", "http.token", "only one of token_env and token_file"},
		{"allowed host with a port", base + "http: {allowed_hosts: [ok.example, 'bad.example:80']}\n", "http.allowed_hosts[1]", "not a host name"},
		{"allowed host with a scheme", base + "http: {allowed_hosts: ['https://x.example']}\n", "http.allowed_hosts[0]", "no scheme"},
		{"too few connections", base + "http: {max_connections: 2}\n", "http.max_connections", "must be from 8 to 65536"},
		{"floor above interval", base + "probes:\n  spambot: {interval: 6h, floor: 8h}\n", "probes.spambot.interval", "6h is shorter than floor 8h"},
		{"spambot floor lowered", base + "probes:\n  spambot: {floor: 10m}\n", "probes.spambot.floor", "10m is below the minimum of 30m: each SpamBot probe is a /start message to @SpamBot"},
		{"freeze floor lowered", base + "probes:\n  freeze: {floor: 1m}\n", "probes.freeze.floor", "help.getAppConfig"},
		{"sessions floor lowered", base + "probes:\n  sessions: {floor: 0s}\n", "probes.sessions.floor", "account.getAuthorizations"},
		{"interval below default floor", base + "probes:\n  spambot: {interval: 10m}\n", "probes.spambot.interval", "below the spambot probe's floor of 30m, so runs could not come that often"},
		{"negative jitter", base + "probes:\n  sessions: {jitter: -5m}\n", "probes.sessions.jitter", "must not be negative"},
		{"unknown probe kind", base + "probes:\n  self: {floor: 1m}\n", "probes.self", "unknown key; known keys here: spambot, freeze, sessions"},
		{"unknown probe field", base + "probes:\n  spambot: {every: 1h}\n", "probes.spambot.every", "unknown key"},
		{"bad guard mode", base + "guard: {mode: audit}\n", "guard.mode", `unknown mode "audit" (observe, enforce or off)`},
		{"zero margin", base + "guard: {margin: 0}\n", "guard.margin", "must be more than 0 and at most 1"},
		{"margin above 1", base + "guard: {margin: 1.5}\n", "guard.margin", "got 1.5"},
		{"margin not a number", base + "guard: {margin: high}\n", "guard.margin", `expected a number, got "high"`},
		{"negative max_wait", base + "guard: {max_wait: -1s}\n", "guard.max_wait", "must not be negative"},
		{"bad log level", base + "log: {level: verbose}\n", "log.level", `unknown level "verbose"`},
		{"missing limits profile", base + "limits_profile: /nonexistent/profile.yaml\n", "limits_profile", "/nonexistent/profile.yaml"},
		{"second document", base + "---\nlog: {level: info}\n", "", "a second YAML document"},
		{"root not a mapping", "- a\n- b\n", "", "the configuration must be key: value pairs"},
	}
	cases[5] = struct{ name, text, path, msg string }{
		"inline api_hash refused", "telegram:\n  api_id: 1\n  api_hash: " + testHash + "\n" + baseAccounts,
		"telegram.api_hash", "inline api_hash is refused: configuration files end up in backups, tickets and version control",
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, ce := parse(t, tc.text)
			if ce == nil {
				t.Fatalf("no error for:\n%s", tc.text)
			}
			noSecrets(t, "error", ce.Error())
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
	_, ce := parse(t, base+"log: [unclosed\n")
	if ce == nil || len(ce.Problems) != 1 || ce.Problems[0].Line == 0 || !strings.Contains(ce.Problems[0].Msg, "YAML syntax") {
		t.Errorf("syntax error: %v", ce)
	}
	// The parser quotes anchors; a number there is not shown.
	_, ce = parse(t, baseTelegram+"accounts:\n  - name: a\n    phone: *"+phoneADigits+"\n")
	if ce == nil || !strings.Contains(ce.Error(), "YAML syntax: unknown anchor '(number not shown)'") {
		t.Errorf("anchor: %v", ce)
	}
	// A second document is reported with the first one's problems.
	_, ce = parse(t, base+"guard: {mode: x}\n---\nlog: {}\n")
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
  api_hash: ` + testHash + `
accounts:
  - name: "+1 555 000 1111"
    phone: "` + phoneA + `"
    dc: moon
  - name: b
    phone: "` + phoneA + `"
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
	noSecrets(t, "error", ce.Error())
}

// TestValidateWithoutFile: Validate works on a configuration built in Go,
// without lines.
func TestValidateWithoutFile(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil {
		t.Fatal("DefaultConfig validates without accounts")
	}
	c.Telegram = TelegramConfig{APIID: 1, APIHashFile: "/etc/h"}
	c.Accounts = []AccountConfig{{Name: "x", Phone: NewSecret(phoneA), DC: DCTest}}
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

// TestPhonesNeverInErrors puts phone numbers everywhere a careless edit
// might, and checks that no error, warning or printout shows them.
func TestPhonesNeverInErrors(t *testing.T) {
	p := phoneA
	texts := []string{
		// Bad and duplicate inline numbers.
		baseTelegram + "accounts:\n  - {name: a, phone: \"" + p + "x\"}\n  - {name: b, phone: \"" + p + "\"}\n  - {name: c, phone: \"" + p + "\"}\n",
		// A number where a name, an env name, a dc, a tag, a date or a key goes.
		baseTelegram + "accounts:\n  - {name: \"" + p + "\", phone_env: \"" + p + "\", dc: \"" + p + "\", tags: [\"" + p + "\"], created: \"" + p + "\"}\n",
		baseTelegram + "accounts:\n  - {name: \"a" + phoneADigits + "\", phone: \"" + p + "\"}\n",
		baseTelegram + "accounts:\n  - {name: a, \"" + p + "\": x, phone: [\"" + p + "\"]}\n",
		// Numbers in other keys' values.
		"telegram: {api_id: \"" + p + "\", api_hash_env: \"" + p + "\", api_id_file: x}\n" + baseAccounts,
		base + "http: {listen: \"" + p + "\", token_env: \"" + p + "\"}\n",
		base + "http: {listen: \"127.0.0.1:" + phoneADigits + "\"}\n",
		base + "http: {listen: \"" + phoneADigits + ":80\"}\n",
		base + "store: {retention: \"" + p + "\"}\nguard: {mode: \"" + p + "\", margin: \"" + p + "\"}\nlog: {level: \"" + p + "\"}\n",
		base + "probes:\n  \"" + p + "\": {}\n  spambot: {interval: \"" + p + "\"}\n",
		base + "\"" + p + "\": 1\n",
		base + "limits_profile: /nonexistent/" + phoneADigits + "\n",
	}
	for i, text := range texts {
		_, ce := parse(t, text)
		if ce == nil {
			t.Errorf("text %d: no error", i)
			continue
		}
		noSecrets(t, fmt.Sprintf("text %d", i), ce.Error())
	}

	// Resolved numbers: bad, duplicate.
	c, ce := parse(t, baseTelegram+"accounts:\n  - {name: a, phone_env: PA}\n  - {name: b, phone_env: PB}\n  - {name: c, phone_env: PC}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	_, err := c.ResolveSecrets(envFunc(map[string]string{"TGSAFETY_API_HASH": testHash, "PA": phoneA, "PB": phoneA, "PC": phoneB + "x"}))
	if err == nil {
		t.Fatal("no error for duplicate and bad resolved numbers")
	}
	noSecrets(t, "ResolveSecrets error", err.Error())
	for _, want := range []string{"accounts[1].phone_env: same number as accounts[0]", "accounts[2].phone_env: the environment variable named here does not hold a phone number"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ResolveSecrets error lacks %q:\n%v", want, err)
		}
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	c, ce := parse(t, base+"  - {name: b, phone: \""+phoneB+"\", created: 2024-01-02}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	s, err := c.ResolveSecrets(envFunc(map[string]string{"TGSAFETY_API_HASH": testHash}))
	if err != nil {
		t.Fatal(err)
	}
	if s.APIHash.Reveal() != testHash || s.Phones["a"].Reveal() != phoneA || s.Phones["b"].Reveal() != phoneB || s.APIID != 1 || !s.Token.IsZero() {
		t.Errorf("resolved: %d %d", s.APIID, len(s.Phones))
	}
	js, _ := json.Marshal(s)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		noSecrets(t, "Config "+verb, fmt.Sprintf(verb, c))
		noSecrets(t, "Config "+verb, fmt.Sprintf(verb, *c))
		noSecrets(t, "Secrets "+verb, fmt.Sprintf(verb, s))
		noSecrets(t, "Secrets "+verb, fmt.Sprintf(verb, *s))
	}
	noSecrets(t, "Secrets JSON", string(js))
	if !strings.Contains(string(js), `"APIHash":"\u003credacted\u003e"`) {
		t.Errorf("JSON: %s", js)
	}
	r := c.Redacted()
	noSecrets(t, "Redacted", r)
	if strings.Count(r, "phone: <redacted>") != 2 {
		t.Errorf("Redacted:\n%s", r)
	}
	// Redacted is valid configuration apart from the secrets it hides.
	if _, err := ParseConfig([]byte(strings.ReplaceAll(r, "<redacted>", "'+1555000999"+"'")), "r.yaml"); err == nil ||
		!strings.Contains(err.Error(), "same number") {
		t.Errorf("re-parsing Redacted: %v", err)
	}
	if NewSecret("").String() != "" || NewSecret("x").String() != "<redacted>" {
		t.Error("Secret.String")
	}
}

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // not subject to umask
		t.Fatal(err)
	}
	return p
}

func TestResolveSecretsFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "api_id", "4242\n", 0o644) // not secret: any mode
	writeFile(t, dir, "api_hash", testHash+"\n", 0o600)
	writeFile(t, dir, "token", testToken+"\n", 0o400)
	cfgText := "telegram:\n  api_id_file: api_id\n  api_hash_file: api_hash\n" + baseAccounts +
		"http:\n  listen: '[::1]:9464'\n  token_file: token\n"
	cfgPath := writeFile(t, dir, "safetyd.yaml", cfgText, 0o644)

	c, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Telegram.APIHashFile != filepath.Join(dir, "api_hash") || c.HTTP.TokenFile != filepath.Join(dir, "token") {
		t.Errorf("relative paths not resolved against the config's directory: %+v %+v", c.Telegram, c.HTTP)
	}
	s, err := c.ResolveSecrets(envFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.APIID != 4242 || s.APIHash.Reveal() != testHash || s.Token.Reveal() != testToken {
		t.Errorf("resolved %d", s.APIID)
	}

	// Group- or world-accessible secret files are refused, naming the file.
	for _, name := range []string{"api_hash", "token"} {
		for _, mode := range []os.FileMode{0o640, 0o604, 0o620} {
			p := filepath.Join(dir, name)
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			_, err := c.ResolveSecrets(envFunc(nil))
			want := fmt.Sprintf("%s is accessible to group or others (mode %04o); it holds a secret: chmod 600 %s", p, mode, p)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s mode %o: %v", name, mode, err)
			}
			noSecrets(t, "error", fmt.Sprint(err))
			_ = os.Chmod(p, 0o600)
		}
	}

	// Bad contents, missing and empty files.
	writeFile(t, dir, "api_hash", "not-a-hash\n", 0o600)
	writeFile(t, dir, "token", "short\n", 0o600)
	writeFile(t, dir, "api_id", "\n", 0o600)
	_, err = c.ResolveSecrets(envFunc(nil))
	for _, want := range []string{
		"telegram.api_hash_file: " + filepath.Join(dir, "api_hash") + " does not hold an api_hash (32 hexadecimal characters",
		"http.token_file: " + filepath.Join(dir, "token") + " holds a token shorter than 16 characters",
		"telegram.api_id_file: " + filepath.Join(dir, "api_id") + " is empty",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
	if err != nil && (strings.Contains(err.Error(), "not-a-hash") || strings.Contains(err.Error(), "short\n")) {
		t.Errorf("error shows a value: %v", err)
	}
	os.Remove(filepath.Join(dir, "api_hash"))
	if _, err = c.ResolveSecrets(envFunc(nil)); err == nil || !strings.Contains(err.Error(), "telegram.api_hash_file: cannot read") {
		t.Errorf("missing file: %v", err)
	}
}

func TestResolveSecretsEnv(t *testing.T) {
	c, err := LoadConfig(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range exampleEnv {
		t.Setenv(k, v)
	}
	s, err := c.ResolveSecrets(nil) // os.Getenv
	if err != nil {
		t.Fatal(err)
	}
	if s.APIID != 12345 || s.APIHash.Reveal() != testHash || s.Token.Reveal() != testToken ||
		s.Phones["crm-bot-1"].Reveal() != phoneA || s.Phones["crm-bot-2"].Reveal() != phoneB || len(s.Phones) != 3 {
		t.Errorf("resolved %+v", s)
	}

	t.Setenv("TGSAFETY_API_HASH", "")
	t.Setenv("TGSAFETY_PHONE_CRM2", "  ")
	t.Setenv("TGSAFETY_API_TOKEN", "tiny")
	_, err = c.ResolveSecrets(nil)
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	for _, want := range []string{
		examplePath + ":14: telegram.api_hash_env: the environment variable named here is not set or is empty",
		"http.token_env: the environment variable named here holds a token shorter than 16 characters",
		"accounts[1].phone_env: the environment variable named here is not set or is empty",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "tiny") {
		t.Errorf("error shows the token: %v", err)
	}
}

func TestWarnings(t *testing.T) {
	c, ce := parse(t, base+"http: {listen: '0.0.0.0:9464', token_env: T}\nguard: {mode: 'off'}\nprobes:\n  sessions: {interval: 0}\n")
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
		if lb, err := listenLoopback(listen); !lb || err != nil {
			t.Errorf("%s: loopback %v, %v", listen, lb, err)
		}
	}
	for _, listen := range []string{"0.0.0.0:1", ":9464", "[::]:9464", "example.com:9464", "10.0.0.1:80"} {
		if lb, err := listenLoopback(listen); lb || err != nil {
			t.Errorf("%s: loopback %v, %v", listen, lb, err)
		}
	}
}

func TestGuardOptions(t *testing.T) {
	c, ce := parse(t, baseTelegram+"accounts:\n  - {name: b, phone_env: P, created: 2024-05-06}\nguard: {mode: enforce, margin: 0.5, max_wait: 2m}\n")
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
	writeFile(t, dir, "profile.yaml", string(limits.DefaultYAML()), 0o644)
	cfg := writeFile(t, dir, "safetyd.yaml", base+"limits_profile: profile.yaml\n", 0o644)
	c, err := LoadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.LimitsProfile != filepath.Join(dir, "profile.yaml") || c.Profile == nil {
		t.Errorf("profile %q %v", c.LimitsProfile, c.Profile)
	}
	writeFile(t, dir, "profile.yaml", "name: x\nbogus: 1\n", 0o644)
	_, err = LoadConfig(cfg)
	// t.TempDir's name has 7+ digits: the path is not shown.
	if err == nil || !strings.Contains(err.Error(), cfg+":9: limits_profile: cannot use the limits profile (path not shown): not a limits profile (YAML problems at line 2)") {
		t.Errorf("bad profile: %v", err)
	}
}

func TestPlanReload(t *testing.T) {
	old, ce := parse(t, baseTelegram+"accounts:\n  - {name: a, phone_env: PA}\n  - {name: b, phone_env: PB}\n  - {name: c, phone_env: PC}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	next, ce := parse(t, baseTelegram+"accounts:\n  - {name: a, phone_env: PA}\n  - {name: c, phone_env: PC, tags: [x]}\n  - {name: d, phone_env: PD}\nhttp: {listen: '127.0.0.1:9000'}\nlog: {level: debug}\n")
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
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Telegram = TelegramConfig{APIID: 1, APIIDEnv: "A", APIIDFile: "a", APIHashEnv: "H", APIHashFile: "h"}
	c.Accounts = []AccountConfig{{Name: "a", Phone: NewSecret(phoneA), PhoneEnv: "P", DC: DCTest, Tags: []string{"t"}, Created: time.Now()}}
	c.HTTP.TokenEnv, c.HTTP.TokenFile = "T", "t"
	c.HTTP.AllowedHosts = []string{"monitor.internal"}
	c.LimitsProfile = "p.yaml"
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(c.Redacted()), &root); err != nil {
		t.Fatal(err)
	}
	notInExample := map[string]bool{"api_id_env": true, "api_id_file": true, "api_hash_file": true, "phone": true, "token_file": true}
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

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCheckConfigCommand(t *testing.T) {
	code, out, errOut := runCmd("check-config", "--config", examplePath)
	if code != 0 || errOut != "" ||
		out != "ok: 3 accounts (crm-bot-1, crm-bot-2, staging), store /var/lib/tgsafety/safetyd.db (retention 90d), "+
			"http 127.0.0.1:9464 (loopback, token required), guard observe (margin 0.8), limits profile default\n" {
		t.Errorf("example: %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// --resolve-secrets reads the environment.
	code, _, errOut = runCmd("check-config", "--config", examplePath, "--resolve-secrets")
	if code != 1 || !strings.Contains(errOut, examplePath+":14: telegram.api_hash_env: the environment variable named here is not set") {
		t.Errorf("unresolved secrets: %d %s", code, errOut)
	}
	for k, v := range exampleEnv {
		t.Setenv(k, v)
	}
	code, out, errOut = runCmd("check-config", "--config", examplePath, "--resolve-secrets")
	if code != 0 || !strings.HasSuffix(out, ", secrets resolved (api_id, api_hash, 3 phone numbers, API token)\n") {
		t.Errorf("resolved: %d\n%s%s", code, out, errOut)
	}
	noSecrets(t, "stdout", out)

	// Errors: one per line, prefixed with the file, exit 1.
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", base+"  - {name: a, phone: \""+phoneA+"\"}\nguard: {mode: strict}\n", 0o644)
	code, out, errOut = runCmd("check-config", "--config", bad)
	want := bad + ":9: accounts[1].name: \"a\" is already the name of accounts[0]; names must be unique\n" +
		bad + ":9: accounts[1].phone: same number as accounts[0]; each account needs its own number\n" +
		bad + ":10: guard.mode: unknown mode \"strict\" (observe, enforce or off)\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("bad config: %d\nstdout: %s\nstderr: %s\nwant:\n%s", code, out, errOut, want)
	}
	noSecrets(t, "stderr", errOut)

	// Warnings go to stderr and do not fail; --print shows the redacted config.
	warn := writeFile(t, dir, "warn.yaml", base+"http: {listen: '0.0.0.0:9464', token_env: T}\n", 0o644)
	code, out, errOut = runCmd("check-config", "--print", "--config", warn)
	if code != 0 || !strings.HasPrefix(errOut, warn+":9: warning: http.listen: 0.0.0.0:9464 is not a loopback address") ||
		!strings.Contains(out, "http 0.0.0.0:9464 (not loopback, token required)") || !strings.Contains(out, "phone: <redacted>") {
		t.Errorf("warning: %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	noSecrets(t, "stdout", out)

	code, _, errOut = runCmd("check-config", "--config", filepath.Join(dir, "nope.yaml"))
	if code != 1 || !strings.Contains(errOut, "nope.yaml: cannot read the configuration") {
		t.Errorf("missing file: %d %s", code, errOut)
	}

	// Bad usage: exit 2.
	for _, args := range [][]string{
		{"check-config"},
		{"check-config", "--config"},
		{"check-config", "--cfg", examplePath},
		{"check-config", "--config", examplePath, "extra"},
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
		{[]string{"demo", "--accounts", "0"}, "demo: --accounts 0: want 1 to 5000"},
		{[]string{"demo", "--speed", "0.5"}, "demo: --speed 0.5: want 1 to 100000"},
		{[]string{"demo", "--listen", "0.0.0.0:9464"}, "the demo serves loopback addresses only"},
		{[]string{"demo", "extra"}, `demo: unexpected argument "extra"`},
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

// Secrets that could be pasted by mistake into a key that takes a name:
// a hex api_hash and an `openssl rand -hex 32` token that start with a
// letter (both valid variable names), and a mixed-case token.
const (
	hexSecret   = "feedfacecafebeef0123456789abcdef"
	hexToken    = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	mixedToken  = "tok_SECRET_x9Yz"
	longToken   = "tok_secret_k3j5h2l4m6n8p9q7r5s3t1"
	secretShown = "feedface|a1b2c3d4|SECRET|k3j5h2"
)

func noPastedSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, x := range strings.Split(secretShown, "|") {
		if strings.Contains(s, x) {
			t.Errorf("%s shows a pasted secret (%s):\n%s", what, x, s)
		}
	}
}

// An *_env key holds a variable's name. A secret pasted there instead is
// refused by its shape, with a reason and without the value, so that it
// never reaches check-config's output or the daemon's log.
func TestSecretPastedIntoEnvKeyIsRefusedUnshown(t *testing.T) {
	for _, tc := range []struct{ text, path, why string }{
		{"telegram: {api_id: 1, api_hash_env: " + hexSecret + "}\n" + baseAccounts, "telegram.api_hash_env", "hexadecimal characters in a row"},
		{"telegram: {api_id_env: " + hexSecret + ", api_hash_env: H}\n" + baseAccounts, "telegram.api_id_env", "hexadecimal"},
		{base + "http: {token_env: " + hexToken + "}\n", "http.token_env", "hexadecimal"},
		{base + "http: {token_env: " + mixedToken + "}\n", "http.token_env", "mixes lower- and upper-case"},
		{base + "http: {token_env: " + longToken + "}\n", "http.token_env", "letters and digits without '_'"},
		{baseTelegram + "accounts:\n  - {name: a, phone_env: " + hexSecret + "}\n", "accounts[0].phone_env", "hexadecimal"},
	} {
		_, ce := parse(t, tc.text)
		if ce == nil {
			t.Errorf("%s: accepted:\n%s", tc.path, tc.text)
			continue
		}
		noPastedSecret(t, tc.path, ce.Error())
		found := false
		for _, p := range ce.Problems {
			found = found || p.Path == tc.path && strings.Contains(p.Msg, "looks like a secret") && strings.Contains(p.Msg, tc.why)
		}
		if !found {
			t.Errorf("%s: no problem saying it looks like a secret (%s):\n%s", tc.path, tc.why, ce)
		}
	}
	// Ordinary names pass, upper or lower case.
	for _, name := range []string{"TGSAFETY_API_HASH", "tgsafety_api_hash", "H", "_X1", "CRM_BOT_1_PHONE"} {
		if _, ce := parse(t, "telegram: {api_id: 1, api_hash_env: "+name+"}\n"+baseAccounts); ce != nil {
			t.Errorf("%s refused: %v", name, ce)
		}
	}

	// The same file through check-config, and through a SIGHUP reload.
	dir := t.TempDir()
	cfg := writeFile(t, dir, "safetyd.yaml", "telegram: {api_id: 1, api_hash_env: "+hexSecret+"}\n"+baseAccounts, 0o644)
	code, out, errOut := runCmd("check-config", "--config", cfg, "--resolve-secrets")
	if code != 1 || !strings.Contains(errOut, "looks like a secret") {
		t.Errorf("check-config: %d\n%s%s", code, out, errOut)
	}
	noPastedSecret(t, "check-config", out+errOut)
	core, logs := observer.New(zap.InfoLevel)
	reload(daemonSetup{ConfigPath: cfg, Log: zap.New(core), Level: zap.NewAtomicLevel()}, nil)
	entries := logs.All()
	if len(entries) != 1 || entries[0].Message != "Reload refused; keeping the running configuration" {
		t.Fatalf("reload logged %+v", entries)
	}
	var line bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	buf, _ := enc.EncodeEntry(entries[0].Entry, entries[0].Context)
	line.Write(buf.Bytes())
	noPastedSecret(t, "reload log", line.String())
}

// An *_env key's value is never printed, even an ordinary name: it is
// what a secret pasted by mistake would be.
func TestUnsetVariableIsNotNamed(t *testing.T) {
	c, ce := parse(t, baseTelegram+"accounts:\n  - {name: a, phone_env: TGSAFETY_PHONE_A}\nhttp: {token_env: TGSAFETY_TOKEN}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	_, err := c.ResolveSecrets(envFunc(map[string]string{"TGSAFETY_API_HASH": testHash, "TGSAFETY_TOKEN": "tiny1"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"accounts[0].phone_env: the environment variable named here is not set or is empty",
		"http.token_env: the environment variable named here holds a token shorter than 16 characters",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
	for _, name := range []string{"TGSAFETY_PHONE_A", "TGSAFETY_TOKEN", "tiny1"} {
		if strings.Contains(err.Error(), name) {
			t.Errorf("error names %s:\n%v", name, err)
		}
	}
}

// A token pasted into a key that takes something else is not repeated in
// the error: the message says what is wrong instead.
func TestConfigErrorsDoNotEchoSecretShapedValues(t *testing.T) {
	for _, v := range []string{mixedToken, longToken, hexSecret, "tok_SECRET_" + hexSecret} {
		for _, text := range []string{
			base + "http: {listen: " + v + "}\n",
			base + "http: {listen: '127.0.0.1:" + v + "'}\n",
			base + "http: {listen: '" + v + ":9464'}\n",
			base + "guard: {mode: " + v + ", margin: " + v + ", max_wait: " + v + "}\n",
			base + "log: {level: " + v + "}\nstore: {retention: " + v + "}\n",
			baseTelegram + "accounts:\n  - {name: a, phone_env: P, dc: " + v + ", created: " + v + ", tags: [" + v + "]}\n",
			base + v + ": 1\nhttp: {" + v + ": 1}\n",
			"telegram: {api_id: " + v + ", api_hash_env: H}\n" + baseAccounts,
		} {
			_, ce := parse(t, text)
			if ce == nil {
				t.Errorf("accepted:\n%s", text)
				continue
			}
			noPastedSecret(t, "error", ce.Error())
		}
	}
	_, ce := parse(t, base+"http: {listen: "+mixedToken+"}\n")
	if ce == nil || !strings.Contains(ce.Error(), "http.listen: not host:port") {
		t.Errorf("listen: %v", ce)
	}
}

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
		_, ce := parse(t, base+"limits_profile: "+tc.path+"\n")
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
	for _, p := range []string{"/srv/profiles/79991234567.yaml", "/srv/" + hexSecret + "/p.yaml"} {
		_, ce := parse(t, base+"limits_profile: "+p+"\n")
		if ce == nil || !strings.Contains(ce.Error(), "limits_profile: cannot use the limits profile (path not shown): not found") {
			t.Errorf("%s: %v", p, ce)
		}
		if ce != nil && (strings.Contains(ce.Error(), "9991234567") || strings.Contains(ce.Error(), "feedface")) {
			t.Errorf("path echoed: %v", ce)
		}
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
