package scenarios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// Bounds that keep a scenario a test rather than a workload: a file that
// asks for more is refused at parse time, before anything runs.
const (
	// MaxFileSize is the largest scenario file read.
	MaxFileSize = 1 << 20
	maxCount    = 10000
	maxUsers    = 20000
	maxDuration = 365 * 24 * time.Hour
	// staging: one account, few calls, little real time.
	maxStagingAdvance = 5 * time.Minute
	maxErrors         = 20
)

// FieldError is one problem in a scenario file, with where it is.
type FieldError struct {
	File   string
	Line   int
	Column int
	// Field is the YAML path of the offending field (steps[2].send.count).
	Field string
	Msg   string
}

// Error formats the problem as file:line:column: field: message, the form
// editors and CI logs link to.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ParseErrors is every problem found in one file (at most 20), so that
// an author fixes them in one go.
type ParseErrors []*FieldError

// Error lists the problems, one per line.
func (es ParseErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and parses a scenario file.
func Load(path string) (*Scenario, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: file is larger than %d bytes", path, MaxFileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return Parse(b, path)
}

// Find expands files and folders into the scenario files they hold
// (*.yaml and *.yml, folders recursively), sorted, without duplicates.
func Find(paths ...string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("scenario: %w", err)
		}
		if !st.IsDir() {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scenario: %w", err)
		}
		sort.Strings(found)
		for _, f := range found {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// Parse decodes and validates a scenario; file names it in errors. Unknown
// fields are errors. The error is a ParseErrors listing every problem with
// its line and field. Parse never panics, whatever the input.
func Parse(data []byte, file string) (s *Scenario, err error) {
	d := &decoder{file: file}
	defer func() {
		if r := recover(); r != nil {
			// A defect in the parser must not take a test run down with it.
			s, err = nil, ParseErrors{{File: file, Msg: fmt.Sprintf("internal parser error: %v", r)}}
		}
	}()
	if len(data) > MaxFileSize {
		return nil, ParseErrors{{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, ParseErrors{d.syntaxError(err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, ParseErrors{{File: file, Line: 1, Msg: "empty scenario (a scenario has name, accounts, steps and expect)"}}
	}
	s = d.scenario(doc.Content[0])
	if len(d.errs) == 0 {
		d.validate(s)
	}
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return s, nil
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) syntaxError(err error) *FieldError {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{File: d.file, Line: line, Msg: "YAML syntax: " + m[2]}
	}
	return &FieldError{File: d.file, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

// decoder walks the YAML node tree, collecting errors with their lines.
type decoder struct {
	file string
	errs ParseErrors
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	if len(d.errs) >= maxErrors {
		return
	}
	e := &FieldError{File: d.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// field is one key of a mapping with its value node.
type field struct {
	key  *yaml.Node
	val  *yaml.Node
	path string
}

// mapping returns a mapping's fields by key, reporting unknown and
// repeated keys. It returns nil when n is not a mapping.
func (d *decoder) mapping(n *yaml.Node, path string, known ...string) map[string]field {
	if !d.plain(n, path) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping (key: value lines), got %s", kindName(n))
		return nil
	}
	out := make(map[string]field, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain words")
			continue
		}
		p := join(path, k.Value)
		if _, dup := out[k.Value]; dup {
			d.errorf(k, p, "given twice")
			continue
		}
		if !contains(known, k.Value) {
			d.errorf(k, p, "unknown field (known here: %s)", strings.Join(known, ", "))
			continue
		}
		out[k.Value] = field{key: k, val: v, path: p}
	}
	return out
}

// plain rejects aliases and merge keys: they make line numbers point at
// the wrong place and can expand without bound.
func (d *decoder) plain(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.errorf(n, path, "YAML anchors and aliases (&name, *name) are not supported; write the value out")
		return false
	}
	return true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "something else"
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *decoder) scalar(f field) (string, bool) {
	if !d.plain(f.val, f.path) {
		return "", false
	}
	if f.val.Kind != yaml.ScalarNode {
		d.errorf(f.val, f.path, "must be a single value, got %s", kindName(f.val))
		return "", false
	}
	return f.val.Value, true
}

func (d *decoder) str(f field) string {
	v, _ := d.scalar(f)
	return v
}

func (d *decoder) integer(f field, lo, hi int) int {
	v, ok := d.scalar(f)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		d.errorf(f.val, f.path, "must be a whole number, got %q", v)
		return 0
	}
	if n < lo || n > hi {
		d.errorf(f.val, f.path, "must be within %d-%d, got %d", lo, hi, n)
		return 0
	}
	return n
}

func (d *decoder) boolean(f field) bool {
	v, ok := d.scalar(f)
	if !ok {
		return false
	}
	switch v {
	case "true":
		return true
	case "false":
		return false
	}
	d.errorf(f.val, f.path, "must be true or false, got %q", v)
	return false
}

func (d *decoder) float(f field, lo, hi float64) float64 {
	v, ok := d.scalar(f)
	if !ok {
		return 0
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || !(x >= lo && x <= hi) {
		d.errorf(f.val, f.path, "must be a number within %v-%v, got %q", lo, hi, v)
		return 0
	}
	return x
}

// duration reads "90s", "15m", "6h", "3d" or "1d12h".
func (d *decoder) duration(f field, allowZero bool) time.Duration {
	v, ok := d.scalar(f)
	if !ok {
		return 0
	}
	x, err := limits.ParseDuration(v)
	switch {
	case err != nil:
		d.errorf(f.val, f.path, "%v", err)
	case x < 0 || (x == 0 && !allowZero):
		d.errorf(f.val, f.path, "must be positive, got %q", v)
	case x.D() > maxDuration && !strings.HasSuffix(f.path, ".age"):
		d.errorf(f.val, f.path, "must be at most 365d, got %q", v)
	case x.D() > 20*maxDuration:
		d.errorf(f.val, f.path, "must be at most 20 years (7300d), got %q", v)
	default:
		return x.D()
	}
	return 0
}

func (d *decoder) list(f field) []*yaml.Node {
	if !d.plain(f.val, f.path) {
		return nil
	}
	if f.val.Kind != yaml.SequenceNode {
		d.errorf(f.val, f.path, "must be a list, got %s", kindName(f.val))
		return nil
	}
	return f.val.Content
}

func (d *decoder) strings(f field) []string {
	var out []string
	for i, n := range d.list(f) {
		v, ok := d.scalar(field{val: n, path: fmt.Sprintf("%s[%d]", f.path, i)})
		if ok {
			out = append(out, v)
		}
	}
	return out
}

func (d *decoder) state(f field) *monitor.State {
	v, ok := d.scalar(f)
	if !ok {
		return nil
	}
	st, ok := monitor.ParseState(v)
	if !ok {
		d.errorf(f.val, f.path, "unknown state %q (%s)", v, stateNames())
		return nil
	}
	return &st
}

func stateNames() string {
	var names []string
	for _, s := range monitor.States() {
		names = append(names, s.String())
	}
	return strings.Join(names, ", ")
}

func (d *decoder) rng(f field, dur, integer bool) *Range {
	v, ok := d.scalar(f)
	if !ok {
		return nil
	}
	r, err := parseRange(v, dur, integer)
	if err != nil {
		d.errorf(f.val, f.path, "%v", err)
		return nil
	}
	return &r
}

// rangeMap reads {key: range}; check validates each key.
func (d *decoder) rangeMap(f field, dur bool, check func(key string) error) map[string]Range {
	if !d.plain(f.val, f.path) {
		return nil
	}
	if f.val.Kind != yaml.MappingNode {
		d.errorf(f.val, f.path, "must be a mapping of name: range, got %s", kindName(f.val))
		return nil
	}
	out := map[string]Range{}
	for i := 0; i+1 < len(f.val.Content); i += 2 {
		k, v := f.val.Content[i], f.val.Content[i+1]
		p := join(f.path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, f.path, "keys must be plain words")
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.errorf(k, p, "given twice")
			continue
		}
		if err := check(k.Value); err != nil {
			d.errorf(k, p, "%v", err)
			continue
		}
		if r := d.rng(field{key: k, val: v, path: p}, dur, !dur); r != nil {
			out[k.Value] = *r
		}
	}
	return out
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,79}$`)

func (d *decoder) scenario(n *yaml.Node) *Scenario {
	s := &Scenario{File: d.file, Seed: 1, Users: 300, Profile: "default"}
	m := d.mapping(n, "", "name", "description", "labels", "seed", "users", "profile", "accounts", "steps", "expect")
	if m == nil {
		return s
	}
	if f, ok := m["name"]; ok {
		s.Name = d.str(f)
		if s.Name != "" && !nameRE.MatchString(s.Name) {
			d.errorf(f.val, f.path, "must be lower-case letters, digits and dashes (it names the spec and the JUnit test case), got %q", s.Name)
		}
	} else {
		d.errorf(n, "name", "missing")
	}
	if f, ok := m["description"]; ok {
		s.Description = strings.TrimSpace(d.str(f))
	}
	if f, ok := m["labels"]; ok {
		for i, l := range d.strings(f) {
			switch l {
			case LabelSim, LabelStaging, LabelSlow:
				if !s.HasLabel(l) {
					s.Labels = append(s.Labels, l)
				}
			default:
				d.errorf(f.val.Content[i], fmt.Sprintf("labels[%d]", i), "unknown label %q (sim, staging, slow)", l)
			}
		}
	}
	if !s.HasLabel(LabelSim) {
		s.Labels = append([]string{LabelSim}, s.Labels...)
	}
	if f, ok := m["seed"]; ok {
		s.Seed = uint64(d.integer(f, 1, 1<<31-1))
	}
	if f, ok := m["users"]; ok {
		s.Users = d.integer(f, 1, maxUsers)
	}
	if f, ok := m["profile"]; ok {
		s.Profile = d.str(f)
	}
	if f, ok := m["accounts"]; ok {
		for i, an := range d.list(f) {
			s.Accounts = append(s.Accounts, d.account(an, fmt.Sprintf("accounts[%d]", i)))
		}
	} else {
		d.errorf(n, "accounts", "missing (at least one account)")
	}
	if f, ok := m["steps"]; ok {
		for i, sn := range d.list(f) {
			if st := d.step(sn, fmt.Sprintf("steps[%d]", i)); st != nil {
				s.Steps = append(s.Steps, st)
			}
		}
	} else {
		d.errorf(n, "steps", "missing (at least one step)")
	}
	if f, ok := m["expect"]; ok {
		for i, en := range d.list(f) {
			if e := d.expectation(en, fmt.Sprintf("expect[%d]", i), false); e != nil {
				s.Expect = append(s.Expect, e)
			}
		}
	} else {
		d.errorf(n, "expect", "missing (a scenario without expectations tests nothing)")
	}
	return s
}

func (d *decoder) account(n *yaml.Node, path string) *Account {
	a := &Account{Line: n.Line, Age: 730 * 24 * time.Hour, Lang: "en", Client: ClientNaive,
		FloodWait: FloodWaitSpec{MaxWait: time.Minute, MaxRetries: 5}}
	m := d.mapping(n, path, "name", "age", "lang", "premium", "contacts", "client", "floodwait", "guard", "probes")
	if m == nil {
		return a
	}
	if f, ok := m["name"]; ok {
		a.Name = d.str(f)
		if err := monitor.ValidateName(a.Name); a.Name != "" && err != nil {
			d.errorf(f.val, f.path, "%v", err)
		}
	} else {
		d.errorf(n, join(path, "name"), "missing")
	}
	if f, ok := m["age"]; ok {
		a.Age = d.duration(f, true)
	}
	if f, ok := m["lang"]; ok {
		a.Lang = d.str(f)
		if a.Lang != "en" && a.Lang != "ru" {
			d.errorf(f.val, f.path, "must be en or ru (the languages the simulated SpamBot speaks), got %q", a.Lang)
		}
	}
	if f, ok := m["premium"]; ok {
		a.Premium = d.boolean(f)
	}
	if f, ok := m["contacts"]; ok {
		a.Contacts = d.integer(f, 0, maxUsers)
	}
	if f, ok := m["client"]; ok {
		switch v := ClientKind(d.str(f)); v {
		case ClientNaive, ClientFloodWait:
			a.Client = v
		default:
			d.errorf(f.val, f.path, "must be naive or floodwait, got %q", v)
		}
	}
	if f, ok := m["floodwait"]; ok {
		fm := d.mapping(f.val, f.path, "max_wait", "max_retries")
		if g, ok := fm["max_wait"]; ok {
			a.FloodWait.MaxWait = d.duration(g, false)
		}
		if g, ok := fm["max_retries"]; ok {
			a.FloodWait.MaxRetries = d.integer(g, 1, 100)
		}
	}
	if f, ok := m["guard"]; ok {
		a.Guard = &GuardSpec{Mode: guard.Enforce, Margin: guard.DefaultMargin}
		gm := d.mapping(f.val, f.path, "mode", "margin", "max_wait")
		if g, ok := gm["mode"]; ok {
			v := d.str(g)
			mode, err := guard.ParseMode(v)
			if err != nil {
				d.errorf(g.val, g.path, "must be enforce or observe, got %q", v)
			}
			a.Guard.Mode = mode
		}
		if g, ok := gm["margin"]; ok {
			a.Guard.Margin = d.float(g, 0.01, 1)
		}
		if g, ok := gm["max_wait"]; ok {
			a.Guard.MaxWait = d.duration(g, true)
		}
	}
	if f, ok := m["probes"]; ok {
		a.Probes = &ProbesSpec{Schedules: map[string]ProbeSchedule{}}
		pm := d.mapping(f.val, f.path, monitor.ProbeSpamBot, monitor.ProbeFreeze, monitor.ProbeSessions, "watch")
		for _, kind := range []string{monitor.ProbeSpamBot, monitor.ProbeFreeze, monitor.ProbeSessions} {
			g, ok := pm[kind]
			if !ok {
				continue
			}
			var ps ProbeSchedule
			sm := d.mapping(g.val, g.path, "interval", "jitter", "floor")
			if h, ok := sm["interval"]; ok {
				ps.Interval = d.duration(h, false)
			} else {
				d.errorf(g.val, join(g.path, "interval"), "missing (the scheduler needs a regular run)")
			}
			if h, ok := sm["jitter"]; ok {
				ps.Jitter = d.duration(h, true)
			}
			if h, ok := sm["floor"]; ok {
				ps.Floor = d.duration(h, true)
			}
			if ps.Interval > 0 && ps.Interval < ps.Floor {
				d.errorf(g.val, g.path, "interval %s is below the floor %s", ps.Interval, ps.Floor)
			}
			a.Probes.Schedules[kind] = ps
		}
		if g, ok := pm["watch"]; ok {
			a.Probes.Watch = d.boolean(g)
		}
		if len(a.Probes.Schedules) == 0 && pm != nil {
			d.errorf(f.val, f.path, "name at least one probe (spambot, freeze, sessions)")
		}
	}
	return a
}

// stepFields lists each step kind's fields; "account" steps also accept
// the account name alone (login: alice).
var stepFields = map[StepKind][]string{
	StepLogin:          {"account"},
	StepSend:           {"account", "to", "count", "over", "rate", "stop_on"},
	StepResolve:        {"account", "count", "over", "rate", "stop_on"},
	StepJoin:           {"account", "count", "over", "rate", "stop_on"},
	StepInvite:         {"account", "count", "over", "rate", "stop_on"},
	StepImportContacts: {"account", "count", "batch", "over", "rate", "stop_on"},
	StepAskSpamBot:     {"account"},
	StepProbe:          {"account", "kind"},
	StepRequestProbe:   {"account", "kind", "count", "over", "rate"},
	StepAdvance:        nil, // a duration
	StepFreeze:         {"account", "for"},
	StepUnfreeze:       {"account"},
	StepBan:            {"account"},
	StepUnban:          {"account"},
	StepLimit:          {"account", "for"},
	StepRelease:        {"account"},
	StepFault:          {"account", "method", "error", "code", "drop", "delay", "times"},
	StepReconnect:      {"account"},
	StepHook:           {"account", "name"},
	StepCheck:          nil, // an expectation
}

// StepKinds returns every step kind, sorted, for documentation and tests.
func StepKinds() []StepKind {
	out := make([]StepKind, 0, len(stepFields))
	for k := range stepFields {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (d *decoder) step(n *yaml.Node, path string) *Step {
	if !d.plain(n, path) {
		return nil
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		d.errorf(n, path, "a step is one key naming what happens (login, send, advance, ...), got %s", kindName(n))
		return nil
	}
	k, v := n.Content[0], n.Content[1]
	kind := StepKind(k.Value)
	fields, known := stepFields[kind]
	if !known {
		var names []string
		for _, s := range StepKinds() {
			names = append(names, string(s))
		}
		d.errorf(k, path, "unknown step %q (%s)", k.Value, strings.Join(names, ", "))
		return nil
	}
	path = join(path, k.Value)
	st := &Step{Line: k.Line, Kind: kind}
	switch kind {
	case StepAdvance:
		st.Duration = d.duration(field{key: k, val: v, path: path}, false)
		return st
	case StepCheck:
		st.Check = d.expectation(v, path, true)
		if st.Check != nil {
			st.Account = st.Check.Account
		}
		return st
	}
	if v.Kind == yaml.ScalarNode && contains(fields, "account") && !contains(fields, "count") && kind != StepHook && kind != StepProbe {
		st.Account = v.Value
		return d.stepDefaults(st, v, path, nil)
	}
	m := d.mapping(v, path, fields...)
	if m == nil {
		return nil
	}
	if f, ok := m["account"]; ok {
		st.Account = d.str(f)
	} else {
		d.errorf(v, join(path, "account"), "missing")
	}
	if f, ok := m["count"]; ok {
		st.Count = d.integer(f, 1, maxCount)
	} else if contains(fields, "count") {
		d.errorf(v, join(path, "count"), "missing")
	}
	over, hasOver := m["over"]
	rate, hasRate := m["rate"]
	switch {
	case hasOver && hasRate:
		d.errorf(rate.key, rate.path, "give over or rate, not both")
	case hasOver:
		st.Over = d.duration(over, false)
	case hasRate:
		st.Interval = d.rate(rate)
	}
	if f, ok := m["to"]; ok {
		st.To = d.str(f)
		if st.To != ToContacts && st.To != ToNonContacts && st.To != ToGroup {
			d.errorf(f.val, f.path, "must be contacts, non_contacts or group, got %q", st.To)
		}
	} else if kind == StepSend {
		d.errorf(v, join(path, "to"), "missing (contacts, non_contacts or group)")
	}
	if f, ok := m["stop_on"]; ok {
		for i, o := range d.strings(f) {
			if err := outcomeName(o); err != nil {
				d.errorf(f.val.Content[i], fmt.Sprintf("%s[%d]", f.path, i), "%v", err)
				continue
			}
			st.StopOn = append(st.StopOn, o)
		}
	}
	if f, ok := m["batch"]; ok {
		st.Batch = d.integer(f, 1, 100)
	}
	if f, ok := m["kind"]; ok {
		st.ProbeKind = d.str(f)
	}
	if f, ok := m["name"]; ok {
		st.Hook = d.str(f)
	} else if kind == StepHook {
		d.errorf(v, join(path, "name"), "missing (the name the hook is registered under)")
	}
	if f, ok := m["for"]; ok {
		if kind == StepLimit && f.val.Kind == yaml.ScalarNode && f.val.Value == "permanent" {
			st.Permanent = true
		} else {
			st.Duration = d.duration(f, false)
		}
	} else if kind == StepLimit {
		d.errorf(v, join(path, "for"), "missing (a duration such as 3d, or permanent)")
	}
	if kind == StepFault {
		st.Fault = d.fault(v, path, m)
	}
	return d.stepDefaults(st, v, path, m)
}

func (d *decoder) stepDefaults(st *Step, n *yaml.Node, path string, m map[string]field) *Step {
	switch st.Kind {
	case StepProbe, StepRequestProbe:
		switch st.ProbeKind {
		case "":
			st.ProbeKind = monitor.ProbeSpamBot
		case monitor.ProbeSpamBot, monitor.ProbeFreeze, monitor.ProbeSessions, monitor.ProbeSelf:
		default:
			d.errorf(m["kind"].val, join(path, "kind"), "unknown probe %q (spambot, freeze, sessions, self)", st.ProbeKind)
		}
		if st.Kind == StepRequestProbe && st.ProbeKind == monitor.ProbeSelf {
			d.errorf(n, join(path, "kind"), "the self probe runs on connect; request spambot, freeze or sessions")
		}
	case StepImportContacts:
		if st.Batch == 0 {
			st.Batch = 10
		}
	case StepLimit:
		if m == nil {
			d.errorf(n, join(path, "for"), "missing: write limit: {account: %s, for: 3d} (or for: permanent)", st.Account)
		}
	}
	return st
}

// rate reads "10/h": calls per second, minute, hour or day.
func (d *decoder) rate(f field) time.Duration {
	v, ok := d.scalar(f)
	if !ok {
		return 0
	}
	num, unit, found := strings.Cut(v, "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	units := map[string]time.Duration{"s": time.Second, "m": time.Minute, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	u, okUnit := units[strings.TrimSpace(unit)]
	if !found || err != nil || n < 1 || !okUnit {
		d.errorf(f.val, f.path, "must be calls per unit such as 10/h (units s, m, h, d), got %q", v)
		return 0
	}
	return u / time.Duration(n)
}

func (d *decoder) fault(n *yaml.Node, path string, m map[string]field) *FaultSpec {
	fs := &FaultSpec{Times: 1}
	if f, ok := m["method"]; ok {
		fs.Method = d.str(f)
		if fs.Method != "" && !strings.Contains(fs.Method, ".") {
			d.errorf(f.val, f.path, "must be a TL method name such as messages.sendMessage, got %q", fs.Method)
		}
	}
	if f, ok := m["times"]; ok {
		fs.Times = d.integer(f, 1, maxCount)
	}
	kinds := 0
	if f, ok := m["error"]; ok {
		kinds++
		fs.Error = d.str(f)
		if !errorRE.MatchString(fs.Error) {
			d.errorf(f.val, f.path, "must be an RPC error message such as FLOOD_WAIT_30 or PEER_FLOOD, got %q", fs.Error)
		}
		fs.Code = defaultCode(fs.Error)
	}
	if f, ok := m["code"]; ok {
		fs.Code = d.integer(f, 300, 599)
		if fs.Error == "" {
			d.errorf(f.val, f.path, "code goes with error")
		}
	}
	if f, ok := m["drop"]; ok {
		if fs.Drop = d.boolean(f); fs.Drop {
			kinds++
		}
	}
	if f, ok := m["delay"]; ok {
		fs.Delay = d.duration(f, false)
		kinds++
	}
	if kinds != 1 {
		d.errorf(n, path, "give exactly one of error, drop: true, delay")
	}
	return fs
}

var errorRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,63}$`)

// defaultCode is the code Telegram uses for an error message.
func defaultCode(msg string) int {
	switch {
	case strings.HasPrefix(msg, "FLOOD_"), strings.HasPrefix(msg, "SLOWMODE_WAIT"), msg == "FROZEN_METHOD_INVALID":
		return 420
	case strings.HasPrefix(msg, "USER_DEACTIVATED"), strings.HasPrefix(msg, "AUTH_KEY_"), strings.HasPrefix(msg, "SESSION_"):
		return 401
	case strings.HasSuffix(msg, "_FORBIDDEN"):
		return 403
	case msg == "INTERNAL" || strings.HasSuffix(msg, "_RETRY") || msg == "RPC_CALL_FAIL" || msg == "TIMEOUT":
		return 500
	}
	return 400
}

var expectFields = []string{"account", "state", "reaches", "within", "never", "signals", "flood_waits",
	"longest_flood_wait", "spambot", "risk", "guard_blocks", "outcomes", "probes", "probe_gap"}

func (d *decoder) expectation(n *yaml.Node, path string, check bool) *Expectation {
	e := &Expectation{Line: n.Line, Path: path}
	m := d.mapping(n, path, expectFields...)
	if m == nil {
		return nil
	}
	if f, ok := m["account"]; ok {
		e.Account = d.str(f)
	} else {
		d.errorf(n, join(path, "account"), "missing")
	}
	if f, ok := m["state"]; ok {
		e.State = d.state(f)
	}
	if f, ok := m["reaches"]; ok {
		e.Reaches = d.state(f)
	}
	if f, ok := m["within"]; ok {
		e.Within = d.duration(f, false)
		if e.Reaches == nil {
			d.errorf(f.key, f.path, "within goes with reaches (the state to reach)")
		}
	}
	if f, ok := m["never"]; ok {
		for i, v := range d.list(f) {
			if st := d.state(field{val: v, path: fmt.Sprintf("%s[%d]", f.path, i)}); st != nil {
				e.Never = append(e.Never, *st)
			}
		}
	}
	if f, ok := m["signals"]; ok {
		raw := d.rangeMap(f, false, func(k string) error {
			if _, ok := signal.ParseKind(k); !ok {
				return fmt.Errorf("unknown signal kind %q (%s)", k, kindNames())
			}
			return nil
		})
		e.Signals = map[signal.Kind]Range{}
		for k, r := range raw {
			kind, _ := signal.ParseKind(k)
			e.Signals[kind] = r
		}
	}
	if f, ok := m["flood_waits"]; ok {
		e.FloodWaits = d.rangeMap(f, false, methodName)
	}
	if f, ok := m["longest_flood_wait"]; ok {
		e.LongestFloodWait = d.rng(f, true, false)
	}
	if f, ok := m["spambot"]; ok {
		v := d.str(f)
		var st spambot.State
		if err := st.UnmarshalText([]byte(v)); err != nil {
			d.errorf(f.val, f.path, "unknown SpamBot answer %q (free, limited_temporary, limited_permanent, frozen, unknown)", v)
		} else {
			e.SpamBot = &st
		}
	}
	if f, ok := m["risk"]; ok {
		e.Risk = d.rng(f, false, false)
	}
	if f, ok := m["guard_blocks"]; ok {
		if f.val.Kind == yaml.ScalarNode {
			if r := d.rng(f, false, true); r != nil {
				e.GuardBlocks = map[string]Range{"": *r}
			}
		} else {
			e.GuardBlocks = d.rangeMap(f, false, func(k string) error {
				for _, r := range guard.Reasons() {
					if r.String() == k {
						return nil
					}
				}
				return fmt.Errorf("unknown guard reason %q (budget, limited, frozen, flood_wait)", k)
			})
		}
	}
	if f, ok := m["outcomes"]; ok {
		e.Outcomes = d.rangeMap(f, false, outcomeName)
	}
	probeKind := func(k string) error {
		switch k {
		case monitor.ProbeSpamBot, monitor.ProbeFreeze, monitor.ProbeSessions, monitor.ProbeSelf:
			return nil
		}
		return fmt.Errorf("unknown probe %q (spambot, freeze, sessions, self)", k)
	}
	if f, ok := m["probes"]; ok {
		e.Probes = d.rangeMap(f, false, probeKind)
	}
	if f, ok := m["probe_gap"]; ok {
		e.ProbeGap = d.rangeMap(f, true, probeKind)
	}
	if check && e.Within > 0 {
		d.errorf(m["within"].key, m["within"].path, "within is for expect; a check happens at its place in the steps")
	}
	return e
}

func outcomeName(k string) error {
	if k == OutcomeOK || k == OutcomeBlocked || k == OutcomeError {
		return nil
	}
	if _, ok := signal.ParseKind(k); ok && k != "none" {
		return nil
	}
	return fmt.Errorf("unknown outcome %q (ok, blocked, error, or a signal kind: %s)", k, kindNames())
}

func methodName(k string) error {
	if !strings.Contains(k, ".") {
		return fmt.Errorf("%q is not a TL method name such as contacts.resolveUsername", k)
	}
	return nil
}

func kindNames() string {
	var names []string
	for _, k := range signal.Kinds() {
		if k != signal.None {
			names = append(names, k.String())
		}
	}
	return strings.Join(names, ", ")
}

// stagingSteps are the steps a staging scenario may use: nothing that
// needs control of the server, nothing that writes to strangers.
var stagingSteps = map[StepKind]bool{StepLogin: true, StepAskSpamBot: true, StepProbe: true,
	StepAdvance: true, StepCheck: true, StepHook: true}

// validate checks what spans fields: names, references, order.
func (d *decoder) validate(s *Scenario) {
	accounts := map[string]*Account{}
	for i, a := range s.Accounts {
		if _, dup := accounts[a.Name]; dup {
			d.errorf(nil, fmt.Sprintf("accounts[%d].name", i), "account %q is defined twice", a.Name)
			d.errs[len(d.errs)-1].Line = a.Line
		}
		accounts[a.Name] = a
		if a.Contacts > s.Users {
			d.errorf(nil, fmt.Sprintf("accounts[%d].contacts", i), "%d contacts but only %d users (raise users)", a.Contacts, s.Users)
			d.errs[len(d.errs)-1].Line = a.Line
		}
	}
	at := func(line int, path, format string, args ...any) {
		d.errorf(nil, path, format, args...)
		if n := len(d.errs); n > 0 {
			d.errs[n-1].Line = line
		}
	}
	loggedIn := map[string]bool{}
	var advanced time.Duration
	for i, st := range s.Steps {
		path := fmt.Sprintf("steps[%d].%s", i, st.Kind)
		if st.Kind != StepAdvance && st.Account != "" {
			a, ok := accounts[st.Account]
			if !ok {
				at(st.Line, path, "no account %q in accounts", st.Account)
				continue
			}
			needsLogin := map[StepKind]bool{StepSend: true, StepResolve: true, StepJoin: true, StepInvite: true,
				StepImportContacts: true, StepAskSpamBot: true, StepProbe: true, StepRequestProbe: true,
				StepReconnect: true, StepHook: true}
			if needsLogin[st.Kind] && !loggedIn[st.Account] {
				at(st.Line, path, "account %q is not logged in yet; add `- login: %s` before this step", st.Account, st.Account)
			}
			if st.Kind == StepLogin {
				if loggedIn[st.Account] {
					at(st.Line, path, "account %q is already logged in", st.Account)
				}
				loggedIn[st.Account] = true
			}
			if st.Kind == StepRequestProbe {
				if a.Probes == nil {
					at(st.Line, path, "account %q has no probes: configure accounts[].probes", st.Account)
				} else if _, ok := a.Probes.Schedules[st.ProbeKind]; !ok {
					at(st.Line, path, "account %q has no %s probe in accounts[].probes", st.Account, st.ProbeKind)
				}
			}
			if st.Kind == StepSend && st.To == ToContacts && a.Contacts == 0 {
				at(st.Line, path, "account %q has no contacts to write to (set accounts[].contacts)", st.Account)
			}
		}
		if st.Kind == StepAdvance {
			advanced += st.Duration
		}
		if s.HasLabel(LabelStaging) && !stagingSteps[st.Kind] {
			at(st.Line, path, "a scenario labelled staging may only log in, ask SpamBot, probe, advance, check and run hooks; %s needs the simulated server or writes to others", st.Kind)
		}
	}
	for _, e := range s.Expect {
		if _, ok := accounts[e.Account]; e.Account != "" && !ok {
			at(e.Line, e.Path+".account", "no account %q in accounts", e.Account)
		}
	}
	if s.HasLabel(LabelStaging) {
		if len(s.Accounts) != 1 {
			at(1, "accounts", "a scenario labelled staging has exactly one account (the test account from the environment), got %d", len(s.Accounts))
		}
		if advanced > maxStagingAdvance {
			at(1, "steps", "a scenario labelled staging advances %s in total; staging runs on real time, keep it within %s", advanced, maxStagingAdvance)
		}
		for _, a := range s.Accounts {
			if a.Probes != nil {
				at(a.Line, "accounts.probes", "a scenario labelled staging runs no probe scheduler (it would keep asking SpamBot)")
			}
		}
	}
	if len(s.Steps) == 0 && len(d.errs) == 0 {
		d.errorf(nil, "steps", "at least one step is required")
	}
	if len(s.Expect) == 0 && len(d.errs) == 0 {
		d.errorf(nil, "expect", "at least one expectation is required")
	}
	if s.Profile != "default" && s.Profile != "" {
		if _, err := os.Stat(s.ProfilePath()); err != nil {
			d.errorf(nil, "profile", "%v", errors.Unwrap(err))
		}
	}
}

// ProfilePath resolves the profile relative to the scenario file ("" for
// the default profile).
func (s *Scenario) ProfilePath() string {
	if s.Profile == "default" || s.Profile == "" {
		return ""
	}
	if filepath.IsAbs(s.Profile) {
		return s.Profile
	}
	return filepath.Join(filepath.Dir(s.File), s.Profile)
}
