package config

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"github.com/tgsafety/tgsafety/monitor/phone"
)

// Secret is a secret value that never prints: String, fmt verbs, JSON,
// YAML and text encodings all give "<redacted>". Reveal returns the value.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v} }

// Reveal returns the value, for the one place that needs it.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String returns "<redacted>", or "" for an empty secret.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return "<redacted>"
}

// GoString is String, for %#v.
func (s Secret) GoString() string { return s.String() }

// Format writes String for every verb, so %x or %q cannot leak the value.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// MarshalText writes String; JSON, YAML and zap use it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Secrets are the resolved secrets of a configuration.
type Secrets struct {
	// APIID is the application's api_id (not secret on its own).
	APIID int
	// APIHash is the application's api_hash.
	APIHash Secret
	// Token is the HTTP API token; zero when none is configured.
	Token Secret
	// StoreDSN and StorePassword connect to the PostgreSQL store (zero for
	// SQLite): the DSN from dsn, dsn_env or dsn_file, the password, if
	// any, from password_env or password_file.
	StoreDSN, StorePassword Secret
	// Phones holds each account's phone number, by account name.
	Phones map[string]Secret
}

// ResolveSecrets reads the secrets the configuration points to: the
// environment variables through getenv (nil means os.Getenv) and the
// files. Files holding the api_hash or the token must not be accessible to
// group or others. Errors (a *ConfigError) name the variable or file,
// never the value.
func (c *Config) ResolveSecrets(getenv func(string) string) (*Secrets, error) {
	return c.Resolve(getenv, true)
}

// resolveSecrets is ResolveSecrets; phones false skips the phone numbers,
// which only login uses, so that `safetyd run` does not need them in its
// environment (one secret fewer on the running host).
func (c *Config) Resolve(getenv func(string) string, phones bool) (*Secrets, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var probs []Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, c.problem(path, format, args...))
	}
	// get reads a value from the environment or a file; ok is false after
	// a problem has been added.
	get := func(path, env, file string, private bool) (val, from string, ok bool) {
		switch {
		case env != "":
			// The variable's name is never printed: a secret pasted
			// into an *_env key is a valid name when it starts with a
			// letter. The key and its line say which variable it is.
			v := strings.TrimSpace(getenv(env))
			if v == "" {
				add(path+"_env", "the environment variable named here is not set or is empty")
				return "", "", false
			}
			return v, "the environment variable named here", true
		case file != "":
			v, err := readSecretFile(file, private)
			if err != nil {
				add(path+"_file", "%v", err)
				return "", "", false
			}
			return v, file, true
		}
		return "", "", false
	}

	s := &Secrets{Phones: map[string]Secret{}}
	t := c.Telegram
	if t.APIID != 0 {
		s.APIID = t.APIID
	} else if v, from, ok := get("telegram.api_id", t.APIIDEnv, t.APIIDFile, false); ok {
		id, err := strconv.Atoi(v)
		if err != nil || id <= 0 {
			add(pathFor("telegram.api_id", t.APIIDEnv), "%s does not hold a positive integer (the api_id from my.telegram.org)", from)
		}
		s.APIID = id
	}
	if v, from, ok := get("telegram.api_hash", t.APIHashEnv, t.APIHashFile, true); ok {
		if !apiHash.MatchString(v) {
			add(pathFor("telegram.api_hash", t.APIHashEnv), "%s does not hold an api_hash (32 hexadecimal characters, from my.telegram.org); the value is not shown", from)
		}
		s.APIHash = Secret{v}
	}
	if v, from, ok := get("http.token", c.HTTP.TokenEnv, c.HTTP.TokenFile, true); ok {
		if len(v) < MinTokenLength {
			add(pathFor("http.token", c.HTTP.TokenEnv), "%s holds a token shorter than %d characters; use a random one (e.g. openssl rand -hex 32)", from, MinTokenLength)
		}
		s.Token = Secret{v}
	}
	if st := c.Store; st.Driver == DriverPostgres {
		s.StoreDSN = Secret{st.DSN}
		if v, _, ok := get("store.dsn", st.DSNEnv, st.DSNFile, true); ok {
			s.StoreDSN = Secret{v}
		}
		if v, _, ok := get("store.password", st.PasswordEnv, st.PasswordFile, true); ok {
			s.StorePassword = Secret{v}
		}
	}
	seen := map[string]int{}
	for i, a := range c.Accounts {
		if !phones {
			break
		}
		at := "accounts[" + strconv.Itoa(i) + "]"
		path := at + ".phone"
		v := a.Phone.v
		if a.PhoneEnv != "" {
			path = at + ".phone_env"
			var ok bool
			if v, _, ok = get(at+".phone", a.PhoneEnv, "", false); !ok {
				continue
			}
		}
		digits, ok := phone.Digits(v)
		if !ok {
			what := "the inline number"
			if a.PhoneEnv != "" {
				what = "the environment variable named here"
			}
			add(path, "%s does not hold a phone number: expected +<country code><number>, 7 to 15 digits (the value is not shown)", what)
			continue
		}
		if j, dup := seen[digits]; dup {
			add(path, "same number as accounts[%d]; each account needs its own number", j)
			continue
		}
		seen[digits] = i
		s.Phones[a.Name] = Secret{v}
	}
	if len(probs) > 0 {
		secrets := []string{s.APIHash.v, s.Token.v, s.StoreDSN.v, s.StorePassword.v}
		for _, p := range s.Phones {
			secrets = append(secrets, p.v)
		}
		for i := range probs {
			probs[i].Msg = scrub(probs[i].Msg, secrets)
		}
		return nil, &ConfigError{File: c.file, Problems: probs}
	}
	return s, nil
}

var apiHash = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

// pathFor names the key a resolved value came from: key_env or key_file.
func pathFor(key, env string) string {
	if env != "" {
		return key + "_env"
	}
	return key + "_file"
}

// readSecretFile reads a file holding one value, trimmed. A private file
// must be a regular file with no permissions for group or others.
func readSecretFile(path string, private bool) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cannot read: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); private && perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("%s is accessible to group or others (mode %04o); it holds a secret: chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read: %v", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// scrub removes phone numbers (in the given form and as bare digits) and
// long secrets from a message: a last line of defence, since messages are
// written not to include them. Short values are left alone, as they could
// match ordinary words.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= MinTokenLength {
			msg = strings.ReplaceAll(msg, s, "<redacted>")
		}
		if d, ok := phone.Digits(s); ok {
			msg = strings.ReplaceAll(msg, s, "<redacted>")
			msg = strings.ReplaceAll(msg, d, "<redacted>")
		}
	}
	return msg
}
