package scenarios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/monitor/yamlnode"
	"github.com/tgsafety/tgsafety/testserver"
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
	b, err := ReadFile(path, "scenario", MaxFileSize)
	if err != nil {
		return nil, err
	}
	return Parse(b, path)
}

// ReadFile reads a file of at most max bytes (what, "scenario" or
// "plan", prefixes the errors of the file system, which name the path):
// the one bounded read of the files scenario-run takes.
func ReadFile(path, what string, max int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s: file is larger than %d bytes", path, max)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
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
	d := newDecoder(file)
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
	if len(d.Problems) == 0 {
		d.validate(s)
	}
	if errs := d.errs(); errs != nil {
		return nil, errs
	}
	return s, nil
}

func (d *decoder) syntaxError(err error) *FieldError {
	p := yamlnode.Syntax(err)
	return &FieldError{File: d.file, Line: p.Line, Msg: p.Msg}
}

// decoder fills a Scenario from the YAML node tree with yamlnode, which
// collects the errors with their lines.
type decoder struct {
	file string
	yamlnode.Decoder
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, Decoder: yamlnode.Decoder{Max: maxErrors, ShowValues: true, Words: words}}
}

// words keeps the wording scenario authors know ("must be ...").
var words = yamlnode.Wording{
	NotMapping: func(got string) string { return "must be a mapping (key: value lines), got " + got },
	KeyNotName: func(string) string { return "keys must be plain words" },
	Twice:      func(first int) string { return fmt.Sprintf("given twice (first on line %d)", first) },
	Unknown: func(key, suggestion string, known []string) string {
		msg := "unknown field (known here: " + strings.Join(known, ", ") + ")"
		if key == "<<" {
			msg = "YAML merge keys (<<) are not supported; write the fields out"
		} else if suggestion != "" {
			msg += "; did you mean " + suggestion + "?"
		}
		return msg
	},
	NotScalar:   func(_, got string) string { return "must be a single value, got " + got },
	NotList:     func(got string) string { return "must be a list, got " + got },
	NotInteger:  func(v string) string { return "must be a whole number, got " + v },
	NotBool:     func(v string) string { return "must be true or false, got " + v },
	NotDuration: func(_ string, err error) string { return err.Error() },
}

// errs returns the problems found as ParseErrors naming the file.
func (d *decoder) errs() ParseErrors {
	if len(d.Problems) == 0 {
		return nil
	}
	out := make(ParseErrors, len(d.Problems))
	for i, p := range d.Problems {
		out[i] = &FieldError{File: d.file, Line: p.Line, Column: p.Column, Field: p.Path, Msg: p.Msg}
	}
	return out
}

// contains is slices.Contains, short for the parser and the step runner.
func contains(list []string, s string) bool { return slices.Contains(list, s) }

func (d *decoder) str(f yamlnode.Field) string {
	v, _ := d.String(f)
	return v
}

func (d *decoder) integer(f yamlnode.Field, lo, hi int) int {
	n, ok := d.Int(f)
	if !ok {
		return 0
	}
	if n < lo || n > hi {
		d.Errorf(f.Value, f.Path, "must be within %d-%d, got %d", lo, hi, n)
		return 0
	}
	return n
}

func (d *decoder) boolean(f yamlnode.Field) bool {
	v, _ := d.Bool(f)
	return v
}

func (d *decoder) float(f yamlnode.Field, lo, hi float64) float64 {
	v, ok := d.Scalar(f, "a number")
	if !ok {
		return 0
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || !(x >= lo && x <= hi) {
		d.Errorf(f.Value, f.Path, "must be a number within %v-%v, got %q", lo, hi, v)
		return 0
	}
	return x
}

// duration reads "90s", "15m", "6h", "3d" or "1d12h".
func (d *decoder) duration(f yamlnode.Field, allowZero bool) time.Duration {
	x, ok := d.Duration(f)
	if !ok {
		return 0
	}
	v := f.Value.Value
	switch {
	case x < 0 || (x == 0 && !allowZero):
		d.Errorf(f.Value, f.Path, "must be positive, got %q", v)
	case x.D() > maxDuration && !strings.HasSuffix(f.Path, ".age"):
		d.Errorf(f.Value, f.Path, "must be at most 365d, got %q", v)
	case x.D() > 20*maxDuration:
		d.Errorf(f.Value, f.Path, "must be at most 20 years (7300d), got %q", v)
	default:
		return x.D()
	}
	return 0
}

func (d *decoder) list(f yamlnode.Field) []yamlnode.Field {
	items, _ := d.List(f)
	return items
}

// strings reads a list of strings, index for index, or nil when any item
// was reported.
func (d *decoder) strings(f yamlnode.Field) []string {
	v, ok := d.Strings(f)
	if !ok {
		return nil
	}
	return v
}

func (d *decoder) state(f yamlnode.Field) *monitor.State {
	v, ok := d.Scalar(f, "a state")
	if !ok {
		return nil
	}
	st, ok := monitor.ParseState(v)
	if !ok {
		d.Errorf(f.Value, f.Path, "unknown state %q (%s)", v, stateNames())
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

func (d *decoder) rng(f yamlnode.Field, dur, integer bool) *Range {
	v, ok := d.Scalar(f, "a range")
	if !ok {
		return nil
	}
	r, err := parseRange(v, dur, integer)
	if err != nil {
		d.Errorf(f.Value, f.Path, "%v", err)
		return nil
	}
	return &r
}

// rangeMap reads {key: range}; check validates each key.
func (d *decoder) rangeMap(f yamlnode.Field, dur bool, check func(key string) error) map[string]Range {
	if n, ok := d.Resolve(f.Value, f.Path); !ok {
		return nil
	} else if n.Kind != yaml.MappingNode {
		d.Errorf(n, f.Path, "must be a mapping of name: range, got %s", d.Kind(n))
		return nil
	}
	entries, _ := d.Entries(f.Value, f.Path)
	out := map[string]Range{}
	for _, e := range entries {
		if err := check(e.Key.Value); err != nil {
			d.Errorf(e.Key, e.Path, "%v", err)
			continue
		}
		if r := d.rng(e, dur, !dur); r != nil {
			out[e.Key.Value] = *r
		}
	}
	return out
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,79}$`)

func (d *decoder) scenario(n *yaml.Node) *Scenario {
	s := &Scenario{File: d.file, Seed: 1, Users: 300, Profile: "default"}
	m := d.Mapping(n, "", "name", "description", "labels", "seed", "users", "profile", "accounts", "steps", "expect")
	if m == nil {
		return s
	}
	if f, ok := m["name"]; ok {
		s.Name = d.str(f)
		if s.Name != "" && !nameRE.MatchString(s.Name) {
			d.Errorf(f.Value, f.Path, "must be lower-case letters, digits and dashes (it names the spec and the JUnit test case), got %q", s.Name)
		}
	} else {
		d.Errorf(n, "name", "missing")
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
				d.Errorf(f.Value.Content[i], fmt.Sprintf("labels[%d]", i), "unknown label %q (sim, staging, slow)", l)
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
		for _, an := range d.list(f) {
			s.Accounts = append(s.Accounts, d.account(an.Value, an.Path))
		}
	} else {
		d.Errorf(n, "accounts", "missing (at least one account)")
	}
	if f, ok := m["steps"]; ok {
		for _, sn := range d.list(f) {
			if st := d.step(sn.Value, sn.Path); st != nil {
				s.Steps = append(s.Steps, st)
			}
		}
	} else {
		d.Errorf(n, "steps", "missing (at least one step)")
	}
	if f, ok := m["expect"]; ok {
		for _, en := range d.list(f) {
			if e := d.expectation(en.Value, en.Path, false); e != nil {
				s.Expect = append(s.Expect, e)
			}
		}
	} else {
		d.Errorf(n, "expect", "missing (a scenario without expectations tests nothing)")
	}
	return s
}

func (d *decoder) account(n *yaml.Node, path string) *Account {
	a := &Account{Line: n.Line, Age: 730 * 24 * time.Hour, Lang: "en", Client: ClientNaive,
		FloodWait: FloodWaitSpec{MaxWait: time.Minute, MaxRetries: 5}}
	m := d.Mapping(n, path, "name", "age", "lang", "premium", "contacts", "client", "floodwait", "guard", "probes")
	if m == nil {
		return a
	}
	if f, ok := m["name"]; ok {
		a.Name = d.str(f)
		if err := monitor.ValidateName(a.Name); a.Name != "" && err != nil {
			d.Errorf(f.Value, f.Path, "%v", err)
		}
	} else {
		d.Errorf(n, yamlnode.Join(path, "name"), "missing")
	}
	if f, ok := m["age"]; ok {
		a.Age = d.duration(f, true)
	}
	if f, ok := m["lang"]; ok {
		a.Lang = d.str(f)
		if a.Lang != "en" && a.Lang != "ru" {
			d.Errorf(f.Value, f.Path, "must be en or ru (the languages the simulated SpamBot speaks), got %q", a.Lang)
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
			d.Errorf(f.Value, f.Path, "must be naive or floodwait, got %q", v)
		}
	}
	if f, ok := m["floodwait"]; ok {
		fm := d.Mapping(f.Value, f.Path, "max_wait", "max_retries")
		if g, ok := fm["max_wait"]; ok {
			a.FloodWait.MaxWait = d.duration(g, false)
		}
		if g, ok := fm["max_retries"]; ok {
			a.FloodWait.MaxRetries = d.integer(g, 1, 100)
		}
	}
	if f, ok := m["guard"]; ok {
		a.Guard = &GuardSpec{Mode: guard.Enforce, Margin: guard.DefaultMargin}
		gm := d.Mapping(f.Value, f.Path, "mode", "margin", "max_wait")
		if g, ok := gm["mode"]; ok {
			v := d.str(g)
			mode, err := guard.ParseMode(v)
			if err != nil {
				d.Errorf(g.Value, g.Path, "must be enforce or observe, got %q", v)
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
		pm := d.Mapping(f.Value, f.Path, monitor.ProbeSpamBot, monitor.ProbeFreeze, monitor.ProbeSessions, "watch")
		for _, kind := range []string{monitor.ProbeSpamBot, monitor.ProbeFreeze, monitor.ProbeSessions} {
			g, ok := pm[kind]
			if !ok {
				continue
			}
			var ps ProbeSchedule
			sm := d.Mapping(g.Value, g.Path, "interval", "jitter", "floor")
			if h, ok := sm["interval"]; ok {
				ps.Interval = d.duration(h, false)
			} else {
				d.Errorf(g.Value, yamlnode.Join(g.Path, "interval"), "missing (the scheduler needs a regular run)")
			}
			if h, ok := sm["jitter"]; ok {
				ps.Jitter = d.duration(h, true)
			}
			if h, ok := sm["floor"]; ok {
				ps.Floor = d.duration(h, true)
			}
			if ps.Interval > 0 && ps.Interval < ps.Floor {
				d.Errorf(g.Value, g.Path, "interval %s is below the floor %s", ps.Interval, ps.Floor)
			}
			a.Probes.Schedules[kind] = ps
		}
		if g, ok := pm["watch"]; ok {
			a.Probes.Watch = d.boolean(g)
		}
		if len(a.Probes.Schedules) == 0 && pm != nil {
			d.Errorf(f.Value, f.Path, "name at least one probe (spambot, freeze, sessions)")
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
	if _, ok := d.Resolve(n, path); !ok {
		return nil
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		d.Errorf(n, path, "a step is one key naming what happens (login, send, advance, ...), got %s", d.Kind(n))
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
		d.Errorf(k, path, "unknown step %q (%s)", k.Value, strings.Join(names, ", "))
		return nil
	}
	path = yamlnode.Join(path, k.Value)
	st := &Step{Line: k.Line, Kind: kind}
	switch kind {
	case StepAdvance:
		st.Duration = d.duration(yamlnode.Field{Key: k, Value: v, Path: path}, false)
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
	m := d.Mapping(v, path, fields...)
	if m == nil {
		return nil
	}
	if f, ok := m["account"]; ok {
		st.Account = d.str(f)
	} else {
		d.Errorf(v, yamlnode.Join(path, "account"), "missing")
	}
	if f, ok := m["count"]; ok {
		st.Count = d.integer(f, 1, maxCount)
	} else if contains(fields, "count") {
		d.Errorf(v, yamlnode.Join(path, "count"), "missing")
	}
	over, hasOver := m["over"]
	rate, hasRate := m["rate"]
	switch {
	case hasOver && hasRate:
		d.Errorf(rate.Key, rate.Path, "give over or rate, not both")
	case hasOver:
		st.Over = d.duration(over, false)
	case hasRate:
		st.Interval = d.rate(rate)
	}
	if f, ok := m["to"]; ok {
		st.To = d.str(f)
		if st.To != ToContacts && st.To != ToNonContacts && st.To != ToGroup {
			d.Errorf(f.Value, f.Path, "must be contacts, non_contacts or group, got %q", st.To)
		}
	} else if kind == StepSend {
		d.Errorf(v, yamlnode.Join(path, "to"), "missing (contacts, non_contacts or group)")
	}
	if f, ok := m["stop_on"]; ok {
		for i, o := range d.strings(f) {
			if err := outcomeName(o); err != nil {
				d.Errorf(f.Value.Content[i], fmt.Sprintf("%s[%d]", f.Path, i), "%v", err)
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
		d.Errorf(v, yamlnode.Join(path, "name"), "missing (the name the hook is registered under)")
	}
	if f, ok := m["for"]; ok {
		if kind == StepLimit && f.Value.Kind == yaml.ScalarNode && f.Value.Value == "permanent" {
			st.Permanent = true
		} else {
			st.Duration = d.duration(f, false)
		}
	} else if kind == StepLimit {
		d.Errorf(v, yamlnode.Join(path, "for"), "missing (a duration such as 3d, or permanent)")
	}
	if kind == StepFault {
		st.Fault = d.fault(v, path, m)
	}
	return d.stepDefaults(st, v, path, m)
}

func (d *decoder) stepDefaults(st *Step, n *yaml.Node, path string, m map[string]yamlnode.Field) *Step {
	switch st.Kind {
	case StepProbe, StepRequestProbe:
		switch st.ProbeKind {
		case "":
			st.ProbeKind = monitor.ProbeSpamBot
		case monitor.ProbeSpamBot, monitor.ProbeFreeze, monitor.ProbeSessions, monitor.ProbeSelf:
		default:
			d.Errorf(m["kind"].Value, yamlnode.Join(path, "kind"), "unknown probe %q (spambot, freeze, sessions, self)", st.ProbeKind)
		}
		if st.Kind == StepRequestProbe && st.ProbeKind == monitor.ProbeSelf {
			d.Errorf(n, yamlnode.Join(path, "kind"), "the self probe runs on connect; request spambot, freeze or sessions")
		}
	case StepImportContacts:
		if st.Batch == 0 {
			st.Batch = 10
		}
	case StepLimit:
		if m == nil {
			d.Errorf(n, yamlnode.Join(path, "for"), "missing: write limit: {account: %s, for: 3d} (or for: permanent)", st.Account)
		}
	}
	return st
}

// rate reads "10/h": calls per second, minute, hour or day.
func (d *decoder) rate(f yamlnode.Field) time.Duration {
	v, ok := d.Scalar(f, "a rate such as 10/h")
	if !ok {
		return 0
	}
	num, unit, found := strings.Cut(v, "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	units := map[string]time.Duration{"s": time.Second, "m": time.Minute, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	u, okUnit := units[strings.TrimSpace(unit)]
	if !found || err != nil || n < 1 || !okUnit {
		d.Errorf(f.Value, f.Path, "must be calls per unit such as 10/h (units s, m, h, d), got %q", v)
		return 0
	}
	return u / time.Duration(n)
}

func (d *decoder) fault(n *yaml.Node, path string, m map[string]yamlnode.Field) *FaultSpec {
	fs := &FaultSpec{Times: 1}
	if f, ok := m["method"]; ok {
		fs.Method = d.str(f)
		if fs.Method != "" && !strings.Contains(fs.Method, ".") {
			d.Errorf(f.Value, f.Path, "must be a TL method name such as messages.sendMessage, got %q", fs.Method)
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
			d.Errorf(f.Value, f.Path, "must be an RPC error message such as FLOOD_WAIT_30 or PEER_FLOOD, got %q", fs.Error)
		}
		fs.Code = defaultCode(fs.Error)
	}
	if f, ok := m["code"]; ok {
		fs.Code = d.integer(f, 300, 599)
		if fs.Error == "" {
			d.Errorf(f.Value, f.Path, "code goes with error")
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
		d.Errorf(n, path, "give exactly one of error, drop: true, delay")
	}
	return fs
}

var errorRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,63}$`)

// ErrorCode returns the code Telegram answers an RPC error message with,
// and false when msg is not one (upper-case letters, digits and
// underscores): what a fault's `error` takes, in scenario files and audit
// plans alike.
func ErrorCode(msg string) (int, bool) {
	if !errorRE.MatchString(msg) {
		return 0, false
	}
	return defaultCode(msg), true
}

// defaultCode is the code Telegram uses for an error message.
func defaultCode(msg string) int { return testserver.ErrorCode(msg) }

var expectFields = []string{"account", "state", "reaches", "within", "never", "signals", "flood_waits",
	"longest_flood_wait", "spambot", "risk", "guard_blocks", "outcomes", "probes", "probe_gap"}

func (d *decoder) expectation(n *yaml.Node, path string, check bool) *Expectation {
	e := &Expectation{Line: n.Line, Path: path}
	m := d.Mapping(n, path, expectFields...)
	if m == nil {
		return nil
	}
	if f, ok := m["account"]; ok {
		e.Account = d.str(f)
	} else {
		d.Errorf(n, yamlnode.Join(path, "account"), "missing")
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
			d.Errorf(f.Key, f.Path, "within goes with reaches (the state to reach)")
		}
	}
	if f, ok := m["never"]; ok {
		for _, v := range d.list(f) {
			if st := d.state(v); st != nil {
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
			d.Errorf(f.Value, f.Path, "unknown SpamBot answer %q (free, limited_temporary, limited_permanent, frozen, unknown)", v)
		} else {
			e.SpamBot = &st
		}
	}
	if f, ok := m["risk"]; ok {
		e.Risk = d.rng(f, false, false)
	}
	if f, ok := m["guard_blocks"]; ok {
		if f.Value.Kind == yaml.ScalarNode {
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
		d.Errorf(m["within"].Key, m["within"].Path, "within is for expect; a check happens at its place in the steps")
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
			d.ErrorfAt(a.Line, fmt.Sprintf("accounts[%d].name", i), "account %q is defined twice", a.Name)
		}
		accounts[a.Name] = a
		if a.Contacts > s.Users {
			d.ErrorfAt(a.Line, fmt.Sprintf("accounts[%d].contacts", i), "%d contacts but only %d users (raise users)", a.Contacts, s.Users)
		}
	}
	at := d.ErrorfAt
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
			// Strangers are the population users who are not contacts.
			if st.Kind == StepSend && st.To == ToNonContacts && a.Contacts >= s.Users {
				at(st.Line, path, "account %q has %d contacts among %d users: no stranger to write to (raise users above contacts)", st.Account, a.Contacts, s.Users)
			}
			if st.Kind == StepInvite && a.Contacts >= s.Users {
				at(st.Line, path, "account %q has %d contacts among %d users: no stranger to invite (raise users above contacts)", st.Account, a.Contacts, s.Users)
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
	if len(s.Steps) == 0 && len(d.Problems) == 0 {
		d.Errorf(nil, "steps", "at least one step is required")
	}
	if len(s.Expect) == 0 && len(d.Problems) == 0 {
		d.Errorf(nil, "expect", "at least one expectation is required")
	}
	if s.Profile != "default" && s.Profile != "" {
		if _, err := os.Stat(s.ProfilePath()); err != nil {
			d.Errorf(nil, "profile", "%v", errors.Unwrap(err))
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
