package spambot

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tgsafety/tgsafety/monitor/internal/enum"
)

// State is what SpamBot says about the account. Its String form is a metric
// label value, so the names are part of the public interface.
type State uint8

// The states, from harmless to most severe. Unknown is the zero value so that
// a Result nobody filled in never reads as Free.
const (
	// Unknown: the reply was empty, carried no status (e.g. "Please use
	// buttons"), or was not recognised. Never to be read as Free.
	Unknown State = iota
	// Free: SpamBot says no limits are applied to the account.
	Free
	// LimitedTemporary: the account may only write to mutual contacts until
	// the release time in Result.Until.
	LimitedTemporary
	// LimitedPermanent: the account is limited and SpamBot gives no release
	// date (after confirmed reports, or by the anti-spam system's algorithm).
	LimitedPermanent
	// Frozen: the account was blocked for violating the Terms of Service;
	// most write methods fail until a successful appeal.
	Frozen
)

var stateNames = enum.Names[State]{
	Unknown:          "unknown",
	Free:             "free",
	LimitedTemporary: "limited_temporary",
	LimitedPermanent: "limited_permanent",
	Frozen:           "frozen",
}

// String returns the state's label value, or "invalid" for a value outside
// the defined set.
func (s State) String() string { return stateNames.String(s) }

// States returns every state in declaration order, so that exporters can
// pre-create one time series per state.
func States() []State { return stateNames.All() }

// MarshalText encodes the state as its name, so results serialise readably.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a state name written by MarshalText, so results can
// be read back from storage or an API request; other names are an error.
func (s *State) UnmarshalText(b []byte) error { return stateNames.Unmarshal("spambot state", b, s) }

// Result is the classification of one SpamBot reply. It keeps the reply as
// received so that an operator can read what the bot actually said, whatever
// the parser made of it.
type Result struct {
	// State is the classified state; Unknown when the reply says nothing
	// this package recognises.
	State State `json:"state"`
	// Until is the release time of a LimitedTemporary account as SpamBot
	// states it, in UTC; zero for every other state. It is precise to
	// DatePrecision only: the release comes before Until + DatePrecision.
	Until time.Time `json:"until,omitzero"`
	// Raw is the reply text exactly as received, for the operator.
	Raw string `json:"raw"`
	// Buttons are the reply keyboard's button labels as received. They are
	// kept for the operator and never decide the state.
	Buttons []string `json:"buttons,omitempty"`
	// Reason says why the result is Unknown (e.g. "unrecognised reply",
	// "limited reply without a parsable date"); empty otherwise.
	Reason string `json:"reason,omitempty"`
}

// DateLayout is how SpamBot writes a release date ("6 Jun 2024, 20:20 UTC"),
// in English and in UTC whatever the reply's language.
const DateLayout = "2 Jan 2006, 15:04 MST"

// DatePrecision is the resolution of SpamBot's release dates: they are
// truncated to the minute, so "20:20" may stand for 20:20:45. Whoever
// decides that a limit is over must wait for the end of the stated
// minute (Result.Until + DatePrecision).
const DatePrecision = time.Minute

// Phrases, in normalised form (see normalize). Whole phrases, not stems: the
// Russian free reply contains "ограничений", which shares its stem with every
// Russian limited reply.
var (
	frozenPhrases = []string{
		"your account was blocked for violations of the telegram terms of service",
		"заблокирован за нарушение условий использования telegram",
	}
	// datedLimitPhrases announce a release date; a reply containing one but
	// no valid date is Unknown, never LimitedPermanent and never Free.
	datedLimitPhrases = []string{
		"limited until",
		"automatically released on",
		"ограничения будут автоматически сняты",
		"аккаунт временно ограничен",
	}
	// openLimitPhrases say the account is limited without a date.
	openLimitPhrases = []string{
		"your account is now limited", // E: "Unfortunately, your account is now limited."
		"harsh response from our anti-spam systems",
		"while the account is limited",
		"теперь ваш аккаунт ограничен",
		"аккаунт ограничен",
	}
	freePhrases = []string{
		"no limits are currently applied to your account",
		"you're free as a bird",
		"ваш аккаунт свободен от каких-либо ограничений",
	}
	// statuslessReplies carry no status at all; each maps to its Reason. Only
	// "Please use buttons" is verbatim; the complaint phrases are partial and
	// only refine the Reason of an Unknown result.
	statuslessReplies = []struct{ phrase, reason string }{
		{"please use buttons to communicate with me", "SpamBot asked to use the buttons (no status in this reply)"},
		{"already submitted a complaint", "SpamBot says a complaint was already submitted recently (no status in this reply)"},
		{"complaint has been", "SpamBot acknowledged a complaint (no status in this reply)"},
	}
)

// Reasons for Unknown results.
const (
	reasonEmpty        = "empty reply"
	reasonUnrecognised = "unrecognised reply"
	reasonNoDate       = "limited reply without a parsable date"
)

// dateRE finds a release date in normalised (lower-case, single-spaced) text;
// parseDate restores the case time.Parse needs. \b keeps "116 jun" from
// matching as "16 jun".
var dateRE = regexp.MustCompile(`\b(\d{1,2}) ([a-z]{3}) (\d{4}), ?(\d{1,2}):(\d{2}) utc\b`)

// Parse classifies one SpamBot reply: its text and the labels of its reply
// keyboard (which are kept in the Result but do not affect the state).
//
// The most severe state wins: Frozen, then LimitedTemporary (with its release
// date), then LimitedPermanent, and Free last. Anything else (an empty
// reply, "Please use buttons", a complaint acknowledgement, a limited reply
// whose date cannot be read, a text in an unknown language or wording) is
// Unknown with a Reason, never Free: a wrong "free" keeps a burned account in
// rotation, which is the worst error this package can make. Parse never
// panics, whatever the input, invalid UTF-8 included.
func Parse(text string, buttons []string) Result {
	r := Result{Raw: text}
	if len(buttons) > 0 {
		r.Buttons = slices.Clone(buttons)
	}
	n := normalize(text)
	switch {
	case n == "":
		r.Reason = reasonEmpty
	case containsAny(n, frozenPhrases):
		r.State = Frozen
	case containsAny(n, datedLimitPhrases):
		until, reason := releaseDate(n)
		if reason != "" {
			r.Reason = reason
			break
		}
		r.State, r.Until = LimitedTemporary, until
	case containsAny(n, openLimitPhrases):
		r.State = LimitedPermanent
	case containsAny(n, freePhrases):
		r.State = Free
	default:
		r.Reason = reasonUnrecognised
		for _, s := range statuslessReplies {
			if strings.Contains(n, s.phrase) {
				r.Reason = s.reason
				break
			}
		}
	}
	return r
}

// normalize makes cosmetic differences irrelevant to matching: typographic
// apostrophes (U+2019, U+2018, U+02BC) become "'", Unicode hyphens U+2010 and
// U+2011 become "-", every run of Unicode white space (NBSP and line breaks
// included) becomes one space, the ends are trimmed and letters are
// lower-cased. Invalid UTF-8 bytes become U+FFFD.
func normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case r == '\u2019' || r == '\u2018' || r == '\u02BC':
			r = '\''
		case r == '\u2010' || r == '\u2011':
			r = '-'
		default:
			r = unicode.ToLower(r)
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

func containsAny(s string, phrases []string) bool {
	for _, p := range phrases {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// releaseDate reads the release date of a limited reply in normalised text:
// for each dated-limit phrase present, the first date after its first
// occurrence. Every such date must be valid and they must all agree (the
// English reply states it twice); otherwise it returns a Reason instead of
// guessing.
func releaseDate(n string) (time.Time, string) {
	dates := dateRE.FindAllStringSubmatchIndex(n, -1)
	var until time.Time
	found := false
	for _, p := range datedLimitPhrases {
		i := strings.Index(n, p)
		if i < 0 {
			continue
		}
		end := i + len(p)
		for _, m := range dates {
			if m[0] < end {
				continue
			}
			t, err := parseDate(n, m)
			if err != nil {
				return time.Time{}, fmt.Sprintf("limited reply with an invalid date %s", strconv.Quote(n[m[0]:m[1]]))
			}
			if found && !t.Equal(until) {
				return time.Time{}, "limited reply with conflicting release dates"
			}
			until, found = t, true
			break
		}
	}
	if !found {
		return time.Time{}, reasonNoDate
	}
	return until, ""
}

// parseDate parses one dateRE match m of normalised text n with DateLayout.
// time.Parse matches month names regardless of case but needs "UTC" in
// upper case, so the match is rebuilt in canonical form first.
func parseDate(n string, m []int) (time.Time, error) {
	g := func(k int) string { return n[m[2*k]:m[2*k+1]] }
	t, err := time.Parse(DateLayout, g(1)+" "+g(2)+" "+g(3)+", "+g(4)+":"+g(5)+" UTC")
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
