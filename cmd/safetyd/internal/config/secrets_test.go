package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/fixture"
)

// TestPhonesNeverInErrors puts phone numbers everywhere a careless edit
// might, and checks that no error, warning or printout shows them.
func TestPhonesNeverInErrors(t *testing.T) {
	p := fixture.PhoneA
	texts := []string{
		// Bad and duplicate inline numbers.
		fixture.BaseTelegram + "accounts:\n  - {name: a, phone: \"" + p + "x\"}\n  - {name: b, phone: \"" + p + "\"}\n  - {name: c, phone: \"" + p + "\"}\n",
		// A number where a name, an env name, a dc, a tag, a date or a key goes.
		fixture.BaseTelegram + "accounts:\n  - {name: \"" + p + "\", phone_env: \"" + p + "\", dc: \"" + p + "\", tags: [\"" + p + "\"], created: \"" + p + "\"}\n",
		fixture.BaseTelegram + "accounts:\n  - {name: \"a" + fixture.PhoneADigits + "\", phone: \"" + p + "\"}\n",
		fixture.BaseTelegram + "accounts:\n  - {name: a, \"" + p + "\": x, phone: [\"" + p + "\"]}\n",
		// Numbers in other keys' values.
		"telegram: {api_id: \"" + p + "\", api_hash_env: \"" + p + "\", api_id_file: x}\n" + fixture.BaseAccounts,
		fixture.Base + "http: {listen: \"" + p + "\", token_env: \"" + p + "\"}\n",
		fixture.Base + "http: {listen: \"127.0.0.1:" + fixture.PhoneADigits + "\"}\n",
		fixture.Base + "http: {listen: \"" + fixture.PhoneADigits + ":80\"}\n",
		fixture.Base + "store: {retention: \"" + p + "\"}\nguard: {mode: \"" + p + "\", margin: \"" + p + "\"}\nlog: {level: \"" + p + "\"}\n",
		fixture.Base + "probes:\n  \"" + p + "\": {}\n  spambot: {interval: \"" + p + "\"}\n",
		fixture.Base + "\"" + p + "\": 1\n",
		fixture.Base + "limits_profile: /nonexistent/" + fixture.PhoneADigits + "\n",
	}
	for i, text := range texts {
		_, ce := parse(t, text)
		if ce == nil {
			t.Errorf("text %d: no error", i)
			continue
		}
		fixture.NoSecrets(t, fmt.Sprintf("text %d", i), ce.Error())
	}

	// Resolved numbers: bad, duplicate.
	c, ce := parse(t, fixture.BaseTelegram+"accounts:\n  - {name: a, phone_env: PA}\n  - {name: b, phone_env: PB}\n  - {name: c, phone_env: PC}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	_, err := c.ResolveSecrets(fixture.EnvFunc(map[string]string{"TGSAFETY_API_HASH": fixture.Hash, "PA": fixture.PhoneA, "PB": fixture.PhoneA, "PC": fixture.PhoneB + "x"}))
	if err == nil {
		t.Fatal("no error for duplicate and bad resolved numbers")
	}
	fixture.NoSecrets(t, "ResolveSecrets error", err.Error())
	for _, want := range []string{"accounts[1].phone_env: same number as accounts[0]", "accounts[2].phone_env: the environment variable named here does not hold a phone number"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ResolveSecrets error lacks %q:\n%v", want, err)
		}
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	c, ce := parse(t, fixture.Base+"  - {name: b, phone: \""+fixture.PhoneB+"\", created: 2024-01-02}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	s, err := c.ResolveSecrets(fixture.EnvFunc(map[string]string{"TGSAFETY_API_HASH": fixture.Hash}))
	if err != nil {
		t.Fatal(err)
	}
	if s.APIHash.Reveal() != fixture.Hash || s.Phones["a"].Reveal() != fixture.PhoneA || s.Phones["b"].Reveal() != fixture.PhoneB || s.APIID != 1 || !s.Token.IsZero() {
		t.Errorf("resolved: %d %d", s.APIID, len(s.Phones))
	}
	js, _ := json.Marshal(s)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		fixture.NoSecrets(t, "Config "+verb, fmt.Sprintf(verb, c))
		fixture.NoSecrets(t, "Config "+verb, fmt.Sprintf(verb, *c))
		fixture.NoSecrets(t, "Secrets "+verb, fmt.Sprintf(verb, s))
		fixture.NoSecrets(t, "Secrets "+verb, fmt.Sprintf(verb, *s))
	}
	fixture.NoSecrets(t, "Secrets JSON", string(js))
	if !strings.Contains(string(js), `"APIHash":"\u003credacted\u003e"`) {
		t.Errorf("JSON: %s", js)
	}
	r := c.Redacted()
	fixture.NoSecrets(t, "Redacted", r)
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

func TestResolveSecretsFiles(t *testing.T) {
	dir := t.TempDir()
	fixture.WriteFile(t, dir, "api_id", "4242\n", 0o644) // not secret: any mode
	fixture.WriteFile(t, dir, "api_hash", fixture.Hash+"\n", 0o600)
	fixture.WriteFile(t, dir, "token", fixture.Token+"\n", 0o400)
	cfgText := "telegram:\n  api_id_file: api_id\n  api_hash_file: api_hash\n" + fixture.BaseAccounts +
		"http:\n  listen: '[::1]:9464'\n  token_file: token\n"
	cfgPath := fixture.WriteFile(t, dir, "safetyd.yaml", cfgText, 0o644)

	c, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Telegram.APIHashFile != filepath.Join(dir, "api_hash") || c.HTTP.TokenFile != filepath.Join(dir, "token") {
		t.Errorf("relative paths not resolved against the config's directory: %+v %+v", c.Telegram, c.HTTP)
	}
	s, err := c.ResolveSecrets(fixture.EnvFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.APIID != 4242 || s.APIHash.Reveal() != fixture.Hash || s.Token.Reveal() != fixture.Token {
		t.Errorf("resolved %d", s.APIID)
	}

	// Group- or world-accessible secret files are refused, naming the file.
	for _, name := range []string{"api_hash", "token"} {
		for _, mode := range []os.FileMode{0o640, 0o604, 0o620} {
			p := filepath.Join(dir, name)
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			_, err := c.ResolveSecrets(fixture.EnvFunc(nil))
			want := fmt.Sprintf("%s is accessible to group or others (mode %04o); it holds a secret: chmod 600 %s", p, mode, p)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s mode %o: %v", name, mode, err)
			}
			fixture.NoSecrets(t, "error", fmt.Sprint(err))
			_ = os.Chmod(p, 0o600)
		}
	}

	// Bad contents, missing and empty files.
	fixture.WriteFile(t, dir, "api_hash", "not-a-hash\n", 0o600)
	fixture.WriteFile(t, dir, "token", "short\n", 0o600)
	fixture.WriteFile(t, dir, "api_id", "\n", 0o600)
	_, err = c.ResolveSecrets(fixture.EnvFunc(nil))
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
	if _, err = c.ResolveSecrets(fixture.EnvFunc(nil)); err == nil || !strings.Contains(err.Error(), "telegram.api_hash_file: cannot read") {
		t.Errorf("missing file: %v", err)
	}
}

func TestResolveSecretsEnv(t *testing.T) {
	c, err := LoadConfig(fixture.ExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range fixture.ExampleEnv {
		t.Setenv(k, v)
	}
	s, err := c.ResolveSecrets(nil) // os.Getenv
	if err != nil {
		t.Fatal(err)
	}
	if s.APIID != 12345 || s.APIHash.Reveal() != fixture.Hash || s.Token.Reveal() != fixture.Token ||
		s.Phones["crm-bot-1"].Reveal() != fixture.PhoneA || s.Phones["crm-bot-2"].Reveal() != fixture.PhoneB || len(s.Phones) != 3 {
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
		fixture.ExamplePath + ":14: telegram.api_hash_env: the environment variable named here is not set or is empty",
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

// An *_env key holds a variable's name. A secret pasted there instead is
// refused by its shape, with a reason and without the value, so that it
// never reaches check-config's output or the daemon's log.
func TestSecretPastedIntoEnvKeyIsRefusedUnshown(t *testing.T) {
	for _, tc := range []struct{ text, path, why string }{
		{"telegram: {api_id: 1, api_hash_env: " + fixture.HexSecret + "}\n" + fixture.BaseAccounts, "telegram.api_hash_env", "hexadecimal characters in a row"},
		{"telegram: {api_id_env: " + fixture.HexSecret + ", api_hash_env: H}\n" + fixture.BaseAccounts, "telegram.api_id_env", "hexadecimal"},
		{fixture.Base + "http: {token_env: " + fixture.HexToken + "}\n", "http.token_env", "hexadecimal"},
		{fixture.Base + "http: {token_env: " + fixture.MixedToken + "}\n", "http.token_env", "mixes lower- and upper-case"},
		{fixture.Base + "http: {token_env: " + fixture.LongToken + "}\n", "http.token_env", "letters and digits without '_'"},
		{fixture.BaseTelegram + "accounts:\n  - {name: a, phone_env: " + fixture.HexSecret + "}\n", "accounts[0].phone_env", "hexadecimal"},
	} {
		_, ce := parse(t, tc.text)
		if ce == nil {
			t.Errorf("%s: accepted:\n%s", tc.path, tc.text)
			continue
		}
		fixture.NoPastedSecret(t, tc.path, ce.Error())
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
		if _, ce := parse(t, "telegram: {api_id: 1, api_hash_env: "+name+"}\n"+fixture.BaseAccounts); ce != nil {
			t.Errorf("%s refused: %v", name, ce)
		}
	}

}

// An *_env key's value is never printed, even an ordinary name: it is
// what a secret pasted by mistake would be.
func TestUnsetVariableIsNotNamed(t *testing.T) {
	c, ce := parse(t, fixture.BaseTelegram+"accounts:\n  - {name: a, phone_env: TGSAFETY_PHONE_A}\nhttp: {token_env: TGSAFETY_TOKEN}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	_, err := c.ResolveSecrets(fixture.EnvFunc(map[string]string{"TGSAFETY_API_HASH": fixture.Hash, "TGSAFETY_TOKEN": "tiny1"}))
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
	for _, v := range []string{fixture.MixedToken, fixture.LongToken, fixture.HexSecret, "tok_SECRET_" + fixture.HexSecret} {
		for _, text := range []string{
			fixture.Base + "http: {listen: " + v + "}\n",
			fixture.Base + "http: {listen: '127.0.0.1:" + v + "'}\n",
			fixture.Base + "http: {listen: '" + v + ":9464'}\n",
			fixture.Base + "guard: {mode: " + v + ", margin: " + v + ", max_wait: " + v + "}\n",
			fixture.Base + "log: {level: " + v + "}\nstore: {retention: " + v + "}\n",
			fixture.BaseTelegram + "accounts:\n  - {name: a, phone_env: P, dc: " + v + ", created: " + v + ", tags: [" + v + "]}\n",
			fixture.Base + v + ": 1\nhttp: {" + v + ": 1}\n",
			"telegram: {api_id: " + v + ", api_hash_env: H}\n" + fixture.BaseAccounts,
		} {
			_, ce := parse(t, text)
			if ce == nil {
				t.Errorf("accepted:\n%s", text)
				continue
			}
			fixture.NoPastedSecret(t, "error", ce.Error())
		}
	}
	_, ce := parse(t, fixture.Base+"http: {listen: "+fixture.MixedToken+"}\n")
	if ce == nil || !strings.Contains(ce.Error(), "http.listen: not host:port") {
		t.Errorf("listen: %v", ce)
	}
}

// The PostgreSQL store: the driver is checked, a DSN is required, one
// with a password is refused without showing it, and the DSN and
// password come from their secret sources.
func TestPostgresStoreConfig(t *testing.T) {
	const pw = "Sup3rSecretDbPw"
	for _, tc := range []struct{ store, path, want string }{
		{"{driver: mysql}", "store.driver", "must be sqlite"},
		{"{driver: postgres}", "store.dsn", "missing"},
		{"{driver: postgres, dsn: x, dsn_env: Y}", "store.dsn", "only one of"},
		{"{driver: postgres, dsn: 'postgres://u:" + pw + "@db/x'}", "store.dsn", "holds a password"},
		{"{driver: postgres, dsn: 'host=db password=" + pw + "'}", "store.dsn", "holds a password"},
		{"{driver: postgres, dsn: 'host=db', password: " + pw + "}", "store.password", "refused"},
		{"{driver: sqlite, dsn: 'host=db'}", "store.driver", "takes store.path only"},
		{"{driver: postgres, dsn: 'host=db', password_env: X, password_file: y}", "store.password", "only one of"},
	} {
		_, ce := parse(t, fixture.Base+"store: "+tc.store+"\n")
		if ce == nil {
			t.Errorf("%s: accepted", strings.ReplaceAll(tc.store, pw, "PW"))
			continue
		}
		if strings.Contains(ce.Error(), pw) {
			t.Errorf("%s: error shows the password:\n%s", tc.path, ce)
		}
		found := false
		for _, p := range ce.Problems {
			found = found || p.Path == tc.path && strings.Contains(p.Msg, tc.want)
		}
		if !found {
			t.Errorf("%s: no %s problem saying %q:\n%s", strings.ReplaceAll(tc.store, pw, "PW"), tc.path, tc.want, ce)
		}
	}
	c, ce := parse(t, fixture.Base+"store: {driver: postgres, dsn: 'host=db user=u dbname=d', password_env: DBPW}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	s, err := c.ResolveSecrets(fixture.EnvFunc(map[string]string{"TGSAFETY_API_HASH": fixture.Hash, "DBPW": pw}))
	if err != nil {
		t.Fatal(err)
	}
	if s.StoreDSN.Reveal() != "host=db user=u dbname=d" || s.StorePassword.Reveal() != pw {
		t.Errorf("dsn %q, password set %v", s.StoreDSN.Reveal(), s.StorePassword.Reveal() == pw)
	}
	if strings.Contains(c.Summary(), "host=db") || strings.Contains(fmt.Sprint(s), pw) {
		t.Errorf("summary or secrets print the connection: %s / %v", c.Summary(), s)
	}
	c, ce = parse(t, fixture.Base+"store: {driver: postgres, dsn_env: DSN}\n")
	if ce != nil {
		t.Fatal(ce)
	}
	if _, err := c.ResolveSecrets(fixture.EnvFunc(map[string]string{"TGSAFETY_API_HASH": fixture.Hash})); err == nil || !strings.Contains(err.Error(), "store.dsn_env") {
		t.Errorf("unset dsn_env: %v", err)
	}
}
