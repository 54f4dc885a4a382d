package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/phone"
	"github.com/tgsafety/tgsafety/monitor/probe"
)

// Validate checks the configuration's values and reports every problem it
// finds (not only the first) as a *ConfigError. It reads no files and no
// environment: ResolveSecrets does.
func (c *Config) Validate() error {
	if probs := c.problems(); len(probs) > 0 {
		return &ConfigError{File: c.file, Problems: probs}
	}
	return nil
}

// problem builds a Problem at path, with the line of path or of its
// nearest ancestor present in the file.
func (c *Config) problem(path, format string, args ...any) Problem {
	return Problem{Path: path, Line: c.line(path), Msg: fmt.Sprintf(format, args...)}
}

func (c *Config) line(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// parentPath strips the last element of a YAML path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// hostName is a DNS name as Host headers carry it, optionally ending in a
// dot.
var hostName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

// maxMaxConnections bounds http.max_connections below any sensible file
// descriptor limit's headroom.
const maxMaxConnections = 1 << 16

func (c *Config) problems() []Problem {
	var out []Problem
	add := func(path, format string, args ...any) {
		out = append(out, c.problem(path, format, args...))
	}
	checkEnv := func(path, v string) {
		// Never echo: a value pasted here instead of a name is a secret.
		if v != "" && !envName.MatchString(v) {
			add(path, "not an environment variable name (letters, digits and '_', not starting with a digit); it names the variable that holds the value, it does not hold the value itself (the value given is not shown)")
		} else if why := envSecretShape(v); why != "" {
			add(path, "looks like a secret, not the name of an environment variable: %s. This key names the variable that holds the value (e.g. TGSAFETY_API_HASH); it does not hold the value itself. The value is not shown; if it is a secret, it is now in this file: replace it", why)
		}
	}

	// telegram
	t := c.Telegram
	switch n := countSet(t.APIID != 0, t.APIIDEnv != "", t.APIIDFile != ""); {
	case n == 0:
		add("telegram.api_id", "missing: set api_id (the number from my.telegram.org), api_id_env (an environment variable) or api_id_file (a file)")
	case n > 1:
		add("telegram.api_id", "set only one of api_id, api_id_env and api_id_file")
	}
	if t.APIID < 0 {
		add("telegram.api_id", "must be a positive number, got %s", quoteNum(t.APIID))
	}
	checkEnv("telegram.api_id_env", t.APIIDEnv)
	switch countSet(t.APIHashEnv != "", t.APIHashFile != "") {
	case 0:
		add("telegram.api_hash", "missing: set api_hash_env (an environment variable) or api_hash_file (a file readable only by the daemon's user); inline api_hash is not accepted")
	case 2:
		add("telegram.api_hash", "set only one of api_hash_env and api_hash_file")
	}
	checkEnv("telegram.api_hash_env", t.APIHashEnv)
	if sim := t.Simulated; sim != nil {
		if _, _, err := net.SplitHostPort(sim.Address); err != nil || sim.Address == "" {
			add("telegram.simulated.address", "must be the simulated Telegram's host:port")
		}
		if sim.DC < 0 || sim.DC > 5 {
			add("telegram.simulated.dc", "must be a data centre from 1 to 5 (0: 2)")
		}
		if sim.PublicKeyFile == "" {
			add("telegram.simulated.public_key_file", "missing: the simulated Telegram's RSA public key (PEM)")
		}
	}

	// accounts
	if len(c.Accounts) == 0 {
		add("accounts", "at least one account is required")
	}
	names := map[string]int{}
	phones := map[string]int{}
	now := time.Now()
	for i, a := range c.Accounts {
		at := "accounts[" + strconv.Itoa(i) + "]"
		if a.Name == "" {
			add(at+".name", "missing: every account needs a name (it is what logs, metrics and the API show instead of the phone number)")
		} else if err := monitor.ValidateName(a.Name); err != nil {
			add(at+".name", "%v", err)
		} else if strings.HasPrefix(a.Name, ".") {
			add(at+".name", "must not start with '.' (the name is also the session file's name)")
		} else if j, dup := names[a.Name]; dup {
			add(at+".name", "%q is already the name of accounts[%d]; names must be unique", a.Name, j)
		} else {
			names[a.Name] = i
		}
		switch {
		case a.Phone.IsZero() && a.PhoneEnv == "":
			add(at+".phone", "missing: set phone (the number, never shown in logs or errors) or phone_env (an environment variable holding it)")
		case !a.Phone.IsZero() && a.PhoneEnv != "":
			add(at+".phone", "set only one of phone and phone_env")
		case !a.Phone.IsZero():
			digits, ok := phone.Digits(a.Phone.v)
			if !ok {
				add(at+".phone", "not a phone number: expected an international number, +<country code><number>, 7 to 15 digits (the value is not shown)")
			} else if j, dup := phones[digits]; dup {
				add(at+".phone", "same number as accounts[%d]; each account needs its own number", j)
			} else {
				phones[digits] = i
			}
		}
		checkEnv(at+".phone_env", a.PhoneEnv)
		switch a.DC {
		case DCProduction, DCTest:
		case "":
			add(at+".dc", "missing: production or test")
		default:
			add(at+".dc", "unknown data centre %s (production or test)", Quote(string(a.DC)))
		}
		seen := map[string]bool{}
		for j, tag := range a.Tags {
			tp := at + ".tags[" + strconv.Itoa(j) + "]"
			if msg := tagProblem(tag); msg != "" {
				add(tp, "%s", msg)
			} else if seen[tag] {
				add(tp, "duplicate tag %q", tag)
			}
			seen[tag] = true
		}
		if a.Created.After(now) {
			add(at+".created", "is in the future; give the date the account was registered")
		}
	}

	// paths
	if c.SessionsDir == "" {
		add("sessions_dir", "missing: the directory for session files (default %s)", DefaultSessionsDir)
	}
	st := c.Store
	switch st.Driver {
	case DriverSQLite:
		if st.Path == "" {
			add("store.path", "missing: the database file (default %s)", DefaultStorePath)
		}
		if st.DSN != "" || st.DSNEnv != "" || st.DSNFile != "" || st.PasswordEnv != "" || st.PasswordFile != "" {
			add("store.driver", "is sqlite, which takes store.path only; set driver: postgres to use the dsn and password keys")
		}
		if st.LeaseTTL != 0 || st.LeaseMargin != 0 {
			add("store.lease_ttl", "leases are for replicas sharing a PostgreSQL store (driver: postgres)")
		}
	case DriverPostgres:
		switch countSet(st.DSN != "", st.DSNEnv != "", st.DSNFile != "") {
		case 0:
			add("store.dsn", "missing: with driver postgres, give the connection string (dsn, without a password) or where it is (dsn_env, dsn_file)")
		case 2, 3:
			add("store.dsn", "set only one of dsn, dsn_env and dsn_file")
		}
		if st.DSN != "" && dsnHasPassword(st.DSN) {
			add("store.dsn", "holds a password: it would be in this file and in every copy of it; put the password in password_env or password_file (or the whole DSN in dsn_env or dsn_file). The value is not shown")
		}
		if st.PasswordEnv != "" && st.PasswordFile != "" {
			add("store.password", "set only one of password_env and password_file")
		}
		checkEnv("store.dsn_env", st.DSNEnv)
		checkEnv("store.password_env", st.PasswordEnv)
		if st.LeaseTTL != 0 && (st.LeaseTTL < MinLeaseTTL || st.LeaseTTL > MaxLeaseTTL) {
			add("store.lease_ttl", "%s is outside %s-%s: shorter renews too often to survive a slow database, longer leaves a dead replica's accounts unwatched for long", st.LeaseTTL, MinLeaseTTL, MaxLeaseTTL)
		}
		if st.LeaseMargin < 0 || st.LeaseMargin > st.LeaseTTL && st.LeaseTTL != 0 {
			add("store.lease_margin", "%s must be between 0 and store.lease_ttl", st.LeaseMargin)
		}
	default:
		add("store.driver", "must be %s (one daemon, a local file) or %s (replicas sharing a database)", DriverSQLite, DriverPostgres)
	}
	if c.Store.Retention < MinRetention {
		add("store.retention", "%s is less than %s: limits and freezes last days, and a shorter history would hide them from the API and status page", c.Store.Retention, MinRetention)
	}

	// http
	h := c.HTTP
	loopback, err := ListenLoopback(h.Listen)
	if err != nil {
		add("http.listen", "%v", err)
	}
	switch countSet(h.TokenEnv != "", h.TokenFile != "") {
	case 0:
		if err == nil && !loopback {
			add("http.token", "required because http.listen %s is not a loopback address: anyone who can reach it could read account states and trigger probes; set token_env or token_file", showListen(h.Listen))
		}
	case 2:
		add("http.token", "set only one of token_env and token_file")
	}
	checkEnv("http.token_env", h.TokenEnv)
	if h.MaxConnections < MinMaxConnections || h.MaxConnections > maxMaxConnections {
		add("http.max_connections", "must be from %d to %d (open connections; idle ones are closed to make room), got %s", MinMaxConnections, maxMaxConnections, quoteNum(h.MaxConnections))
	}
	for i, name := range h.AllowedHosts {
		if !hostName.MatchString(name) || len(name) > 253 {
			add("http.allowed_hosts["+strconv.Itoa(i)+"]", "not a host name (letters, digits, '-' and '.', no port and no scheme; IP addresses need no entry)")
		}
	}

	// probes
	def := probe.DefaultSchedules()
	for _, k := range slices.Sorted(maps.Keys(c.Probes)) {
		s := c.Probes[k]
		at := "probes." + k
		d, known := def[k]
		if !known || !slices.Contains(ProbeKinds, k) {
			add(at, "unknown probe kind (known: %s)", strings.Join(ProbeKinds, ", "))
			continue
		}
		for _, f := range []struct {
			name string
			v    limits.Duration
		}{{"interval", s.Interval}, {"jitter", s.Jitter}, {"floor", s.Floor}} {
			if f.v < 0 {
				add(at+"."+f.name, "must not be negative, got %s", f.v)
			}
		}
		minFloor := limits.Duration(d.Floor)
		floorLowered := s.Floor >= 0 && s.Floor < minFloor
		if floorLowered {
			add(at+".floor", "%s is below the minimum of %s: %s", s.Floor, minFloor, probeFloorWhy[k])
		}
		floor := max(s.Floor, minFloor)
		if s.Interval > 0 && s.Interval < floor {
			if s.Floor > minFloor {
				add(at+".interval", "%s is shorter than floor %s: no run comes before the floor, so the interval would not hold; raise interval or lower floor", s.Interval, s.Floor)
			} else if floorLowered {
				add(at+".interval", "%s is below the %s probe's minimum floor of %s (see %s.floor)", s.Interval, k, minFloor, at)
			} else {
				add(at+".interval", "%s is below the %s probe's floor of %s, so runs could not come that often: %s", s.Interval, k, minFloor, probeFloorWhy[k])
			}
		}
	}

	// guard
	switch c.Guard.Mode {
	case GuardOff, GuardObserve, GuardEnforce:
	case "":
		add("guard.mode", "missing: observe, enforce or off")
	default:
		add("guard.mode", "unknown mode %s (observe, enforce or off)", Quote(string(c.Guard.Mode)))
	}
	if m := c.Guard.Margin; !(m > 0 && m <= 1) {
		add("guard.margin", "must be more than 0 and at most 1 (the fraction of each profile limit the guard allows), got %s", quoteNum(m))
	}
	if c.Guard.MaxWait < 0 {
		add("guard.max_wait", "must not be negative, got %s", c.Guard.MaxWait)
	}

	// log
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	case "":
		add("log.level", "missing: debug, info, warn or error")
	default:
		add("log.level", "unknown level %s (debug, info, warn or error)", Quote(c.Log.Level))
	}
	return out
}

// Warnings lists settings that are valid but deserve a second look.
func (c *Config) Warnings() []Problem {
	var out []Problem
	if lb, err := ListenLoopback(c.HTTP.Listen); err == nil && !lb {
		out = append(out, c.problem("http.listen", "%s is not a loopback address: the API, metrics and status page are reachable from other hosts (with the token required for the API); put a TLS proxy in front of it, and list the host names clients use in http.allowed_hosts", showListen(c.HTTP.Listen)))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Probes)) {
		if c.Probes[k].Interval == 0 {
			out = append(out, c.problem("probes."+k+".interval", "0: %s probes run only when requested (state changes, the API), never on a schedule", k))
		}
	}
	if c.Guard.Mode == GuardOff {
		out = append(out, c.problem("guard.mode", "off: the daemon's own calls (probes) are not checked against the limits profile"))
	}
	return out
}

// listenLoopback parses a listen address and says whether it binds to
// loopback only.
func ListenLoopback(listen string) (bool, error) {
	if listen == "" {
		return false, errors.New("missing: host:port to listen on (default " + DefaultListen + ")")
	}
	// The value is not repeated: a token pasted here by mistake would be.
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return false, fmt.Errorf("not host:port (e.g. %s, [::1]:9464, 0.0.0.0:9464; the value is not shown)", DefaultListen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return false, errors.New("the port is not a number from 1 to 65535 (the value is not shown)")
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.IsLoopback(), nil
	}
	// Empty host (all interfaces) or a host name: not known to be loopback.
	return false, nil
}

// tagProblem says what is wrong with a tag, or "".
func tagProblem(tag string) string {
	switch {
	case tag == "":
		return "empty tag"
	case len(tag) > monitor.MaxNameLength:
		return fmt.Sprintf("longer than %d bytes", monitor.MaxNameLength)
	case phone.Like(tag):
		return "has 7 or more digits, like a phone number; tags appear in the API and logs (the value is not shown)"
	}
	for _, r := range tag {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return fmt.Sprintf("%q: character %q not allowed (use letters, digits, '.', '_', '-')", tag, r)
		}
	}
	return ""
}

func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// dsnHasPassword reports whether a PostgreSQL connection string carries a
// password (a URL's user:password@ or a password= pair).
func dsnHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	return dsnPassword.MatchString(dsn)
}

// dsnPassword finds a password= pair in a key=value DSN or URL query.
var dsnPassword = regexp.MustCompile(`(?i)(^|[\s&?])password\s*=`)
