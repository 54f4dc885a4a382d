package limits

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Action is a kind of account behaviour that Telegram budgets.
type Action string

// The actions the default profile budgets. A profile may define others;
// callers that map RPCs to actions use these names.
const (
	DMContact       Action = "dm_contact"
	DMNonContact    Action = "dm_non_contact"
	ResolveUsername Action = "resolve_username"
	JoinChannel     Action = "join_channel"
	Invite          Action = "invite"
	ImportContacts  Action = "import_contacts"
	CreateChat      Action = "create_chat"
	SearchContacts  Action = "search_contacts"
	ForwardMessages Action = "forward_messages"
	SendCode        Action = "send_code"
)

// Penalty is what Telegram does when an action exceeds a limit.
type Penalty string

// The penalties.
const (
	// PenaltyFloodWait answers FLOOD_WAIT_X; repeated violations escalate.
	PenaltyFloodWait Penalty = "flood_wait"
	// PenaltyPeerFlood answers PEER_FLOOD and limits the account.
	PenaltyPeerFlood Penalty = "peer_flood"
)

// Duration is a time.Duration written as in Go ("90s", "24h") or in days
// ("3d"), since limits are often quoted per day.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration as FormatDuration does ("3d", "1d12h",
// "1h30m"); ParseDuration reads it back.
func (d Duration) String() string { return FormatDuration(time.Duration(d), 0) }

// durationUnits are FormatDuration's units above the second.
var durationUnits = [...]struct {
	d    time.Duration
	name byte
}{{24 * time.Hour, 'd'}, {time.Hour, 'h'}, {time.Minute, 'm'}}

// AllUnits is FormatDuration's units for a duration rounded to the second
// and written in every unit from days to seconds ("2d3h4m5s").
const AllUnits = len(durationUnits) + 1

// FormatDuration writes d compactly in days, hours, minutes and seconds,
// largest first, leaving out units that are zero: "3d", "1d12h", "1h30m",
// "1m30s", "45s", and what is below a second as Go writes it ("1.5s",
// "250ms"). With units > 0, a duration of a second or more is rounded to
// the second and written in at most that many units counted from the
// largest present, dropping the rest: "2d3h" for 2d3h4m with units 2, for
// displays. It is tgsafety's one duration format: limits profiles,
// configuration errors, the guard's refusals, scenario reports and the
// status page all use it, and ParseDuration reads back what it writes with
// units 0.
func FormatDuration(d time.Duration, units int) string {
	if d < 0 {
		if d == math.MinInt64 {
			d++ // -MinInt64 overflows; a nanosecond is invisible at that size
		}
		return "-" + FormatDuration(-d, units)
	}
	if units > 0 && d >= time.Second {
		d = d.Round(time.Second)
	}
	if d < time.Second {
		if d == 0 {
			return "0s"
		}
		return d.String()
	}
	b := make([]byte, 0, 24)
	shown := 0
	for _, u := range durationUnits {
		if shown == 0 && d < u.d {
			continue
		}
		if units > 0 && shown == units {
			return string(b)
		}
		if n := d / u.d; n > 0 {
			b = append(strconv.AppendInt(b, int64(n), 10), u.name)
			d -= n * u.d
		}
		shown++
	}
	if d == 0 || units > 0 && shown == units {
		return string(b)
	}
	if d%time.Second == 0 {
		return string(append(strconv.AppendInt(b, int64(d/time.Second), 10), 's'))
	}
	return string(append(b, d.String()...)) // "30.5s", "250ms"
}

// ParseDuration reads "3d", "1d12h", "-1d12h" or any time.ParseDuration
// form.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "-"); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' && strings.IndexByte(rest, 'd') > 0 {
		// The sign applies to the whole duration, days and the rest.
		d, err := ParseDuration(rest)
		return -d, err
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseInt(s[:i], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days, s = n, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		var err error
		if rest, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid duration %q (use 90s, 15m, 24h or 3d)", s)
		}
	}
	return Duration(time.Duration(days)*24*time.Hour + rest), nil
}

// UnmarshalYAML reads a duration string and reports its line on error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration in its String form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Limit is one budget: at most Max actions within any Window.
type Limit struct {
	Window Duration `yaml:"window"`
	Max    int      `yaml:"max"`
	// Source says where the number comes from: a URL, a document, an
	// observation, or "estimate" with its reasoning.
	Source string `yaml:"source"`
}

// ActionProfile is the budget of one action.
type ActionProfile struct {
	Description string `yaml:"description"`
	// Methods lists the TL methods that count as this action; the mapping
	// from a call to an action is done by the caller (it may depend on the
	// peer, e.g. contact or not).
	Methods []string `yaml:"methods"`
	Penalty Penalty  `yaml:"penalty"`
	Limits  []Limit  `yaml:"limits"`
	// Young replaces Limits for accounts younger than YoungAccountAge.
	Young []Limit `yaml:"young,omitempty"`
}

// FloodPolicy is how flood waits escalate when an action keeps exceeding
// its limits.
type FloodPolicy struct {
	// EscalationWindow is how far back violations count as repeated.
	EscalationWindow Duration `yaml:"escalation_window"`
	// Factors multiply the base wait of the 1st, 2nd, ... violation within
	// the window; a violation beyond the list is locked out.
	Factors []float64 `yaml:"factors"`
	// Lockout is the wait once the factors are used up: the daily-budget
	// waits of 10-21 h that follow a burst.
	Lockout Duration `yaml:"lockout"`
	Source  string   `yaml:"source"`
}

// RestrictionPolicy is how PEER_FLOOD limits grow with repeated violations.
type RestrictionPolicy struct {
	// Durations of the successive temporary limits; after the last one the
	// next limit is permanent.
	Durations []Duration `yaml:"durations"`
	// ViolationsToEscalate is how many PEER_FLOOD-penalised attempts while
	// limited move the account to its next, longer limit.
	ViolationsToEscalate int `yaml:"violations_to_escalate"`
	// AfterPermanent is what follows ViolationsToEscalate more violations
	// of a permanently limited account: "ban" or "freeze".
	AfterPermanent string `yaml:"after_permanent"`
	// FreezeFor is how long after a freeze the account would be deleted
	// (freeze_until_date).
	FreezeFor Duration `yaml:"freeze_for"`
	Source    string   `yaml:"source"`
}

// ReportPolicy simulates recipients reporting unsolicited DMs as spam.
type ReportPolicy struct {
	// Probability that one DM to a non-contact is reported.
	Probability float64 `yaml:"probability"`
	// Threshold reports within Window limit the account at once.
	Threshold int      `yaml:"threshold"`
	Window    Duration `yaml:"window"`
	Source    string   `yaml:"source"`
}

// Profile is a complete limits profile.
type Profile struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// YoungAccountAge: accounts younger than this use the Young limits.
	YoungAccountAge Duration                 `yaml:"young_account_age"`
	Actions         map[Action]ActionProfile `yaml:"actions"`
	Flood           FloodPolicy              `yaml:"flood"`
	Restrictions    RestrictionPolicy        `yaml:"restrictions"`
	Reports         ReportPolicy             `yaml:"reports"`
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default profile's text.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Default returns a fresh copy of the embedded default profile.
func Default() *Profile {
	p, err := Parse(defaultYAML, "default.yaml")
	if err != nil {
		// The embedded profile is validated by tests; this is a build defect.
		panic("limits: embedded default profile is invalid: " + err.Error())
	}
	return p
}

// Load reads and validates a profile file.
func Load(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("limits profile: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes and validates a profile; name (usually the file path)
// prefixes every error. Unknown keys are errors.
func Parse(data []byte, name string) (*Profile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Profile
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty limits profile", name)
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %s", name, strings.Join(te.Errors, "; "))
		}
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &p, nil
}

// Validate reports the first problem, naming the field by its YAML path.
func (p *Profile) Validate() error {
	if strings.TrimSpace(p.Name) == "" {
		return errors.New("name: missing")
	}
	if p.YoungAccountAge < 0 {
		return fmt.Errorf("young_account_age: must not be negative, got %s", p.YoungAccountAge)
	}
	if len(p.Actions) == 0 {
		return errors.New("actions: at least one action is required")
	}
	for _, a := range p.ActionNames() {
		ap := p.Actions[a]
		at := "actions." + string(a)
		if a == "" {
			return errors.New("actions: empty action name")
		}
		switch ap.Penalty {
		case PenaltyFloodWait, PenaltyPeerFlood:
		case "":
			return fmt.Errorf("%s.penalty: missing (flood_wait or peer_flood)", at)
		default:
			return fmt.Errorf("%s.penalty: unknown penalty %q (flood_wait or peer_flood)", at, ap.Penalty)
		}
		if len(ap.Limits) == 0 {
			return fmt.Errorf("%s.limits: at least one limit is required", at)
		}
		if err := validateLimits(at+".limits", ap.Limits); err != nil {
			return err
		}
		if err := validateLimits(at+".young", ap.Young); err != nil {
			return err
		}
	}
	f := p.Flood
	if f.EscalationWindow <= 0 {
		return fmt.Errorf("flood.escalation_window: must be positive, got %s", f.EscalationWindow)
	}
	for i, x := range f.Factors {
		if !(x >= 1) {
			return fmt.Errorf("flood.factors[%d]: must be at least 1, got %v", i, x)
		}
	}
	if f.Lockout <= 0 {
		return fmt.Errorf("flood.lockout: must be positive, got %s", f.Lockout)
	}
	r := p.Restrictions
	if len(r.Durations) == 0 {
		return errors.New("restrictions.durations: at least one duration is required")
	}
	for i, d := range r.Durations {
		if d <= 0 {
			return fmt.Errorf("restrictions.durations[%d]: must be positive, got %s", i, d)
		}
	}
	if r.ViolationsToEscalate < 1 {
		return fmt.Errorf("restrictions.violations_to_escalate: must be at least 1, got %d", r.ViolationsToEscalate)
	}
	switch r.AfterPermanent {
	case "ban", "freeze":
	default:
		return fmt.Errorf("restrictions.after_permanent: must be ban or freeze, got %q", r.AfterPermanent)
	}
	if r.FreezeFor <= 0 {
		return fmt.Errorf("restrictions.freeze_for: must be positive, got %s", r.FreezeFor)
	}
	rep := p.Reports
	if !(rep.Probability >= 0 && rep.Probability <= 1) {
		return fmt.Errorf("reports.probability: must be within 0-1, got %v", rep.Probability)
	}
	if rep.Threshold < 1 {
		return fmt.Errorf("reports.threshold: must be at least 1, got %d", rep.Threshold)
	}
	if rep.Window <= 0 {
		return fmt.Errorf("reports.window: must be positive, got %s", rep.Window)
	}
	return nil
}

func validateLimits(at string, ls []Limit) error {
	for i, l := range ls {
		switch {
		case l.Window <= 0:
			return fmt.Errorf("%s[%d].window: must be positive, got %s", at, i, l.Window)
		case l.Max < 1:
			return fmt.Errorf("%s[%d].max: must be at least 1, got %d", at, i, l.Max)
		case strings.TrimSpace(l.Source) == "":
			return fmt.Errorf("%s[%d].source: missing; every number needs its source", at, i)
		}
	}
	return nil
}

// ActionNames returns the profile's actions sorted by name.
func (p *Profile) ActionNames() []Action {
	out := make([]Action, 0, len(p.Actions))
	for a := range p.Actions {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// LimitsFor returns the limits that apply to an action for an account of
// the given age; nil when the profile does not budget the action.
func (p *Profile) LimitsFor(a Action, age time.Duration) []Limit {
	ap, ok := p.Actions[a]
	if !ok {
		return nil
	}
	if len(ap.Young) > 0 && age < p.YoungAccountAge.D() {
		return ap.Young
	}
	return ap.Limits
}

// Scaled returns a copy whose limits are scaled by factor (rounded down,
// at least 1): the guard keeps a safety margin this way (0.8 = 80%).
func (p *Profile) Scaled(factor float64) *Profile {
	q := *p
	q.Actions = make(map[Action]ActionProfile, len(p.Actions))
	scale := func(ls []Limit) []Limit {
		if ls == nil {
			return nil
		}
		out := make([]Limit, len(ls))
		for i, l := range ls {
			l.Max = max(1, int(float64(l.Max)*factor))
			out[i] = l
		}
		return out
	}
	for a, ap := range p.Actions {
		ap.Limits, ap.Young = scale(ap.Limits), scale(ap.Young)
		ap.Methods = append([]string(nil), ap.Methods...)
		q.Actions[a] = ap
	}
	return &q
}
