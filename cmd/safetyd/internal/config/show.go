package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/phone"
)

// Summary is one line describing the configuration, for check-config.
func (c *Config) Summary() string {
	names := make([]string, len(c.Accounts))
	for i, a := range c.Accounts {
		names[i] = a.Name
	}
	noun := "accounts"
	if len(names) == 1 {
		noun = "account"
	}
	where := "not loopback"
	if lb, _ := ListenLoopback(c.HTTP.Listen); lb {
		where = "loopback"
	}
	token := "no token"
	if c.HTTP.TokenEnv != "" || c.HTTP.TokenFile != "" {
		token = "token required"
	}
	g := string(c.Guard.Mode)
	if c.Guard.Mode != GuardOff {
		g += fmt.Sprintf(" (margin %v)", c.Guard.Margin)
	}
	profile := "default"
	if c.LimitsProfile != "" {
		profile = c.LimitsProfile
	}
	store := c.Store.Path
	if c.Store.Driver == DriverPostgres {
		store = "postgres (connection string not shown)"
	}
	return fmt.Sprintf("%d %s (%s), store %s (retention %s), http %s (%s, %s), guard %s, limits profile %s",
		len(names), noun, strings.Join(names, ", "), store, c.Store.Retention,
		c.HTTP.Listen, where, token, g, profile)
}

// Redacted returns the configuration as YAML with defaults filled in and
// every secret replaced by "<redacted>", safe to print or attach to a
// ticket.
func (c *Config) Redacted() string {
	b, err := yaml.Marshal(c)
	if err != nil {
		// Every field marshals; this is a programming error.
		return "# cannot show the configuration: " + err.Error() + "\n"
	}
	return string(b)
}

// quote quotes a value for an error message, unless it could be a
// secret: anything as long as the shortest token accepted, anything
// shaped like a phone number or a generated secret (secretShape,
// mixedCase). Keys and enum values, which is what a typo changes, are
// short plain words.
func Quote(v string) string {
	if len(v) >= MinTokenLength || secretShape(v) != "" || mixedCase(v) {
		return "(value not shown)"
	}
	return strconv.Quote(v)
}

// showKey says whether an unexpected key may be named in a message.
func showKey(k string) bool {
	return len(k) <= 40 && secretShape(k) == "" && !mixedCase(k)
}

// showPath is a file path for a message, unless it could hold a phone
// number or a secret.
func showPath(p string) string {
	if secretShape(p) != "" {
		return "(path not shown)"
	}
	return p
}

// couldBePhone reports a value that may be a phone number (the one rule,
// monitor/phone).
func couldBePhone(s string) bool { return phone.Like(s) }

// secretShape says why s looks like a phone number or a generated secret
// (an api_hash, a token from openssl rand or a password manager), or ""
// when it does not. Names people write (variables, keys, words, paths)
// have few digits and short runs between separators.
func secretShape(s string) string {
	switch {
	case longestRun(s, isHex) >= 16:
		return "it has 16 or more hexadecimal characters in a row, like an api_hash or a token"
	case longestRun(s, isAlnum) >= 20:
		return "it has 20 or more letters and digits without '_', like a token"
	case couldBePhone(s):
		return "it has 7 or more digits, like a phone number"
	}
	return ""
}

// envSecretShape is secretShape for an *_env value, which must also have
// a variable name's case: all upper (TGSAFETY_API_HASH) or all lower.
func envSecretShape(s string) string {
	if why := secretShape(s); why != "" {
		return why
	}
	if mixedCase(s) {
		return "it mixes lower- and upper-case letters, like a random token (variable names are all upper case, e.g. TGSAFETY_API_HASH, or all lower case)"
	}
	if len(s) > 64 {
		return "it is longer than 64 characters"
	}
	return ""
}

// mixedCase reports an upper-case letter after a lower-case one
// (tok_SECRET, aB3x): random tokens have them, names rarely do ("Listen"
// and "Observe" do not count).
func mixedCase(s string) bool {
	lower := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z' && lower:
			return true
		}
	}
	return false
}

func isHex(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F'
}

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// longestRun is the length of the longest run of runes in s that match.
func longestRun(s string, match func(rune) bool) int {
	best, n := 0, 0
	for _, r := range s {
		if match(r) {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

// durText formats a duration for messages: "12h" rather than "12h0m0s".
func DurText(d limits.Duration) string {
	s := d.String()
	s, _ = strings.CutSuffix(s, "m0s")
	if s != d.String() {
		s += "m"
		if t, ok := strings.CutSuffix(s, "h0m"); ok {
			s = t + "h"
		}
	}
	return s
}

// showListen is a listen address for a message: IP addresses are shown
// whatever their digits, host names when they cannot be a secret.
func showListen(listen string) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "(value not shown)"
	}
	if _, err := netip.ParseAddr(host); err == nil || host == "" {
		return listen
	}
	if len(listen) > 253 || secretShape(listen) != "" || mixedCase(listen) {
		return "(value not shown)"
	}
	return listen
}

// quoteNum formats a number for an error message, unless it has 7 or more
// digits (it could be a phone number typed into the wrong key).
func quoteNum(v any) string {
	s := fmt.Sprint(v)
	if phone.Like(s) {
		return "(value not shown)"
	}
	return s
}
