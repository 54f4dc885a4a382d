package config

import (
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/monitor/yamlnode"
)

var longNumber = regexp.MustCompile(`\+?[0-9]{7,}`)

// syntaxProblem turns a YAML parser error into a Problem with its line.
// Long numbers in the parser's message are hidden: they could be phone
// numbers quoted from the file.
func syntaxProblem(err error) Problem {
	p := yamlnode.Syntax(err)
	return Problem{Line: p.Line, Msg: longNumber.ReplaceAllString(p.Msg, "(number not shown)")}
}

// decoder fills a Config from the YAML tree with yamlnode, which
// collects every problem with its path and line, and records the line of
// every key for later problems.
type decoder struct {
	yamlnode.Decoder
	phones  []string // inline phone values, scrubbed from messages
	rootBad bool     // the document is not a mapping: nothing else to say
}

func newDecoder() *decoder {
	return &decoder{Decoder: yamlnode.Decoder{
		Lines:         map[string]int{},
		FollowAliases: true,
		NullIsAbsent:  true,
		Quote:         Quote,
		HideKey:       func(key string) bool { return !showKey(key) },
		Refused:       refused,
	}}
}

func (d *decoder) add(path string, line int, format string, args ...any) {
	d.ErrorfAt(line, path, format, args...)
}

// problems returns what the walk found, as Problems.
func (d *decoder) problems() []Problem {
	out := make([]Problem, len(d.Problems))
	for i, p := range d.Problems {
		out[i] = Problem{Path: p.Path, Line: p.Line, Msg: p.Msg}
	}
	return out
}

// refused are keys that are known but not accepted, with the reason.
var refused = map[string]string{
	"telegram.api_hash": "inline api_hash is refused: configuration files end up in backups, tickets and version control; " +
		"put it in an environment variable (api_hash_env) or a file readable only by the daemon's user (api_hash_file, mode 0600)",
	"http.token": "an inline token is refused: configuration files end up in backups, tickets and version control; " +
		"put it in an environment variable (token_env) or a file readable only by the daemon's user (token_file, mode 0600)",
	"store.password": "an inline database password is refused: configuration files end up in backups, tickets and version control; " +
		"put it in an environment variable (password_env) or a file readable only by the daemon's user (password_file, mode 0600)",
}

// set stores a value read by yamlnode in dst when it was good; a bad one
// is already reported and dst keeps its default.
func set[T any](dst *T) func(T, bool) {
	return func(v T, ok bool) {
		if ok {
			*dst = v
		}
	}
}

func (d *decoder) date(f yamlnode.Field, dst *time.Time) {
	v, ok := d.Scalar(f, "a date")
	if !ok {
		return
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil {
			*dst = t
			return
		}
	}
	n, _ := d.Resolve(f.Value, f.Path)
	d.Errorf(n, f.Path, "%s is not a date (use YYYY-MM-DD)", Quote(v))
}

func (d *decoder) config(n *yaml.Node, c *Config) {
	if root, _ := d.Resolve(n, ""); !yamlnode.Null(root) && root.Kind != yaml.MappingNode {
		d.rootBad = true
		d.Errorf(root, "", "the configuration must be key: value pairs (see docs/examples/safetyd.yaml), got %s", d.Kind(root))
		return
	}
	m := d.Mapping(n, "", "telegram", "accounts", "sessions_dir", "store", "http", "probes", "guard", "limits_profile", "log")
	if v, ok := m["telegram"]; ok {
		t := d.Mapping(v.Value, v.Path, "api_id", "api_id_env", "api_id_file", "api_hash_env", "api_hash_file", "simulated")
		opt(t, "api_id", func(f yamlnode.Field) { set(&c.Telegram.APIID)(d.Int(f)) })
		opt(t, "api_id_env", func(f yamlnode.Field) { set(&c.Telegram.APIIDEnv)(d.String(f)) })
		opt(t, "api_id_file", func(f yamlnode.Field) { set(&c.Telegram.APIIDFile)(d.String(f)) })
		opt(t, "api_hash_env", func(f yamlnode.Field) { set(&c.Telegram.APIHashEnv)(d.String(f)) })
		opt(t, "api_hash_file", func(f yamlnode.Field) { set(&c.Telegram.APIHashFile)(d.String(f)) })
		opt(t, "simulated", func(f yamlnode.Field) {
			sim := &SimulatedTelegram{}
			c.Telegram.Simulated = sim
			m := d.Mapping(f.Value, f.Path, "address", "dc", "public_key_file")
			opt(m, "address", func(f yamlnode.Field) { set(&sim.Address)(d.String(f)) })
			opt(m, "dc", func(f yamlnode.Field) { set(&sim.DC)(d.Int(f)) })
			opt(m, "public_key_file", func(f yamlnode.Field) { set(&sim.PublicKeyFile)(d.String(f)) })
		})
	}
	opt(m, "accounts", func(f yamlnode.Field) { d.accounts(f, c) })
	opt(m, "sessions_dir", func(f yamlnode.Field) { set(&c.SessionsDir)(d.String(f)) })
	if v, ok := m["store"]; ok {
		s := d.Mapping(v.Value, v.Path, "driver", "path", "retention", "dsn", "dsn_env", "dsn_file", "password_env", "password_file", "lease_ttl", "lease_margin")
		opt(s, "driver", func(f yamlnode.Field) { set(&c.Store.Driver)(d.String(f)) })
		opt(s, "path", func(f yamlnode.Field) { set(&c.Store.Path)(d.String(f)) })
		opt(s, "dsn", func(f yamlnode.Field) { set(&c.Store.DSN)(d.String(f)) })
		opt(s, "dsn_env", func(f yamlnode.Field) { set(&c.Store.DSNEnv)(d.String(f)) })
		opt(s, "dsn_file", func(f yamlnode.Field) { set(&c.Store.DSNFile)(d.String(f)) })
		opt(s, "password_env", func(f yamlnode.Field) { set(&c.Store.PasswordEnv)(d.String(f)) })
		opt(s, "password_file", func(f yamlnode.Field) { set(&c.Store.PasswordFile)(d.String(f)) })
		opt(s, "retention", func(f yamlnode.Field) { set(&c.Store.Retention)(d.Duration(f)) })
		opt(s, "lease_ttl", func(f yamlnode.Field) { set(&c.Store.LeaseTTL)(d.Duration(f)) })
		opt(s, "lease_margin", func(f yamlnode.Field) { set(&c.Store.LeaseMargin)(d.Duration(f)) })
	}
	if v, ok := m["http"]; ok {
		h := d.Mapping(v.Value, v.Path, "listen", "token_env", "token_file", "allowed_hosts", "max_connections")
		opt(h, "listen", func(f yamlnode.Field) { set(&c.HTTP.Listen)(d.String(f)) })
		opt(h, "allowed_hosts", func(f yamlnode.Field) { c.HTTP.AllowedHosts, _ = d.Strings(f) })
		opt(h, "max_connections", func(f yamlnode.Field) { set(&c.HTTP.MaxConnections)(d.Int(f)) })
		opt(h, "token_env", func(f yamlnode.Field) { set(&c.HTTP.TokenEnv)(d.String(f)) })
		opt(h, "token_file", func(f yamlnode.Field) { set(&c.HTTP.TokenFile)(d.String(f)) })
	}
	if v, ok := m["probes"]; ok {
		p := d.Mapping(v.Value, v.Path, ProbeKinds...)
		for _, k := range ProbeKinds {
			opt(p, k, func(v yamlnode.Field) {
				s := c.Probes[k]
				f := d.Mapping(v.Value, v.Path, "interval", "jitter", "floor")
				opt(f, "interval", func(f yamlnode.Field) { set(&s.Interval)(d.Duration(f)) })
				opt(f, "jitter", func(f yamlnode.Field) { set(&s.Jitter)(d.Duration(f)) })
				opt(f, "floor", func(f yamlnode.Field) { set(&s.Floor)(d.Duration(f)) })
				c.Probes[k] = s
			})
		}
	}
	if v, ok := m["guard"]; ok {
		g := d.Mapping(v.Value, v.Path, "mode", "margin", "max_wait")
		opt(g, "mode", func(f yamlnode.Field) {
			s, _ := d.String(f)
			c.Guard.Mode = GuardMode(strings.ToLower(strings.TrimSpace(s)))
		})
		opt(g, "margin", func(f yamlnode.Field) { set(&c.Guard.Margin)(d.Float(f)) })
		opt(g, "max_wait", func(f yamlnode.Field) { set(&c.Guard.MaxWait)(d.Duration(f)) })
	}
	opt(m, "limits_profile", func(f yamlnode.Field) { set(&c.LimitsProfile)(d.String(f)) })
	if v, ok := m["log"]; ok {
		l := d.Mapping(v.Value, v.Path, "level")
		opt(l, "level", func(f yamlnode.Field) { set(&c.Log.Level)(d.String(f)) })
	}
}

// opt calls f with m[key] when the key is present and not null.
func opt(m map[string]yamlnode.Field, key string, f func(yamlnode.Field)) {
	if v, ok := m[key]; ok {
		f(v)
	}
}

func (d *decoder) accounts(f yamlnode.Field, c *Config) {
	n, _ := d.Resolve(f.Value, f.Path)
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, f.Path, "expected a list of accounts (each starting with \"- name: ...\"), got %s", d.Kind(n))
		return
	}
	items, _ := d.List(f)
	for _, item := range items {
		at := item.Path
		a := AccountConfig{DC: DCProduction}
		m := d.Mapping(item.Value, at, "name", "phone", "phone_env", "dc", "tags", "created")
		if v, _ := d.Resolve(item.Value, at); m == nil && !yamlnode.Null(v) && v.Kind != yaml.MappingNode {
			// Already reported; keep the index so later paths stay right.
			c.Accounts = append(c.Accounts, a)
			continue
		}
		opt(m, "name", func(f yamlnode.Field) { set(&a.Name)(d.String(f)) })
		opt(m, "phone", func(f yamlnode.Field) {
			// Never echo: not even the node's kind is worth a value here.
			v, _ := d.Resolve(f.Value, f.Path)
			if v.Kind != yaml.ScalarNode {
				d.Errorf(v, f.Path, "expected the phone number as a single value, got %s", d.Kind(v))
				return
			}
			d.phones = append(d.phones, v.Value)
			a.Phone = Secret{v.Value}
		})
		opt(m, "phone_env", func(f yamlnode.Field) { set(&a.PhoneEnv)(d.String(f)) })
		opt(m, "dc", func(f yamlnode.Field) {
			s, _ := d.String(f)
			a.DC = DC(strings.ToLower(strings.TrimSpace(s)))
		})
		opt(m, "tags", func(f yamlnode.Field) { a.Tags, _ = d.Strings(f) })
		opt(m, "created", func(f yamlnode.Field) { d.date(f, &a.Created) })
		c.Accounts = append(c.Accounts, a)
	}
}
