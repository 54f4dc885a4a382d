package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/phone"
	"github.com/tgsafety/tgsafety/monitor/probe"
)

// The defaults LoadConfig fills in for keys the file leaves out
// (docs/configuration.md explains each).
const (
	// DefaultSessionsDir is sessions_dir.
	DefaultSessionsDir = "/var/lib/tgsafety/sessions"
	// DefaultStorePath is store.path.
	DefaultStorePath = "/var/lib/tgsafety/safetyd.db"
	// DefaultRetention is store.retention.
	DefaultRetention = limits.Duration(90 * 24 * time.Hour)
	// DefaultListen is http.listen: loopback only.
	DefaultListen = "127.0.0.1:9464"
	// DefaultGuardMode is guard.mode.
	DefaultGuardMode = GuardObserve
	// DefaultLogLevel is log.level.
	DefaultLogLevel = "info"
)

// MinRetention is the shortest store.retention accepted: limits and
// freezes last days, and a shorter history would hide them.
const MinRetention = limits.Duration(24 * time.Hour)

// MinTokenLength is the shortest HTTP API token ResolveSecrets accepts.
const MinTokenLength = 16

// Config is the daemon's configuration file. Secrets are not in it: it
// names where they are (environment variables, files), except account
// phone numbers, which may be inline and are held as Secret so that
// printing a Config never shows them. Build one with LoadConfig, or start
// from DefaultConfig and call Validate.
type Config struct {
	// Telegram says where the application credentials come from.
	Telegram TelegramConfig `yaml:"telegram"`
	// Accounts are the monitored accounts, at least one.
	Accounts []AccountConfig `yaml:"accounts"`
	// SessionsDir holds one session file per account (SessionPath),
	// written with mode 0600.
	SessionsDir string `yaml:"sessions_dir"`
	// Store is the daemon's database.
	Store StoreConfig `yaml:"store"`
	// HTTP is the API, metrics and status page listener.
	HTTP HTTPConfig `yaml:"http"`
	// Probes are the probe schedules by kind.
	Probes ProbeConfigs `yaml:"probes"`
	// Guard configures the guard on each account's client.
	Guard GuardConfig `yaml:"guard"`
	// LimitsProfile is the path of a limits profile; empty means the
	// embedded default (limits.Default).
	LimitsProfile string `yaml:"limits_profile"`
	// Log configures the daemon's log.
	Log LogConfig `yaml:"log"`

	// Profile is the limits profile LoadConfig loaded: the file at
	// LimitsProfile, or limits.Default().
	Profile *limits.Profile `yaml:"-"`

	file  string         // the file name errors are prefixed with
	lines map[string]int // YAML path -> line, for errors found after decoding
}

// TelegramConfig says where the application's api_id and api_hash (from
// my.telegram.org) come from. Exactly one source of each is set; an inline
// api_hash is refused.
type TelegramConfig struct {
	// APIID is the api_id inline (it is not secret on its own).
	APIID int `yaml:"api_id,omitempty"`
	// APIIDEnv names the environment variable holding the api_id.
	APIIDEnv string `yaml:"api_id_env,omitempty"`
	// APIIDFile is the file holding the api_id.
	APIIDFile string `yaml:"api_id_file,omitempty"`
	// APIHashEnv names the environment variable holding the api_hash.
	APIHashEnv string `yaml:"api_hash_env,omitempty"`
	// APIHashFile is the file holding the api_hash, mode 0600 or stricter.
	APIHashFile string `yaml:"api_hash_file,omitempty"`
}

// DC is the Telegram environment an account lives in.
type DC string

// The data centres.
const (
	// DCProduction is Telegram's production environment (the default).
	DCProduction DC = "production"
	// DCTest is Telegram's test environment, for test accounts.
	DCTest DC = "test"
)

// AccountConfig is one monitored account.
type AccountConfig struct {
	// Name identifies the account in logs, metrics and the API; it must
	// pass monitor.ValidateName (in particular it must not look like a
	// phone number).
	Name string `yaml:"name"`
	// Phone is the number inline; PhoneEnv names the environment variable
	// holding it. Exactly one is set.
	Phone    Secret `yaml:"phone,omitempty"`
	PhoneEnv string `yaml:"phone_env,omitempty"`
	// DC is production (the default) or test.
	DC DC `yaml:"dc"`
	// Tags are free labels for grouping accounts in the API.
	Tags []string `yaml:"tags,omitempty"`
	// Created is when the account was registered (zero: unknown), for
	// the guard's young-account limits.
	Created time.Time `yaml:"created,omitempty"`
}

// StoreConfig is the daemon's database.
type StoreConfig struct {
	// Path is the database file.
	Path string `yaml:"path"`
	// Retention is how long account history is kept, at least MinRetention.
	Retention limits.Duration `yaml:"retention"`
}

// HTTPConfig is the API, metrics and status page listener.
type HTTPConfig struct {
	// Listen is host:port; the default binds to loopback only.
	Listen string `yaml:"listen"`
	// TokenEnv or TokenFile holds the API token; one is required when
	// Listen is not a loopback address. An inline token is refused.
	TokenEnv  string `yaml:"token_env,omitempty"`
	TokenFile string `yaml:"token_file,omitempty"`
	// AllowedHosts are host names the daemon answers to besides IP
	// addresses, localhost and Listen's host (the Host header check
	// against DNS rebinding, hostCheck).
	AllowedHosts []string `yaml:"allowed_hosts,omitempty"`
	// MaxConnections caps open connections (connCap); idle ones are
	// closed to make room for new ones.
	MaxConnections int `yaml:"max_connections"`
}

// ProbeSchedule overrides one probe kind's probe.Schedule.
type ProbeSchedule struct {
	// Interval is probe.Schedule.Interval; zero runs on request only.
	Interval limits.Duration `yaml:"interval"`
	// Jitter is probe.Schedule.Jitter.
	Jitter limits.Duration `yaml:"jitter"`
	// Floor is probe.Schedule.Floor, at least the kind's default floor.
	Floor limits.Duration `yaml:"floor"`
}

// Schedule returns the schedule for probe.Scheduler.Add.
func (p ProbeSchedule) Schedule() probe.Schedule {
	return probe.Schedule{Interval: p.Interval.D(), Jitter: p.Jitter.D(), Floor: p.Floor.D()}
}

// ProbeConfigs holds the schedules of the configurable probe kinds
// (ProbeKinds), keyed by kind; after LoadConfig every kind is present.
type ProbeConfigs map[string]ProbeSchedule

// ProbeKinds are the probe kinds whose schedules the file may set. The
// self probe runs on every connect and is not configurable.
var ProbeKinds = []string{monitor.ProbeSpamBot, monitor.ProbeFreeze, monitor.ProbeSessions}

// probeFloorWhy explains, per kind, why DefaultSchedules' floor is a
// minimum and not just a default.
var probeFloorWhy = map[string]string{
	monitor.ProbeSpamBot:  "each SpamBot probe is a /start message to @SpamBot, and an account that keeps asking SpamBot about itself looks like one that expects to be limited; the floor also caps probes requested by storms of PEER_FLOOD errors",
	monitor.ProbeFreeze:   "each freeze probe is a help.getAppConfig call, which official clients make at most hourly; a client polling it more often stands out",
	monitor.ProbeSessions: "each sessions probe is an account.getAuthorizations call; new logins matter within hours, not minutes, and no official client polls it often",
}

// GuardMode is guard.mode: whether the daemon's clients are guarded.
type GuardMode string

// The guard modes.
const (
	// GuardOff installs no guard.
	GuardOff GuardMode = "off"
	// GuardObserve counts and logs what the guard would refuse
	// (guard.Observe).
	GuardObserve GuardMode = "observe"
	// GuardEnforce refuses such calls (guard.Enforce).
	GuardEnforce GuardMode = "enforce"
)

// GuardConfig configures the guard on each account's client.
type GuardConfig struct {
	// Mode is observe (the default), enforce or off.
	Mode GuardMode `yaml:"mode"`
	// Margin is guard.Options.Margin, in (0, 1].
	Margin float64 `yaml:"margin"`
	// MaxWait is guard.Options.MaxWait; zero fails fast.
	MaxWait limits.Duration `yaml:"max_wait"`
}

// LogConfig configures the daemon's log.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
}

// DefaultConfig returns a configuration with every default filled in and
// no accounts or Telegram credentials (so it does not validate as is).
func DefaultConfig() *Config {
	c := &Config{
		SessionsDir: DefaultSessionsDir,
		Store:       StoreConfig{Path: DefaultStorePath, Retention: DefaultRetention},
		HTTP:        HTTPConfig{Listen: DefaultListen, MaxConnections: DefaultMaxConnections},
		Probes:      ProbeConfigs{},
		Guard:       GuardConfig{Mode: DefaultGuardMode, Margin: guard.DefaultMargin},
		Log:         LogConfig{Level: DefaultLogLevel},
	}
	def := probe.DefaultSchedules()
	for _, k := range ProbeKinds {
		s := def[k]
		c.Probes[k] = ProbeSchedule{Interval: limits.Duration(s.Interval), Jitter: limits.Duration(s.Jitter), Floor: limits.Duration(s.Floor)}
	}
	return c
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path is the key in YAML path form (accounts[2].name, http.listen);
	// empty for the file as a whole.
	Path string
	// Line is the line in the file, 0 when unknown.
	Line int
	// Msg says what is wrong and how to fix it. It never contains a
	// secret's value.
	Msg string
}

// String formats the problem as "line: path: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ConfigError lists every problem found in a configuration.
type ConfigError struct {
	// File is the configuration's name (usually its path).
	File string
	// Problems are in file order; those without a line come last.
	Problems []Problem
}

// Lines returns one line per problem, "file:line: path: message", the
// form compilers use so editors can jump to it.
func (e *ConfigError) Lines() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = formatProblem(e.File, p, "")
	}
	return out
}

// formatProblem writes "file:line: kind: path: message", leaving out what
// is unknown or empty.
func formatProblem(file string, p Problem, kind string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if kind != "" {
		b.WriteString(kind + ": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error returns Lines joined by newlines.
func (e *ConfigError) Error() string { return strings.Join(e.Lines(), "\n") }

// LoadConfig reads, decodes and validates a configuration file, and loads
// the limits profile it names. Relative paths in the file are made
// absolute, relative to the file's directory. Secrets are not read: see
// ResolveSecrets. A non-nil error is a *ConfigError listing every problem
// found; errors are prefixed with path as given.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{File: path, Problems: []Problem{{Msg: "cannot read the configuration: " + err.Error()}}}
	}
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return parseConfig(b, path, dir)
}

// ParseConfig is LoadConfig on data already read: name prefixes errors,
// and its directory anchors relative paths.
func ParseConfig(data []byte, name string) (*Config, error) {
	return parseConfig(data, name, filepath.Dir(name))
}

func parseConfig(data []byte, name, dir string) (*Config, error) {
	c := DefaultConfig()
	c.file = name
	d := newDecoder()
	c.lines = d.Lines

	fail := func(p Problem) (*Config, error) {
		return nil, &ConfigError{File: name, Problems: []Problem{p}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(Problem{Msg: "the configuration is empty (see docs/examples/safetyd.yaml)"})
		}
		return fail(syntaxProblem(err))
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return fail(syntaxProblem(err))
	default:
		d.add("", next.Line, "a second YAML document (after ---); the configuration is one document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return fail(Problem{Msg: "the configuration is empty (see docs/examples/safetyd.yaml)"})
		}
		root = root.Content[0]
	}
	d.config(root, c)
	c.resolvePaths(dir)

	// A value that could not be decoded is reported once: validation
	// problems at or below its path are dropped.
	probs := d.problems()
	covered := func(path string) bool {
		if d.rootBad {
			return true
		}
		for _, p := range d.Problems {
			if p.Path != "" && path == p.Path || strings.HasPrefix(path, p.Path+".") || strings.HasPrefix(path, p.Path+"[") {
				return true
			}
		}
		return false
	}
	for _, p := range c.problems() {
		if !covered(p.Path) {
			probs = append(probs, p)
		}
	}
	c.Profile = limits.Default()
	if c.LimitsProfile != "" && !covered("limits_profile") {
		p, err := limits.Load(c.LimitsProfile)
		if err != nil {
			probs = append(probs, c.problem("limits_profile", "cannot use the limits profile %s: %s", showPath(c.LimitsProfile), profileProblem(c.LimitsProfile, err)))
		} else {
			c.Profile = p
		}
	}
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool {
			li, lj := probs[i].Line, probs[j].Line
			return li != 0 && (lj == 0 || li < lj)
		})
		for i := range probs {
			probs[i].Msg = scrub(probs[i].Msg, d.phones)
		}
		return nil, &ConfigError{File: name, Problems: probs}
	}
	return c, nil
}

var profileLine = regexp.MustCompile(`\bline (\d+)\b`)

// profileField is the field path a profile's validation error starts
// with (actions.dm_contact.penalty, flood.factors[2]).
var profileField = regexp.MustCompile(`^[a-z_]+(\[[0-9]+\])?(\.[a-z_]+(\[[0-9]+\])?)*$`)

// profileProblem says why limits.Load failed without quoting the file:
// limits_profile may name any file by mistake (/etc/shadow), and the YAML
// decoder's messages quote its lines and keys. What is left is where to
// look: the lines, or the field that failed validation.
func profileProblem(path string, err error) string {
	const why = "its content is not quoted here, in case the path names another file by mistake; see docs/limits.md"
	var pe *fs.PathError
	if errors.As(err, &pe) {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "not found"
		case errors.Is(err, fs.ErrPermission):
			return "permission denied"
		}
		return "cannot read it: " + pe.Err.Error()
	}
	msg := strings.TrimPrefix(err.Error(), path+": ")
	var lines []string
	for _, m := range profileLine.FindAllStringSubmatch(msg, 5) {
		if !slices.Contains(lines, m[1]) {
			lines = append(lines, m[1])
		}
	}
	if len(lines) > 0 {
		return fmt.Sprintf("not a limits profile (YAML problems at line %s); %s", strings.Join(lines, ", "), why)
	}
	if field, _, ok := strings.Cut(msg, ": "); ok && profileField.MatchString(field) && showKey(field) {
		return fmt.Sprintf("%s is missing or not valid; %s", field, why)
	}
	return "not a valid limits profile; " + why
}

// resolvePaths makes relative paths relative to dir (the config file's).
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{
		&c.Telegram.APIIDFile, &c.Telegram.APIHashFile, &c.SessionsDir,
		&c.Store.Path, &c.HTTP.TokenFile, &c.LimitsProfile,
	} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// SessionPath is the session file of the named account.
func (c *Config) SessionPath(name string) string {
	return filepath.Join(c.SessionsDir, name+".session")
}

// Schedules returns probe.DefaultSchedules with the configured kinds
// replaced, for probe.Scheduler.Add.
func (c *Config) Schedules() map[string]probe.Schedule {
	out := probe.DefaultSchedules()
	for k, s := range c.Probes {
		out[k] = s.Schedule()
	}
	return out
}

// GuardOptions returns the guard options for an account; ok is false when
// guard.mode is off. The caller sets Registerer and Logger.
func (c *Config) GuardOptions(a AccountConfig) (opts guard.Options, ok bool) {
	mode := guard.Observe
	switch c.Guard.Mode {
	case GuardOff:
		return guard.Options{}, false
	case GuardEnforce:
		mode = guard.Enforce
	}
	return guard.Options{
		Profile: c.Profile,
		Margin:  c.Guard.Margin,
		Mode:    mode,
		MaxWait: c.Guard.MaxWait.D(),
		Created: a.Created,
	}, true
}

// Account returns the named account's configuration.
func (c *Config) Account(name string) (AccountConfig, bool) {
	for _, a := range c.Accounts {
		if a.Name == name {
			return a, true
		}
	}
	return AccountConfig{}, false
}

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
			add(at+".dc", "unknown data centre %s (production or test)", quote(string(a.DC)))
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
	if c.Store.Path == "" {
		add("store.path", "missing: the database file (default %s)", DefaultStorePath)
	}
	if c.Store.Retention < MinRetention {
		add("store.retention", "%s is less than %s: limits and freezes last days, and a shorter history would hide them from the API and status page", c.Store.Retention, MinRetention)
	}

	// http
	h := c.HTTP
	loopback, err := listenLoopback(h.Listen)
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
		add("guard.mode", "unknown mode %s (observe, enforce or off)", quote(string(c.Guard.Mode)))
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
		add("log.level", "unknown level %s (debug, info, warn or error)", quote(c.Log.Level))
	}
	return out
}

// Warnings lists settings that are valid but deserve a second look.
func (c *Config) Warnings() []Problem {
	var out []Problem
	if lb, err := listenLoopback(c.HTTP.Listen); err == nil && !lb {
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
	if lb, _ := listenLoopback(c.HTTP.Listen); lb {
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
	return fmt.Sprintf("%d %s (%s), store %s (retention %s), http %s (%s, %s), guard %s, limits profile %s",
		len(names), noun, strings.Join(names, ", "), c.Store.Path, c.Store.Retention,
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

// listenLoopback parses a listen address and says whether it binds to
// loopback only.
func listenLoopback(listen string) (bool, error) {
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

// quote quotes a value for an error message, unless it could be a
// secret: anything as long as the shortest token accepted, anything
// shaped like a phone number or a generated secret (secretShape,
// mixedCase). Keys and enum values, which is what a typo changes, are
// short plain words.
func quote(v string) string {
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
func durText(d limits.Duration) string {
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

// ReloadPlan is what applying a new configuration on SIGHUP changes.
type ReloadPlan struct {
	// Added, Removed and Changed are account names. A changed account is
	// restarted; the others keep running untouched.
	Added, Removed, Changed []string
	// Restart lists keys whose change takes effect only when the daemon
	// restarts; a reload keeps their old values.
	Restart []string
}

// PlanReload compares the running configuration with next. Accounts are
// changed when their own entry changed, or for all of them when guard,
// probes or the limits profile changed. telegram, sessions_dir, store and
// http need a restart; log.level applies at once.
func (c *Config) PlanReload(next *Config) ReloadPlan {
	var p ReloadPlan
	global := !reflect.DeepEqual(c.Guard, next.Guard) || !reflect.DeepEqual(c.Probes, next.Probes) ||
		c.LimitsProfile != next.LimitsProfile || !reflect.DeepEqual(c.Profile, next.Profile)
	for _, a := range next.Accounts {
		old, ok := c.Account(a.Name)
		switch {
		case !ok:
			p.Added = append(p.Added, a.Name)
		case global || !reflect.DeepEqual(old, a):
			p.Changed = append(p.Changed, a.Name)
		}
	}
	for _, a := range c.Accounts {
		if _, ok := next.Account(a.Name); !ok {
			p.Removed = append(p.Removed, a.Name)
		}
	}
	for _, k := range []struct {
		key  string
		a, b any
	}{
		{"telegram", c.Telegram, next.Telegram},
		{"sessions_dir", c.SessionsDir, next.SessionsDir},
		{"store", c.Store, next.Store},
		{"http", c.HTTP, next.HTTP},
	} {
		if !reflect.DeepEqual(k.a, k.b) {
			p.Restart = append(p.Restart, k.key)
		}
	}
	return p
}
