package audit

import (
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/yamlnode"
	"github.com/tgsafety/tgsafety/scenarios"
)

// Bounds that keep a plan a test: a file asking for more is refused when
// it is read.
const (
	// MaxPlanSize is the largest plan file read.
	MaxPlanSize  = 1 << 20
	maxFaults    = 100
	maxAccounts  = 100
	maxContacts  = 100
	maxCall      = 100_000
	maxPlanTime  = 24 * time.Hour
	maxAge       = 20 * 365 * 24 * time.Hour
	maxPlanError = 20
)

// ColdDM is the pseudo-method a trigger names for a private message to
// someone who does not know the account (neither has its number in their
// contacts nor wrote first): the messages the PEER_FLOOD limit is about.
const ColdDM = "cold_dm"

// Action is what a fault does.
type Action string

// The actions. Error and Drop happen to a call; the others change the
// account on the server, and the client meets them at its next call.
const (
	// ActError answers the call with an RPC error (FLOOD_WAIT_10).
	ActError Action = "error"
	// ActDrop closes the connection instead of answering the call.
	ActDrop Action = "drop"
	// ActLimit limits the account (PEER_FLOOD to strangers) for For, or
	// for good when For is 0.
	ActLimit Action = "limit"
	// ActRelease lifts a limit.
	ActRelease Action = "release"
	// ActFreeze freezes the account; For is the time to its deletion (0:
	// the profile's freeze_for).
	ActFreeze Action = "freeze"
	// ActUnfreeze lifts a freeze.
	ActUnfreeze Action = "unfreeze"
	// ActBan bans the account (USER_DEACTIVATED_BAN).
	ActBan Action = "ban"
	// ActUnban reverses a ban.
	ActUnban Action = "unban"
	// ActRevoke revokes every session of the account (SESSION_REVOKED).
	ActRevoke Action = "revoke"
)

// actions lists the action keys a fault may carry, in the order shown
// in errors.
var actions = []Action{ActError, ActDrop, ActLimit, ActRelease, ActFreeze, ActUnfreeze, ActBan, ActUnban, ActRevoke}

// Plan is a fault plan: the accounts to create (optional) and the faults
// to provoke, and severities that differ from the rules' defaults.
type Plan struct {
	// File names the plan: its path, "default" or "none".
	File string
	// Accounts, when set, replaces the --accounts flags.
	Accounts []AccountSpec
	Faults   []*Fault
	// Severity overrides rules' default severities, by rule id.
	Severity map[string]Severity
}

// AccountSpec is one account the audit creates.
type AccountSpec struct {
	// Name is how the report and the environment call the account (never
	// a phone number).
	Name string
	// Age is how old the account is (younger than the profile's
	// young_account_age means the stricter young limits).
	Age time.Duration
	// Lang is its language (en, ru): what SpamBot answers in.
	Lang    string
	Premium bool
	// Contacts is how many population users are its mutual contacts,
	// given to the client by username.
	Contacts int
	Line     int
}

// Fault is one reaction of Telegram's to provoke.
type Fault struct {
	// Name identifies the fault in the report and in other faults' After.
	Name    string
	Account string
	// When the fault is armed: At after the start; or Delay after the
	// fault named After was delivered; or at the start.
	At     time.Duration
	HasAt  bool
	After  string
	Delay  time.Duration
	Action Action
	// On, when set, fires the armed fault on the On.Call-th matching call
	// of the account counted from arming (that very call meets it).
	// Without On, an error or drop fires on the account's next call and
	// any other action at once.
	On *Trigger
	// Error and Code: the RPC error of ActError.
	Error string
	Code  int
	// For: the length of ActLimit (0: permanent) or the time to deletion
	// of ActFreeze (0: the profile's freeze_for).
	For time.Duration
	// Line and Path locate the fault in its file.
	Line int
	Path string
}

// Trigger selects the call a fault fires on.
type Trigger struct {
	// Call is the number of the matching call, from 1.
	Call int
	// Methods are TL method names or ColdDM; empty matches any call.
	Methods []string
	Line    int
}

// String describes the trigger for the report: "the 2nd
// contacts.resolveUsername or messages.sendMessage".
func (t *Trigger) String() string {
	what := "call"
	if len(t.Methods) > 0 {
		what = strings.Join(t.Methods, " or ")
	}
	return fmt.Sprintf("the %s %s", ordinal(t.Call), what)
}

func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

// Describe says what the fault does, for progress lines and the report.
func (f *Fault) Describe() string {
	switch f.Action {
	case ActError:
		return f.Error
	case ActLimit:
		if f.For == 0 {
			return "limit (permanent)"
		}
		return "limit for " + fmtDur(f.For)
	case ActFreeze:
		if f.For == 0 {
			return "freeze"
		}
		return "freeze (deletion in " + fmtDur(f.For) + ")"
	case ActDrop:
		return "dropped connection"
	}
	return string(f.Action)
}

// When says when the fault fires, for the report.
func (f *Fault) When() string {
	var parts []string
	switch {
	case f.After != "" && f.Delay > 0:
		parts = append(parts, fmt.Sprintf("%s after %s was delivered", fmtDur(f.Delay), f.After))
	case f.After != "":
		parts = append(parts, fmt.Sprintf("once %s was delivered", f.After))
	case f.HasAt:
		parts = append(parts, "at +"+fmtDur(f.At))
	}
	switch {
	case f.On != nil:
		parts = append(parts, "on "+f.On.String())
	case f.Action == ActError || f.Action == ActDrop:
		parts = append(parts, "on the next call")
	}
	if len(parts) == 0 {
		return "at the start"
	}
	return strings.Join(parts, ", ")
}

//go:embed default-plan.yaml
var defaultPlanYAML []byte

// DefaultPlanYAML returns the text of the default plan.
func DefaultPlanYAML() []byte { return slices.Clone(defaultPlanYAML) }

// DefaultPlan returns the plan that provokes each reaction once: a
// FLOOD_WAIT on a resolve or a send, PEER_FLOOD on a cold DM, a dropped
// connection, a limit, a freeze, a ban and a revoked session, over three
// accounts (a ban and a revocation end an account).
func DefaultPlan() *Plan {
	p, err := ParsePlan(defaultPlanYAML, "default")
	if err != nil {
		panic("audit: the embedded default plan is invalid: " + err.Error())
	}
	return p
}

// NoPlan is the plan that provokes nothing: the audit only observes.
func NoPlan() *Plan { return &Plan{File: "none"} }

// LoadPlan reads a plan file; "default" and "none" name the built-in
// plans.
func LoadPlan(path string) (*Plan, error) {
	switch path {
	case "default":
		return DefaultPlan(), nil
	case "none":
		return NoPlan(), nil
	}
	b, err := scenarios.ReadFile(path, "plan", MaxPlanSize)
	if err != nil {
		return nil, err
	}
	return ParsePlan(b, path)
}

// ParsePlan decodes and validates a plan; file names it in errors, which
// are scenarios.ParseErrors (file:line:column: field: problem, every
// problem at once). Unknown fields are errors. It never panics.
func ParsePlan(data []byte, file string) (p *Plan, err error) {
	d := &planDecoder{file: file, Decoder: yamlnode.Decoder{Max: maxPlanError, ShowValues: true}}
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, scenarios.ParseErrors{{File: file, Msg: fmt.Sprintf("internal parser error: %v", r)}}
		}
	}()
	if len(data) > MaxPlanSize {
		return nil, scenarios.ParseErrors{{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxPlanSize)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		pr := yamlnode.Syntax(err)
		return nil, scenarios.ParseErrors{{File: file, Line: pr.Line, Msg: pr.Msg}}
	}
	p = &Plan{File: file}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return p, nil // an empty plan provokes nothing
	}
	d.plan(doc.Content[0], p)
	if errs := d.errs(); errs != nil {
		return nil, errs
	}
	return p, nil
}

type planDecoder struct {
	file string
	yamlnode.Decoder
}

func (d *planDecoder) errs() scenarios.ParseErrors {
	if len(d.Problems) == 0 {
		return nil
	}
	out := make(scenarios.ParseErrors, len(d.Problems))
	for i, pr := range d.Problems {
		out[i] = &scenarios.FieldError{File: d.file, Line: pr.Line, Column: pr.Column, Field: pr.Path, Msg: pr.Msg}
	}
	return out
}

var faultNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

func (d *planDecoder) plan(n *yaml.Node, p *Plan) {
	m := d.Mapping(n, "", "accounts", "faults", "rules")
	if m == nil {
		return
	}
	if f, ok := m["accounts"]; ok {
		items, _ := d.List(f)
		if len(items) > maxAccounts {
			d.Errorf(f.Value, f.Path, "at most %d accounts, got %d", maxAccounts, len(items))
			items = items[:maxAccounts]
		}
		seen := map[string]int{}
		for _, it := range items {
			a := d.account(it)
			if a.Name == "" {
				continue
			}
			if l, dup := seen[a.Name]; dup {
				d.Errorf(it.Value, yamlnode.Join(it.Path, "name"), "account %q is already defined on line %d", a.Name, l)
				continue
			}
			seen[a.Name] = a.Line
			p.Accounts = append(p.Accounts, a)
		}
		if len(items) == 0 {
			d.Errorf(f.Value, f.Path, "list at least one account, or leave accounts out (then --accounts decides)")
		}
	}
	if f, ok := m["faults"]; ok {
		items, _ := d.List(f)
		if len(items) > maxFaults {
			d.Errorf(f.Value, f.Path, "at most %d faults, got %d", maxFaults, len(items))
			items = items[:maxFaults]
		}
		names := map[string]int{}
		for _, it := range items {
			flt := d.fault(it, names)
			if flt != nil {
				p.Faults = append(p.Faults, flt)
			}
		}
		if p.Accounts != nil {
			for _, flt := range p.Faults {
				if flt.Account != "" && !slices.ContainsFunc(p.Accounts, func(a AccountSpec) bool { return a.Name == flt.Account }) {
					d.ErrorfAt(flt.Line, yamlnode.Join(flt.Path, "account"), "no account %q in this plan's accounts (%s)", flt.Account, accountNames(p.Accounts))
				}
			}
		}
	}
	if f, ok := m["rules"]; ok {
		entries, _ := d.Entries(f.Value, f.Path)
		p.Severity = map[string]Severity{}
		for _, e := range entries {
			if ruleByID(e.Key.Value) == nil {
				msg := fmt.Sprintf("no rule %q (rules: %s)", e.Key.Value, strings.Join(RuleIDs(), ", "))
				if s := yamlnode.Suggest(e.Key.Value, RuleIDs()); s != "" {
					msg += "; did you mean " + s + "?"
				}
				d.Errorf(e.Key, e.Path, "%s", msg)
				continue
			}
			v, ok := d.String(e)
			if !ok {
				continue
			}
			sev, err := ParseSeverity(v)
			if err != nil {
				d.Errorf(e.Value, e.Path, "%v", err)
				continue
			}
			p.Severity[e.Key.Value] = sev
		}
	}
}

func accountNames(as []AccountSpec) string {
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}

func (d *planDecoder) account(f yamlnode.Field) AccountSpec {
	a := AccountSpec{Line: f.Value.Line, Age: DefaultAge, Lang: "en"}
	m := d.Mapping(f.Value, f.Path, "name", "age", "lang", "premium", "contacts")
	if m == nil {
		return AccountSpec{}
	}
	if g, ok := m["name"]; ok {
		a.Name, _ = d.String(g)
		if err := checkAccountName(a.Name); err != nil {
			d.Errorf(g.Value, g.Path, "%v", err)
			a.Name = ""
		}
	} else {
		d.Errorf(f.Value, yamlnode.Join(f.Path, "name"), "missing")
	}
	if g, ok := m["age"]; ok {
		a.Age = d.duration(g, true, maxAge)
	}
	if g, ok := m["lang"]; ok {
		a.Lang, _ = d.String(g)
		if a.Lang != "en" && a.Lang != "ru" {
			d.Errorf(g.Value, g.Path, "must be en or ru (the languages the simulated SpamBot speaks), got %q", a.Lang)
		}
	}
	if g, ok := m["premium"]; ok {
		a.Premium, _ = d.Bool(g)
	}
	if g, ok := m["contacts"]; ok {
		a.Contacts = d.integer(g, 0, maxContacts)
	}
	return a
}

// checkAccountName accepts the names a report may show: the monitor's
// account-name rule (never phone-like) and nothing that needs quoting in
// an environment variable's value.
func checkAccountName(name string) error {
	if err := monitor.ValidateName(name); err != nil {
		return err
	}
	if strings.ContainsAny(name, ",") {
		return fmt.Errorf("account name %q: a comma is not allowed (TGSAFETY_ACCOUNTS is comma-separated)", name)
	}
	return nil
}

func (d *planDecoder) fault(f yamlnode.Field, names map[string]int) *Fault {
	flt := &Fault{Line: f.Value.Line, Path: f.Path}
	known := []string{"name", "account", "at", "after", "delay", "on", "code"}
	for _, a := range actions {
		known = append(known, string(a))
	}
	before := len(d.Problems)
	m := d.Mapping(f.Value, f.Path, known...)
	if m == nil {
		return nil
	}
	// An unknown key is most likely a mistyped action: one problem is
	// enough to say so.
	typo := len(d.Problems) > before
	if g, ok := m["name"]; ok {
		flt.Name, _ = d.String(g)
		switch {
		case flt.Name == "":
			d.Errorf(g.Value, g.Path, "empty (faults are named in the report and in after:)")
		case !faultNameRE.MatchString(flt.Name):
			d.Errorf(g.Value, g.Path, "must be lower-case letters, digits and dashes (up to 40), got %q", flt.Name)
		case names[flt.Name] > 0:
			d.Errorf(g.Value, g.Path, "fault %q is already defined on line %d", flt.Name, names[flt.Name])
		default:
			names[flt.Name] = g.Key.Line
		}
	} else {
		d.Errorf(f.Value, yamlnode.Join(f.Path, "name"), "missing (faults are named in the report and in after:)")
	}
	if g, ok := m["account"]; ok {
		if flt.Account, _ = d.String(g); flt.Account == "" {
			d.Errorf(g.Value, g.Path, "empty: name the account the fault hits")
		}
	} else {
		d.Errorf(f.Value, yamlnode.Join(f.Path, "account"), "missing")
	}
	if g, ok := m["at"]; ok {
		flt.At, flt.HasAt = d.duration(g, true, maxPlanTime), true
	}
	if g, ok := m["after"]; ok {
		flt.After, _ = d.String(g)
		switch {
		case flt.HasAt:
			d.Errorf(g.Key, g.Path, "give at or after, not both")
		case flt.After == flt.Name:
			d.Errorf(g.Value, g.Path, "a fault cannot wait for itself")
		case names[flt.After] == 0:
			d.Errorf(g.Value, g.Path, "no fault %q before this one (after names an earlier fault)", flt.After)
		}
	}
	if g, ok := m["delay"]; ok {
		flt.Delay = d.duration(g, true, maxPlanTime)
		if flt.After == "" {
			d.Errorf(g.Key, g.Path, "delay goes with after (the time from that fault's delivery)")
		}
	}
	if g, ok := m["on"]; ok {
		flt.On = d.trigger(g)
	}
	var set []Action
	for _, a := range actions {
		g, ok := m[string(a)]
		if !ok {
			continue
		}
		set = append(set, a)
		flt.Action = a
		switch a {
		case ActError:
			flt.Error, _ = d.String(g)
			code, ok := scenarios.ErrorCode(flt.Error)
			if !ok {
				d.Errorf(g.Value, g.Path, "must be an RPC error message such as FLOOD_WAIT_30 or PEER_FLOOD, got %q", flt.Error)
			}
			flt.Code = code
		case ActLimit:
			if v, ok := d.Scalar(g, "a duration or permanent"); ok && v != "permanent" {
				flt.For = d.duration(g, false, 365*24*time.Hour)
			}
		case ActFreeze:
			flt.For = d.duration(g, false, 365*24*time.Hour)
		default:
			if v, ok := d.Bool(g); ok && !v {
				d.Errorf(g.Value, g.Path, "must be true (leave the key out for no %s)", a)
			}
		}
	}
	if g, ok := m["code"]; ok {
		flt.Code = d.integer(g, 300, 599)
		if flt.Action != ActError || len(set) != 1 {
			d.Errorf(g.Key, g.Path, "code goes with error")
		}
	}
	if len(set) == 0 && typo {
		return nil
	}
	if len(set) != 1 {
		names := make([]string, len(actions))
		for i, a := range actions {
			names[i] = string(a)
		}
		d.Errorf(f.Value, f.Path, "give exactly one action (%s), got %d", strings.Join(names, ", "), len(set))
		return nil
	}
	return flt
}

func (d *planDecoder) trigger(f yamlnode.Field) *Trigger {
	t := &Trigger{Call: 1, Line: f.Value.Line}
	m := d.Mapping(f.Value, f.Path, "call", "methods")
	if m == nil {
		return nil
	}
	if g, ok := m["call"]; ok {
		t.Call = d.integer(g, 1, maxCall)
	}
	if g, ok := m["methods"]; ok {
		items, _ := d.List(g)
		for _, it := range items {
			v, ok := d.String(it)
			if !ok {
				continue
			}
			if v != ColdDM && !tlMethodRE.MatchString(v) {
				d.Errorf(it.Value, it.Path, "must be a TL method name such as messages.sendMessage, or %s, got %q", ColdDM, v)
				continue
			}
			t.Methods = append(t.Methods, v)
		}
	}
	return t
}

var tlMethodRE = regexp.MustCompile(`^[a-z][A-Za-z0-9]*\.[a-z][A-Za-z0-9]*$`)

func (d *planDecoder) integer(f yamlnode.Field, lo, hi int) int {
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

func (d *planDecoder) duration(f yamlnode.Field, allowZero bool, most time.Duration) time.Duration {
	x, ok := d.Duration(f)
	if !ok {
		return 0
	}
	switch v := x.D(); {
	case v < 0 || v == 0 && !allowZero:
		d.Errorf(f.Value, f.Path, "must be positive, got %q", f.Value.Value)
	case v > most:
		d.Errorf(f.Value, f.Path, "must be at most %s, got %q", fmtDur(most), f.Value.Value)
	default:
		return v
	}
	return 0
}

// check validates the plan against the run: the accounts it names exist,
// and errors and drops are triggered by methods the server serves (an
// injected answer needs the server to handle the call). Problems are
// ParseErrors with the plan's lines.
func (p *Plan) check(accounts []AccountSpec, served []string) error {
	var errs scenarios.ParseErrors
	for _, f := range p.Faults {
		if !slices.ContainsFunc(accounts, func(a AccountSpec) bool { return a.Name == f.Account }) {
			errs = append(errs, &scenarios.FieldError{File: p.File, Line: f.Line, Field: yamlnode.Join(f.Path, "account"),
				Msg: fmt.Sprintf("no account %q in this audit (accounts: %s)", f.Account, accountNames(accounts))})
		}
		if f.On == nil || (f.Action != ActError && f.Action != ActDrop) {
			continue
		}
		for i, m := range f.On.Methods {
			if m != ColdDM && !slices.Contains(served, m) {
				errs = append(errs, &scenarios.FieldError{File: p.File, Line: f.On.Line, Field: yamlnode.Index(yamlnode.Join(f.Path, "on.methods"), i),
					Msg: fmt.Sprintf("the test server does not serve %s, so it cannot answer it with %s; serve one of: %s", m, f.Describe(), strings.Join(served, ", "))})
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
