package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/monitor/limits"
)

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

var longNumber = regexp.MustCompile(`\+?[0-9]{7,}`)

// syntaxProblem turns a YAML parser error into a Problem with its line.
// Long numbers in the parser's message are hidden: they could be phone
// numbers quoted from the file.
func syntaxProblem(err error) Problem {
	s := longNumber.ReplaceAllString(err.Error(), "(number not shown)")
	if m := yamlLine.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{Line: n, Msg: "YAML syntax: " + m[2]}
	}
	return Problem{Msg: "YAML syntax: " + strings.TrimPrefix(s, "yaml: ")}
}

// decoder walks the YAML tree, collecting every problem with its path and
// line, and recording the line of every key for later problems.
type decoder struct {
	probs   []Problem
	lines   map[string]int
	phones  []string // inline phone values, scrubbed from messages
	rootBad bool     // the document is not a mapping: nothing else to say
}

func (d *decoder) add(path string, line int, format string, args ...any) {
	d.probs = append(d.probs, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "something else"
}

// refused are keys that are known but not accepted, with the reason.
var refused = map[string]string{
	"telegram.api_hash": "inline api_hash is refused: configuration files end up in backups, tickets and version control; " +
		"put it in an environment variable (api_hash_env) or a file readable only by the daemon's user (api_hash_file, mode 0600)",
	"http.token": "an inline token is refused: configuration files end up in backups, tickets and version control; " +
		"put it in an environment variable (token_env) or a file readable only by the daemon's user (token_file, mode 0600)",
}

// mapping checks that n is a mapping with only the given keys, each once,
// and returns the non-null values by key. A null n gives nil silently.
func (d *decoder) mapping(n *yaml.Node, path string, keys ...string) map[string]*yaml.Node {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		what := "key: value pairs"
		if path == "" {
			what = "the configuration must be key: value pairs (see docs/examples/safetyd.yaml)"
			d.rootBad = true
		}
		d.add(path, n.Line, "expected %s, got %s", what, kindName(n))
		return nil
	}
	out := map[string]*yaml.Node{}
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.add(path, k.Line, "keys must be plain names, got %s", kindName(k))
			continue
		}
		key := k.Value
		p := join(path, key)
		if countDigits(key) >= 7 || len(key) > 64 {
			p = join(path, "(key not shown)")
		}
		if l, dup := first[key]; dup {
			d.add(p, k.Line, "appears twice (first on line %d)", l)
			continue
		}
		first[key] = k.Line
		if why, ok := refused[join(path, key)]; ok {
			d.add(p, k.Line, "%s", why)
			continue
		}
		if !slices.Contains(keys, key) {
			msg := "unknown key"
			if key == "<<" {
				msg = "YAML merge keys (<<) are not supported"
			} else if s := suggest(key, keys); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			d.add(p, k.Line, "%s; known keys here: %s", msg, strings.Join(keys, ", "))
			continue
		}
		d.lines[p] = k.Line
		if !isNull(v) {
			out[key] = v
		}
	}
	return out
}

// suggest returns the known key closest to an unknown one, if close.
func suggest(key string, keys []string) string {
	best, bestD := "", 3
	for _, k := range keys {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		d.add(path, n.Line, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(n *yaml.Node, path string, dst *string) {
	if v, ok := d.scalar(n, path, "a string"); ok {
		*dst = v
	}
}

func (d *decoder) int(n *yaml.Node, path string, dst *int) {
	v, ok := d.scalar(n, path, "an integer")
	if !ok {
		return
	}
	i, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil {
		d.add(path, deref(n).Line, "expected an integer, got %s", quote(v))
		return
	}
	*dst = i
}

func (d *decoder) float(n *yaml.Node, path string, dst *float64) {
	v, ok := d.scalar(n, path, "a number")
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		d.add(path, deref(n).Line, "expected a number, got %s", quote(v))
		return
	}
	*dst = f
}

func (d *decoder) duration(n *yaml.Node, path string, dst *limits.Duration) {
	v, ok := d.scalar(n, path, "a duration")
	if !ok {
		return
	}
	if v == "0" {
		*dst = 0
		return
	}
	x, err := limits.ParseDuration(v)
	if err != nil || v == "" {
		d.add(path, deref(n).Line, "%s is not a duration (use 90s, 15m, 6h, 3d or 1d12h)", quote(v))
		return
	}
	*dst = x
}

func (d *decoder) date(n *yaml.Node, path string, dst *time.Time) {
	v, ok := d.scalar(n, path, "a date")
	if !ok {
		return
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil {
			*dst = t
			return
		}
	}
	d.add(path, deref(n).Line, "%s is not a date (use YYYY-MM-DD)", quote(v))
}

func (d *decoder) strings(n *yaml.Node, path string, dst *[]string) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		d.add(path, n.Line, "expected a list (e.g. [a, b]), got %s", kindName(n))
		return
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		p := path + "[" + strconv.Itoa(i) + "]"
		d.lines[p] = item.Line
		var s string
		d.str(item, p, &s)
		out = append(out, s)
	}
	*dst = out
}

func (d *decoder) config(n *yaml.Node, c *Config) {
	m := d.mapping(n, "", "telegram", "accounts", "sessions_dir", "store", "http", "probes", "guard", "limits_profile", "log")
	if v := m["telegram"]; v != nil {
		t := d.mapping(v, "telegram", "api_id", "api_id_env", "api_id_file", "api_hash_env", "api_hash_file")
		opt(t, "api_id", func(v *yaml.Node) { d.int(v, "telegram.api_id", &c.Telegram.APIID) })
		opt(t, "api_id_env", func(v *yaml.Node) { d.str(v, "telegram.api_id_env", &c.Telegram.APIIDEnv) })
		opt(t, "api_id_file", func(v *yaml.Node) { d.str(v, "telegram.api_id_file", &c.Telegram.APIIDFile) })
		opt(t, "api_hash_env", func(v *yaml.Node) { d.str(v, "telegram.api_hash_env", &c.Telegram.APIHashEnv) })
		opt(t, "api_hash_file", func(v *yaml.Node) { d.str(v, "telegram.api_hash_file", &c.Telegram.APIHashFile) })
	}
	if v := m["accounts"]; v != nil {
		d.accounts(v, c)
	}
	opt(m, "sessions_dir", func(v *yaml.Node) { d.str(v, "sessions_dir", &c.SessionsDir) })
	if v := m["store"]; v != nil {
		s := d.mapping(v, "store", "path", "retention")
		opt(s, "path", func(v *yaml.Node) { d.str(v, "store.path", &c.Store.Path) })
		opt(s, "retention", func(v *yaml.Node) { d.duration(v, "store.retention", &c.Store.Retention) })
	}
	if v := m["http"]; v != nil {
		h := d.mapping(v, "http", "listen", "token_env", "token_file")
		opt(h, "listen", func(v *yaml.Node) { d.str(v, "http.listen", &c.HTTP.Listen) })
		opt(h, "token_env", func(v *yaml.Node) { d.str(v, "http.token_env", &c.HTTP.TokenEnv) })
		opt(h, "token_file", func(v *yaml.Node) { d.str(v, "http.token_file", &c.HTTP.TokenFile) })
	}
	if v := m["probes"]; v != nil {
		p := d.mapping(v, "probes", ProbeKinds...)
		for _, k := range ProbeKinds {
			opt(p, k, func(v *yaml.Node) {
				at := "probes." + k
				s := c.Probes[k]
				f := d.mapping(v, at, "interval", "jitter", "floor")
				opt(f, "interval", func(v *yaml.Node) { d.duration(v, at+".interval", &s.Interval) })
				opt(f, "jitter", func(v *yaml.Node) { d.duration(v, at+".jitter", &s.Jitter) })
				opt(f, "floor", func(v *yaml.Node) { d.duration(v, at+".floor", &s.Floor) })
				c.Probes[k] = s
			})
		}
	}
	if v := m["guard"]; v != nil {
		g := d.mapping(v, "guard", "mode", "margin", "max_wait")
		opt(g, "mode", func(v *yaml.Node) {
			var s string
			d.str(v, "guard.mode", &s)
			c.Guard.Mode = GuardMode(strings.ToLower(strings.TrimSpace(s)))
		})
		opt(g, "margin", func(v *yaml.Node) { d.float(v, "guard.margin", &c.Guard.Margin) })
		opt(g, "max_wait", func(v *yaml.Node) { d.duration(v, "guard.max_wait", &c.Guard.MaxWait) })
	}
	opt(m, "limits_profile", func(v *yaml.Node) { d.str(v, "limits_profile", &c.LimitsProfile) })
	if v := m["log"]; v != nil {
		l := d.mapping(v, "log", "level")
		opt(l, "level", func(v *yaml.Node) { d.str(v, "log.level", &c.Log.Level) })
	}
}

// opt calls f with m[key] when the key is present and not null.
func opt(m map[string]*yaml.Node, key string, f func(*yaml.Node)) {
	if v := m[key]; v != nil {
		f(v)
	}
}

func (d *decoder) accounts(n *yaml.Node, c *Config) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		d.add("accounts", n.Line, "expected a list of accounts (each starting with \"- name: ...\"), got %s", kindName(n))
		return
	}
	for i, item := range n.Content {
		at := "accounts[" + strconv.Itoa(i) + "]"
		d.lines[at] = item.Line
		a := AccountConfig{DC: DCProduction}
		m := d.mapping(item, at, "name", "phone", "phone_env", "dc", "tags", "created")
		if m == nil && !isNull(item) && deref(item).Kind != yaml.MappingNode {
			// Already reported; keep the index so later paths stay right.
			c.Accounts = append(c.Accounts, a)
			continue
		}
		opt(m, "name", func(v *yaml.Node) { d.str(v, at+".name", &a.Name) })
		opt(m, "phone", func(v *yaml.Node) {
			// Never echo: not even the node's kind is worth a value here.
			v = deref(v)
			if v.Kind != yaml.ScalarNode {
				d.add(at+".phone", v.Line, "expected the phone number as a single value, got %s", kindName(v))
				return
			}
			d.phones = append(d.phones, v.Value)
			a.Phone = Secret{v.Value}
		})
		opt(m, "phone_env", func(v *yaml.Node) { d.str(v, at+".phone_env", &a.PhoneEnv) })
		opt(m, "dc", func(v *yaml.Node) {
			var s string
			d.str(v, at+".dc", &s)
			a.DC = DC(strings.ToLower(strings.TrimSpace(s)))
		})
		opt(m, "tags", func(v *yaml.Node) { d.strings(v, at+".tags", &a.Tags) })
		opt(m, "created", func(v *yaml.Node) { d.date(v, at+".created", &a.Created) })
		c.Accounts = append(c.Accounts, a)
	}
}
