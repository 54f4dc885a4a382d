package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/probe"
)

// The defaults LoadConfig fills in for keys the file leaves out
// (docs/configuration.md explains each).
const (
	// DefaultSessionsDir is sessions_dir.
	DefaultSessionsDir = "/var/lib/tgsafety/sessions"
	// DriverSQLite and DriverPostgres are store.driver's values.
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
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

// Bounds of store.lease_ttl.
const (
	MinLeaseTTL = limits.Duration(time.Second)
	MaxLeaseTTL = limits.Duration(10 * time.Minute)
)

// MinRetention is the shortest store.retention accepted: limits and
// freezes last days, and a shorter history would hide them.
const MinRetention = limits.Duration(24 * time.Hour)

// Bounds of http.max_connections.
const (
	// DefaultMaxConnections is http.max_connections.
	DefaultMaxConnections = 128
	// MinMaxConnections is the smallest http.max_connections accepted:
	// room for a scrape, a reporter, a health check and a browser.
	MinMaxConnections = 8
)

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
	// Simulated, when set, connects every account to a simulated
	// Telegram (`scenario-run serve`) instead of Telegram's data centres:
	// a fleet's configuration checked end to end before it meets
	// Telegram, and the tests of replicas.
	Simulated *SimulatedTelegram `yaml:"simulated,omitempty"`
}

// SimulatedTelegram is where a simulated Telegram serves MTProto.
type SimulatedTelegram struct {
	// Address is its host:port (`scenario-run serve --listen`).
	Address string `yaml:"address"`
	// DC is the data centre it plays (default 2, as scenario-run serve).
	DC int `yaml:"dc,omitempty"`
	// PublicKeyFile is its RSA public key, PEM (`serve --key-out`).
	PublicKeyFile string `yaml:"public_key_file"`
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
	// Driver is the database engine: DriverSQLite (one daemon, a local
	// file) or DriverPostgres (a database several replicas share).
	Driver string `yaml:"driver"`
	// Path is the SQLite database file.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (postgres://user@host/db or
	// key=value pairs) when it holds no password; DSNEnv or DSNFile hold a
	// whole one that does. PasswordEnv or PasswordFile add the password to
	// a DSN without one.
	DSN          string `yaml:"dsn,omitempty"`
	DSNEnv       string `yaml:"dsn_env,omitempty"`
	DSNFile      string `yaml:"dsn_file,omitempty"`
	PasswordEnv  string `yaml:"password_env,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
	// Retention is how long account history is kept, at least MinRetention.
	Retention limits.Duration `yaml:"retention"`
	// LeaseTTL and LeaseMargin (PostgreSQL) are how long an account's
	// lease lasts after its holder's last renewal, and how much longer
	// another replica waits before taking it (store.LeaseOptions); zero
	// takes the defaults, 30 s and 5 s.
	LeaseTTL    limits.Duration `yaml:"lease_ttl,omitempty"`
	LeaseMargin limits.Duration `yaml:"lease_margin,omitempty"`
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
		Store:       StoreConfig{Driver: DriverSQLite, Path: DefaultStorePath, Retention: DefaultRetention},
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

// resolvePaths makes relative paths relative to dir (the config file's).
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{
		&c.Telegram.APIIDFile, &c.Telegram.APIHashFile, &c.SessionsDir,
		&c.Store.Path, &c.Store.DSNFile, &c.Store.PasswordFile, &c.HTTP.TokenFile, &c.LimitsProfile,
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
