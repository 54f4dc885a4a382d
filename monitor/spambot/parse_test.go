package spambot

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// Verbatim from the SpamBot reference notes (typographic apostrophe U+2019
// included). The notes wrap long texts; the wrapping is presentation, so the
// texts here join lines with one space (refBLimitedENWrapped keeps it).
const (
	refAFreeEN = "Good news, no limits are currently applied to your account. You’re free as a bird!"
	refAFreeRU = "Ваш аккаунт свободен от каких-либо ограничений."

	refBLimitedEN = "I’m afraid some Telegram users found your messages annoying and forwarded " +
		"them to our team of moderators for inspection. The moderators have confirmed the " +
		"report and your account is now limited until 6 Jun 2024, 20:20 UTC. " +
		"While the account is limited, you will not be able to do certain things on " +
		"Telegram, like writing to strangers who haven’t contacted you first or adding " +
		"them to groups and channels. Your account will be automatically released on " +
		"6 Jun 2024, 20:20 UTC. Please note that if you repeat what got you limited and " +
		"users report you again, the limitations will last longer next time. Subscribers " +
		"of Telegram Premium have reduced times for initial limitations."
	refBLimitedENWrapped = `I’m afraid some Telegram users found your messages annoying and forwarded
  them to our team of moderators for inspection. The moderators have confirmed the
  report and your account is now limited until 6 Jun 2024, 20:20 UTC.
  While the account is limited, you will not be able to do certain things on
  Telegram, like writing to strangers who haven’t contacted you first or adding
  them to groups and channels. Your account will be automatically released on
  6 Jun 2024, 20:20 UTC. Please note that if you repeat what got you limited and
  users report you again, the limitations will last longer next time. Subscribers
  of Telegram Premium have reduced times for initial limitations.`
	refBLimitedRUPart = "… Ваш аккаунт временно ограничен: Вы не можете писать тем, кто не " +
		"сохранил Ваш номер в список контактов … Ограничения будут автоматически сняты " +
		"6 Jun 2024, 20:20 UTC (по московскому времени — на три часа позже)."

	refCAlgorithmic = "Hello {first_name}! I’m very sorry that you had to contact me. Unfortunately, " +
		"some actions can trigger a harsh response from our anti-spam systems. If you think " +
		"your account was limited by mistake, you can submit a complaint to our moderators. " +
		"While the account is limited, you will not be able to send messages to people who " +
		"do not have your number in their phone contacts or add them to groups and " +
		"channels. Of course, when people contact you first, you can always reply to them."

	refEPermanentENKey = "Unfortunately, your account is now limited."
	refEPermanentEN    = "I’m afraid some Telegram users found your messages annoying and forwarded them " +
		"to our team of moderators for inspection. The moderators have confirmed the report. " +
		refEPermanentENKey
	refEPermanentRUKey = "Теперь Ваш аккаунт ограничен:"

	refFFrozenEN = "Your account was blocked for violations of the Telegram Terms of Service " +
		"based on user reports confirmed by our moderators."

	refButtonsHint = "Please use buttons to communicate with me."
)

// Copied from testserver/spambot.go (package monitor must not import
// testserver). {date} is replaced with a date in DateLayout.
const (
	simFreeEN = "Good news, no limits are currently applied to your account. You’re free as a bird!"
	simFreeRU = "Ваш аккаунт свободен от каких-либо ограничений."

	simLimitedEN = "I’m afraid some Telegram users found your messages annoying and forwarded them to our team of moderators for inspection. " +
		"The moderators have confirmed the report and your account is now limited until {date}.\n\n" +
		"While the account is limited, you will not be able to do certain things on Telegram, like writing to strangers who haven’t contacted you first " +
		"or adding them to groups and channels. Your account will be automatically released on {date}. " +
		"Please note that if you repeat what got you limited and users report you again, the limitations will last longer next time. " +
		"Subscribers of Telegram Premium have reduced times for initial limitations."
	simLimitedRU = "К сожалению, некоторые пользователи Telegram пожаловались на Ваши сообщения, и модераторы подтвердили жалобы. " +
		"Ваш аккаунт временно ограничен: Вы не можете писать тем, кто не сохранил Ваш номер в список контактов, и добавлять их в группы и каналы. " +
		"Ограничения будут автоматически сняты {date} (по московскому времени — на три часа позже)."

	simPermanentEN = "I’m afraid some Telegram users found your messages annoying and forwarded them to our team of moderators for inspection. " +
		"The moderators have confirmed the report. Unfortunately, your account is now limited. " +
		"While the account is limited, you will not be able to send messages to people who do not have your number in their phone contacts " +
		"or add them to groups and channels. Of course, when people contact you first, you can always reply to them."
	simPermanentRU = "К сожалению, некоторые пользователи Telegram пожаловались на Ваши сообщения, и модераторы подтвердили жалобы. " +
		"Теперь Ваш аккаунт ограничен: Вы не можете писать тем, кто не сохранил Ваш номер в список контактов, и добавлять их в группы и каналы."

	simFrozenEN = "Your account was blocked for violations of the Telegram Terms of Service based on user reports confirmed by our moderators."
	simFrozenRU = "Ваш аккаунт заблокирован за нарушение Условий использования Telegram на основании жалоб пользователей, подтверждённых модераторами."

	simButtonsHint = "Please use buttons to communicate with me."
)

var (
	simFreeButtonsEN    = []string{"Cool, thanks", "But I can’t message non-contacts!"}
	simFreeButtonsRU    = []string{"Хорошо, спасибо", "Но я не могу писать неконтактам"}
	simLimitedButtonsEN = []string{"OK", "Why was I limited?", "I was wrong, please release me", "This is a mistake"}
	simLimitedButtonsRU = []string{"Хорошо", "За что меня ограничили?", "Я ошибся, снимите ограничения", "Это ошибка"}
	simFrozenButtonsEN  = []string{"This is a mistake"}
	simFrozenButtonsRU  = []string{"Это ошибка"}
)

const refDate = "6 Jun 2024, 20:20 UTC"

var refUntil = time.Date(2024, time.June, 6, 20, 20, 0, 0, time.UTC)

func withDate(text, date string) string { return strings.ReplaceAll(text, "{date}", date) }

type parseCase struct {
	name    string
	text    string
	buttons []string
	state   State
	until   time.Time
	reason  string // substring the Reason must contain; Unknown needs a non-empty Reason anyway
}

func parseCases() []parseCase {
	limitedEN := withDate(simLimitedEN, refDate)
	return []parseCase{
		// Reference texts, verbatim.
		{name: "ref/A/free-en", text: refAFreeEN, buttons: simFreeButtonsEN, state: Free},
		{name: "ref/A/free-ru", text: refAFreeRU, buttons: simFreeButtonsRU, state: Free},
		{name: "ref/B/limited-en", text: refBLimitedEN, buttons: simLimitedButtonsEN, state: LimitedTemporary, until: refUntil},
		{name: "ref/B/limited-en-wrapped", text: refBLimitedENWrapped, state: LimitedTemporary, until: refUntil},
		{name: "ref/B/limited-ru-part", text: refBLimitedRUPart, buttons: simLimitedButtonsRU, state: LimitedTemporary, until: refUntil},
		{name: "ref/C/algorithmic", text: refCAlgorithmic, buttons: []string{"OK", "What is spam?", "I was wrong, please release me", "This is a mistake"}, state: LimitedPermanent},
		{name: "ref/C/algorithmic-named", text: strings.ReplaceAll(refCAlgorithmic, "{first_name}", "Alice"), state: LimitedPermanent},
		{name: "ref/E/permanent-en-key", text: refEPermanentENKey, state: LimitedPermanent},
		{name: "ref/E/permanent-en", text: refEPermanentEN, buttons: simLimitedButtonsEN, state: LimitedPermanent},
		{name: "ref/E/permanent-ru-key", text: refEPermanentRUKey, state: LimitedPermanent},
		{name: "ref/F/frozen-en", text: refFFrozenEN, buttons: simFrozenButtonsEN, state: Frozen},
		{name: "ref/use-buttons", text: refButtonsHint, state: Unknown, reason: "SpamBot asked to use the buttons (no status in this reply)"},

		// Simulator texts (testserver/spambot.go).
		{name: "sim/free-en", text: simFreeEN, buttons: simFreeButtonsEN, state: Free},
		{name: "sim/free-ru", text: simFreeRU, buttons: simFreeButtonsRU, state: Free},
		{name: "sim/limited-en", text: limitedEN, buttons: simLimitedButtonsEN, state: LimitedTemporary, until: refUntil},
		{name: "sim/limited-ru", text: withDate(simLimitedRU, refDate), buttons: simLimitedButtonsRU, state: LimitedTemporary, until: refUntil},
		{name: "sim/permanent-en", text: simPermanentEN, buttons: simLimitedButtonsEN, state: LimitedPermanent},
		{name: "sim/permanent-ru", text: simPermanentRU, buttons: simLimitedButtonsRU, state: LimitedPermanent},
		{name: "sim/frozen-en", text: simFrozenEN, buttons: simFrozenButtonsEN, state: Frozen},
		{name: "sim/frozen-ru", text: simFrozenRU, buttons: simFrozenButtonsRU, state: Frozen},
		{name: "sim/use-buttons", text: simButtonsHint, state: Unknown, reason: "buttons"},

		// Cosmetic variants.
		{name: "var/straight-apostrophes", text: strings.ReplaceAll(refAFreeEN, "’", "'"), state: Free},
		{name: "var/left-quote-apostrophe", text: "You‘re free as a bird!", state: Free},
		{name: "var/modifier-apostrophe", text: "Youʼre free as a bird!", state: Free},
		{name: "var/nbsp-and-spaces", text: "Good\u00a0news,   no\u00a0limits are\t currently  applied to\u202fyour account.", state: Free},
		{name: "var/upper-free-en", text: strings.ToUpper(refAFreeEN), state: Free},
		{name: "var/upper-free-ru", text: strings.ToUpper(refAFreeRU), state: Free},
		{name: "var/upper-frozen", text: strings.ToUpper(refFFrozenEN), state: Frozen},
		{name: "var/upper-permanent-ru", text: strings.ToUpper(simPermanentRU), state: LimitedPermanent},
		{name: "var/upper-limited-en", text: strings.ToUpper(limitedEN), state: LimitedTemporary, until: refUntil},
		{name: "var/line-breaks-in-phrases", text: "Your account is now\nlimited\r\nuntil\n6 Jun\n2024,\n20:20\u00a0UTC.", state: LimitedTemporary, until: refUntil},
		{name: "var/line-break-frozen", text: "Your account was blocked\nfor violations of the Telegram\nTerms of Service.", state: Frozen},
		{name: "var/ru-lower-vash-permanent", text: "Теперь ваш аккаунт ограничен: Вы не можете писать тем, кто не сохранил Ваш номер.", state: LimitedPermanent},
		{name: "var/ru-lower-vash-free", text: "ваш аккаунт свободен от каких-либо ограничений.", state: Free},
		{name: "var/ru-nonbreaking-hyphen-free", text: "Ваш аккаунт свободен от каких\u2011либо ограничений.", state: Free},
		{name: "var/ru-free-with-prefix", text: "Хорошие новости! Ваш аккаунт свободен от каких-либо ограничений. 🐦", state: Free},
		{name: "var/single-digit-day", text: withDate(simLimitedEN, "1 Jul 2025, 09:05 UTC"), state: LimitedTemporary, until: time.Date(2025, time.July, 1, 9, 5, 0, 0, time.UTC)},
		{name: "var/single-digit-day-ru", text: withDate(simLimitedRU, "9 Mar 2026, 00:00 UTC"), state: LimitedTemporary, until: time.Date(2026, time.March, 9, 0, 0, 0, 0, time.UTC)},
		{name: "var/single-digit-hour", text: "Your account is now limited until 16 Dec 2024, 7:45 UTC.", state: LimitedTemporary, until: time.Date(2024, time.December, 16, 7, 45, 0, 0, time.UTC)},
		{name: "var/no-space-after-comma", text: "Your account will be automatically released on 6 Jun 2024,20:20 UTC.", state: LimitedTemporary, until: refUntil},
		{name: "var/date-before-marker", text: "Reported on 1 Jan 2024, 10:00 UTC. Your account is now limited until 6 Jun 2024, 20:20 UTC.", state: LimitedTemporary, until: refUntil},
		{name: "var/prefix-suffix-frozen", text: "[forwarded] " + refFFrozenEN + " Press the button below to appeal.", state: Frozen},
		{name: "var/prefix-suffix-permanent", text: ">>> Unfortunately, your account is now limited. <<< end", state: LimitedPermanent},
		{name: "var/prefix-suffix-harsh", text: "Sorry: some actions can trigger a HARSH RESPONSE from our anti-spam systems!!!", state: LimitedPermanent},
		{name: "var/prefix-suffix-free", text: "Hi there. Good news, no limits are currently applied to your account.", state: Free},

		// Dated limits whose date cannot be read: Unknown, never guessed.
		{name: "bad-date/garbled", text: withDate(simLimitedEN, "6 Jnu 2O24, 20:20 UTC"), state: Unknown, reason: "date"},
		{name: "bad-date/unknown-month", text: withDate(simLimitedEN, "6 Foo 2024, 20:20 UTC"), state: Unknown, reason: "invalid date"},
		{name: "bad-date/out-of-range", text: "Your account is now limited until 31 Feb 2024, 10:00 UTC.", state: Unknown, reason: "invalid date"},
		{name: "bad-date/missing", text: "Your account is now limited until further notice.", state: Unknown, reason: reasonNoDate},
		{name: "bad-date/russian-month", text: withDate(simLimitedRU, "6 июн 2024, 20:20 UTC"), state: Unknown, reason: reasonNoDate},
		{name: "bad-date/ru-missing", text: "Ваш аккаунт временно ограничен. Ограничения будут автоматически сняты позже.", state: Unknown, reason: reasonNoDate},
		{name: "bad-date/no-timezone", text: "Your account is now limited until 6 Jun 2024, 20:20.", state: Unknown, reason: reasonNoDate},
		{name: "bad-date/conflicting", text: "Your account is now limited until 6 Jun 2024, 20:20 UTC. Your account will be automatically released on 7 Jun 2024, 20:20 UTC.", state: Unknown, reason: "conflicting"},

		// Ordering: the most severe state wins; shared stems do not confuse.
		{name: "order/free-ru-then-permanent-ru", text: simFreeRU + " " + simPermanentRU, state: LimitedPermanent},
		{name: "order/free-ru-then-dated-ru", text: simFreeRU + " " + withDate(simLimitedRU, refDate), state: LimitedTemporary, until: refUntil},
		{name: "order/free-en-then-frozen", text: simFreeEN + " " + simFrozenEN, state: Frozen},
		{name: "order/dated-then-frozen", text: limitedEN + " " + simFrozenEN, state: Frozen},
		{name: "order/ru-stem-only", text: "огранич", state: Unknown, reason: reasonUnrecognised},
		{name: "order/ru-limits-word", text: "Ограничений нет.", state: Unknown, reason: reasonUnrecognised},

		// Text decides, not the keyboard.
		{name: "buttons/free-text-limited-keyboard", text: simFreeEN, buttons: simLimitedButtonsEN, state: Free},
		{name: "buttons/unrecognised-free-keyboard", text: "Hello!", buttons: simFreeButtonsEN, state: Unknown, reason: reasonUnrecognised},
		{name: "buttons/empty-text-free-keyboard", text: "", buttons: simFreeButtonsEN, state: Unknown, reason: reasonEmpty},

		// Replies without a status, and texts that are not SpamBot statuses.
		{name: "other/complaint-recent", text: "You’ve already submitted a complaint recently. Please wait.", state: Unknown, reason: "complaint"},
		{name: "other/complaint-recent-straight", text: "You've already submitted a complaint recently.", state: Unknown, reason: "complaint"},
		{name: "other/complaint-submitted", text: "Thank you! Your complaint has been successfully submitted.", state: Unknown, reason: "complaint"},
		{name: "other/unrelated", text: "The weather in Dubai is sunny today.", state: Unknown, reason: reasonUnrecognised},
		{name: "other/feel-free", text: "Feel free to contact us if you have any questions.", state: Unknown, reason: reasonUnrecognised},
		{name: "other/free-word", text: "free", state: Unknown, reason: reasonUnrecognised},
		{name: "other/free-as-a-bird-alone", text: "Free as a bird!", state: Unknown, reason: reasonUnrecognised},
		{name: "other/free-premium", text: "Get Telegram Premium free for a month!", state: Unknown, reason: reasonUnrecognised},
		{name: "other/no-limits-elsewhere", text: "No limits on file size.", state: Unknown, reason: reasonUnrecognised},
		{name: "other/empty", text: "", state: Unknown, reason: reasonEmpty},
		{name: "other/whitespace", text: " \n\t\u00a0\u3000 ", state: Unknown, reason: reasonEmpty},
		{name: "other/invalid-utf8", text: "\xff\xfe\xfd", state: Unknown, reason: reasonUnrecognised},
		{name: "other/invalid-utf8-around-free", text: "\xff" + simFreeEN + "\xc3", state: Free},
	}
}

func TestParse(t *testing.T) {
	for _, c := range parseCases() {
		t.Run(c.name, func(t *testing.T) {
			got := Parse(c.text, c.buttons)
			if got.State != c.state {
				t.Errorf("State = %v, want %v (reason %q)", got.State, c.state, got.Reason)
			}
			if !got.Until.Equal(c.until) {
				t.Errorf("Until = %v, want %v", got.Until, c.until)
			}
			if !got.Until.IsZero() && got.Until.Location() != time.UTC {
				t.Errorf("Until location = %v, want UTC", got.Until.Location())
			}
			if got.Raw != c.text {
				t.Errorf("Raw = %q, want the input %q", got.Raw, c.text)
			}
			if !slices.Equal(got.Buttons, c.buttons) {
				t.Errorf("Buttons = %q, want %q", got.Buttons, c.buttons)
			}
			if got.State == Unknown {
				if got.Reason == "" {
					t.Error("Unknown result without a Reason")
				}
				if !strings.Contains(got.Reason, c.reason) {
					t.Errorf("Reason = %q, want it to contain %q", got.Reason, c.reason)
				}
			} else if got.Reason != "" {
				t.Errorf("Reason = %q for state %v, want empty", got.Reason, got.State)
			}
		})
	}
}

// The simulator formats any limitUntil with SpamBotDateLayout; every such
// date must come back exactly.
func TestParseSimulatorDates(t *testing.T) {
	base := time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []time.Duration{0, 9*time.Hour + 5*time.Minute, 40*24*time.Hour + 23*time.Hour + 59*time.Minute, 400 * 24 * time.Hour} {
		until := base.Add(d)
		date := until.Format(DateLayout)
		for _, tmpl := range []string{simLimitedEN, simLimitedRU} {
			got := Parse(withDate(tmpl, date), nil)
			if got.State != LimitedTemporary || !got.Until.Equal(until) {
				t.Errorf("date %q: got %v until %v (reason %q), want %v until %v",
					date, got.State, got.Until, got.Reason, LimitedTemporary, until)
			}
		}
	}
}

func TestParseCopiesButtons(t *testing.T) {
	b := []string{"Cool, thanks", "But I can’t message non-contacts!"}
	got := Parse(simFreeEN, b)
	b[0] = "changed"
	if got.Buttons[0] != "Cool, thanks" {
		t.Errorf("Result.Buttons aliases the caller's slice: %q", got.Buttons)
	}
	if got := Parse(simFreeEN, []string{}); got.Buttons != nil {
		t.Errorf("Buttons = %#v for an empty keyboard, want nil", got.Buttons)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "",
		"  \n ":                        "",
		"You’re  FREE\u00a0as\na bird": "you're free as a bird",
		"‘a’ ʼb":                       "'a' 'b",
		"каких\u2010либо\u2011Х":       "каких-либо-х",
		"\tТеперь  Ваш\r\nаккаунт ": "теперь ваш аккаунт",
		"a\xffb": "a\ufffdb",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStateText(t *testing.T) {
	want := []string{"unknown", "free", "limited_temporary", "limited_permanent", "frozen"}
	states := States()
	if len(states) != len(want) {
		t.Fatalf("States() has %d states, want %d", len(states), len(want))
	}
	for i, s := range states {
		if s != State(i) || s.String() != want[i] {
			t.Errorf("States()[%d] = %d %q, want %d %q", i, s, s, i, want[i])
		}
		b, err := s.MarshalText()
		if err != nil || string(b) != want[i] {
			t.Errorf("%v.MarshalText() = %q, %v", s, b, err)
		}
		var back State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, back, err, s)
		}
	}
	if got := State(len(want)).String(); got != "invalid" {
		t.Errorf("out-of-range String() = %q, want invalid", got)
	}
	if got := State(255).String(); got != "invalid" {
		t.Errorf("State(255).String() = %q, want invalid", got)
	}
	for _, bad := range []string{"", "invalid", "Free", "limited", "ok"} {
		s := Frozen
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		} else if !strings.Contains(err.Error(), "unknown spambot state") {
			t.Errorf("UnmarshalText(%q) error %q", bad, err)
		}
		if s != Frozen {
			t.Errorf("failed UnmarshalText(%q) changed the state to %v", bad, s)
		}
	}
}

func TestResultJSON(t *testing.T) {
	b, err := json.Marshal(Parse(simFreeEN, nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"state":"free","raw":` + string(mustJSON(t, simFreeEN)) + `}`; string(b) != want {
		t.Errorf("free result JSON = %s, want %s", b, want)
	}
	in := Parse(withDate(simLimitedEN, refDate), simLimitedButtonsEN)
	b, err = json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"state":"limited_temporary","until":"2024-06-06T20:20:00Z"`) {
		t.Errorf("limited result JSON = %s", b)
	}
	var out Result
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.State != in.State || !out.Until.Equal(in.Until) || out.Raw != in.Raw || !slices.Equal(out.Buttons, in.Buttons) {
		t.Errorf("JSON round trip: got %+v, want %+v", out, in)
	}
	b, _ = json.Marshal(Parse("", nil))
	if want := `{"state":"unknown","raw":"","reason":"empty reply"}`; string(b) != want {
		t.Errorf("empty result JSON = %s, want %s", b, want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Independent of the package's own phrase lists: Free needs one of these.
var (
	fuzzFreePhrases = []string{
		"no limits are currently applied to your account",
		"you're free as a bird",
		"ваш аккаунт свободен от каких-либо ограничений",
	}
	// A Free result must contain none of these.
	fuzzSeverePhrases = []string{
		"your account was blocked for violations of the telegram terms of service",
		"заблокирован за нарушение условий использования telegram",
		"limited until",
		"automatically released on",
		"ограничения будут автоматически сняты",
		"your account is now limited",
		"harsh response from our anti-spam systems",
		"теперь ваш аккаунт ограничен",
	}
)

func FuzzParse(f *testing.F) {
	for _, c := range parseCases() {
		f.Add(c.text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r := Parse(text, nil)
		n := normalize(text)
		if r.Raw != text {
			t.Fatalf("Raw = %q, want the input", r.Raw)
		}
		if r.State >= State(len(States())) {
			t.Fatalf("State %d out of range", r.State)
		}
		if r.State == Free {
			if !containsAny(n, fuzzFreePhrases) {
				t.Fatalf("Free for %q, which contains no free phrase", n)
			}
			if containsAny(n, fuzzSeverePhrases) {
				t.Fatalf("Free for %q, which contains a limited or frozen phrase", n)
			}
		}
		if (r.State == LimitedTemporary) != !r.Until.IsZero() {
			t.Fatalf("State %v with Until %v", r.State, r.Until)
		}
		if !r.Until.IsZero() && r.Until.Location() != time.UTC {
			t.Fatalf("Until %v not in UTC", r.Until)
		}
		if (r.State == Unknown) != (r.Reason != "") {
			t.Fatalf("State %v with Reason %q", r.State, r.Reason)
		}
	})
}
