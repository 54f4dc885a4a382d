package testserver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgtest"

	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// user is anyone in the simulated world: a population member, a bot, or a
// simulated account that a client signs in to (then acct is set).
type user struct {
	id, accessHash int64
	first, last    string
	username       string
	phone          string
	bot            bool
	premium        bool
	created        time.Time
	// contacts are the users this user has saved as contacts.
	contacts map[int64]bool
	acct     *account
}

// account is the state of a simulated account that clients sign in to.
type account struct {
	u    *user
	lang string
	pts  int
	// nextMsgID numbers messages in this account's private chats.
	nextMsgID int
	log       []*stored // every message in the account's chats, by pts
	blocked   map[int64]bool
	// wroteFirst: users who messaged this account first may be answered
	// even while it is limited.
	wroteFirst map[int64]bool
	sessions   map[[8]byte]*authSession
	joined     map[int64]bool

	policy policyState
	faults []*fault
	rng    *rand.Rand
}

type stored struct {
	pts  int
	peer int64 // the other user of the private chat, or -channel id
	msg  *tg.Message
}

// authSession is one authorised auth key of an account (a device).
type authSession struct {
	hash    int64
	created time.Time
	active  time.Time
	conn    connInfo
	live    *tgtest.Session // latest MTProto session, for pushes
}

// connInfo is what initConnection told about the client.
type connInfo struct {
	apiID         int
	deviceModel   string
	systemVersion string
	appVersion    string
	langCode      string
}

// channel is a public channel or supergroup.
type channel struct {
	id, accessHash int64
	title          string
	username       string
	broadcast      bool
	created        time.Time
	members        map[int64]bool
	pts            int
	nextMsgID      int
}

// world holds everything; Server.mu guards it.
type world struct {
	nextID     int64
	users      map[int64]*user
	byUsername map[string]*user
	byPhone    map[string]*user
	channels   map[int64]*channel
	chanByName map[string]*channel
	chanOrder  []*channel           // creation order, for ChannelUsernames
	keys       map[[8]byte]*account // auth key id -> signed-in account
	codes      map[string]string    // phone_code_hash -> phone
	loginTrack map[string]*limits.Tracker
	conns      map[[8]byte]connInfo
	revokedSet map[[8]byte]bool
	// spamBotSilent: SpamBot reads but does not answer (control API).
	spamBotSilent bool
	spambot       *user
	population    []*user
	accounts      int // simulated accounts made by newAccount, at most MaxAccounts
	rng           *rand.Rand
}

var firstNames = []string{"Anna", "Boris", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia",
	"Kofi", "Lena", "Marco", "Nadia", "Oleg", "Priya", "Quinn", "Rosa", "Sami", "Tara"}

func newWorld(seed uint64, population, groups int, now time.Time) *world {
	w := &world{
		nextID:     1_000_000,
		users:      map[int64]*user{},
		byUsername: map[string]*user{},
		byPhone:    map[string]*user{},
		channels:   map[int64]*channel{},
		chanByName: map[string]*channel{},
		keys:       map[[8]byte]*account{},
		codes:      map[string]string{},
		loginTrack: map[string]*limits.Tracker{},
		conns:      map[[8]byte]connInfo{},
		rng:        rand.New(rand.NewPCG(seed, 0x7467736166657479)),
	}
	w.spambot = &user{id: spambot.UserID, accessHash: 0x5350414d424f54, first: "Spam Info Bot", username: spambot.Username,
		bot: true, created: now.AddDate(-8, 0, 0), contacts: map[int64]bool{}}
	w.add(w.spambot)
	for i := 0; i < population; i++ {
		u := &user{
			id:         w.newID(),
			accessHash: int64(w.rng.Uint64() >> 1),
			first:      firstNames[i%len(firstNames)],
			last:       fmt.Sprintf("Sim%d", i),
			username:   fmt.Sprintf("sim_user_%04d", i),
			phone:      fmt.Sprintf("99900%06d", i),
			created:    now.AddDate(-1-i%5, 0, 0),
			contacts:   map[int64]bool{},
		}
		w.add(u)
		w.population = append(w.population, u)
	}
	for i, name := range []string{"tgsafety_news", "sim_channel_a", "sim_channel_b"} {
		w.addChannel(name, "Simulated channel "+name, true, now.AddDate(-2, 0, 0), i)
	}
	for i, name := range []string{"sim_group_a", "sim_group_b", "sim_group_c"} {
		w.addChannel(name, "Simulated group "+name, false, now.AddDate(-2, 0, 0), i)
	}
	// Extra groups come last so that the rest of the world (population,
	// mutual-contact choices) is the same with or without them.
	for i := 0; i < groups; i++ {
		name := fmt.Sprintf("sim_pub_%03d", i)
		w.addChannel(name, "Simulated group "+name, false, now.AddDate(-1, 0, 0), i)
	}
	return w
}

func (w *world) newID() int64 { w.nextID++; return w.nextID }

func (w *world) add(u *user) {
	w.users[u.id] = u
	if u.username != "" {
		w.byUsername[strings.ToLower(u.username)] = u
	}
	if u.phone != "" {
		w.byPhone[u.phone] = u
	}
}

func (w *world) addChannel(username, title string, broadcast bool, created time.Time, _ int) *channel {
	c := &channel{id: w.newID(), accessHash: int64(w.rng.Uint64() >> 1), title: title, username: username,
		broadcast: broadcast, created: created, members: map[int64]bool{}}
	w.channels[c.id] = c
	w.chanByName[strings.ToLower(username)] = c
	w.chanOrder = append(w.chanOrder, c)
	return c
}

// newAccount registers a simulated account.
func (w *world) newAccount(spec AccountSpec, now time.Time, seed uint64) (*account, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	if w.accounts >= MaxAccounts {
		return nil, fmt.Errorf("account: the server already holds %d accounts, the most it allows", MaxAccounts)
	}
	if _, ok := w.byPhone[spec.Phone]; ok {
		return nil, fmt.Errorf("account: phone already registered")
	}
	if spec.Username != "" {
		if _, ok := w.byUsername[strings.ToLower(spec.Username)]; ok {
			return nil, errors.New("account: username is taken")
		}
	}
	if spec.MutualContacts < 0 || spec.MutualContacts > len(w.population) {
		return nil, fmt.Errorf("account: mutual contacts must be within 0-%d (the population)", len(w.population))
	}
	u := &user{id: w.newID(), accessHash: int64(w.rng.Uint64() >> 1), first: spec.FirstName, last: spec.LastName,
		username: spec.Username, phone: spec.Phone, premium: spec.Premium, created: now.Add(-spec.Age), contacts: map[int64]bool{}}
	if u.first == "" {
		u.first = "Account"
	}
	a := &account{u: u, lang: spec.Lang, blocked: map[int64]bool{}, wroteFirst: map[int64]bool{},
		sessions: map[[8]byte]*authSession{}, joined: map[int64]bool{},
		rng: rand.New(rand.NewPCG(seed, uint64(u.id)))}
	a.policy.init()
	if a.lang == "" {
		a.lang = "en"
	}
	u.acct = a
	w.add(u)
	w.accounts++
	// Mutual contacts: a seeded choice, so scenarios get the same
	// contacts every run.
	for _, i := range w.rng.Perm(len(w.population))[:spec.MutualContacts] {
		p := w.population[i]
		u.contacts[p.id] = true
		p.contacts[u.id] = true
	}
	return a, nil
}

// Bounds on what one caller can make the server hold: the control API and
// auth.signUp may be reachable by other processes. The name sizes are
// Telegram's own; a phone number has at most 15 digits (E.164).
const (
	// MaxAccounts is how many simulated accounts one server holds (the
	// population not counted): far above any scenario's fleet.
	MaxAccounts  = 10_000
	maxNameLen   = 64 // first and last name, in characters
	maxUsername  = 32
	maxLangLen   = 16
	maxPhoneDigs = 15
)

// checkSpec bounds an account's names. Errors never repeat a value: it
// might be a phone number.
func checkSpec(spec AccountSpec) error {
	for _, f := range []struct {
		name, v string
		max     int
	}{{"first name", spec.FirstName, maxNameLen}, {"last name", spec.LastName, maxNameLen},
		{"username", spec.Username, maxUsername}, {"lang", spec.Lang, maxLangLen}} {
		if utf8.RuneCountInString(f.v) > f.max {
			return fmt.Errorf("account: %s is longer than %d characters", f.name, f.max)
		}
	}
	if len(spec.Phone) > maxPhoneDigs {
		return fmt.Errorf("account: phone has more than %d digits", maxPhoneDigs)
	}
	return nil
}

// mutual reports whether a and b have each other as contacts.
func mutual(a, b *user) bool { return a.contacts[b.id] && b.contacts[a.id] }

// tgUser renders u as the viewer sees it. A fresh struct every time:
// encoding rewrites Flags, so shared values must not be sent.
func (u *user) tgUser(viewer *user) *tg.User {
	t := &tg.User{
		ID: u.id, AccessHash: u.accessHash, FirstName: u.first, LastName: u.last,
		Username: u.username, Bot: u.bot, Premium: u.premium,
	}
	if u.bot {
		t.BotInfoVersion = 1
	}
	switch {
	case viewer != nil && viewer.id == u.id:
		t.Self = true
		t.Phone = u.phone
		if a := u.acct; a != nil && a.policy.frozen() {
			// Others see frozen accounts as deleted; the account itself does not.
			t.Restricted = false
		}
	case viewer != nil && viewer.contacts[u.id]:
		t.Contact = true
		t.MutualContact = u.contacts[viewer.id]
		t.Phone = u.phone
	}
	if a := u.acct; a != nil && a.policy.frozen() && (viewer == nil || viewer.id != u.id) {
		t.Deleted = true
	}
	return t
}

func (c *channel) tgChannel() *tg.Channel {
	t := &tg.Channel{
		ID: c.id, AccessHash: c.accessHash, Title: c.title, Username: c.username,
		Broadcast: c.broadcast, Megagroup: !c.broadcast, Date: int(c.created.Unix()),
		Photo: &tg.ChatPhotoEmpty{},
	}
	t.ParticipantsCount = len(c.members)
	return t
}

// append stores a message in the account's log with the next pts.
func (a *account) append(peer int64, m *tg.Message) *stored {
	a.pts++
	s := &stored{pts: a.pts, peer: peer, msg: m}
	a.log = append(a.log, s)
	return s
}

// since returns the messages after pts.
func (a *account) since(pts int) []*stored {
	i := sort.Search(len(a.log), func(i int) bool { return a.log[i].pts > pts })
	return a.log[i:]
}

// AccountSpec describes a simulated account to create.
type AccountSpec struct {
	// Phone is the account's number. Any digits; +9996 numbers are Telegram's test range.
	Phone     string
	FirstName string
	LastName  string
	Username  string
	// Age is how old the account is at creation (young accounts get stricter limits).
	Age time.Duration
	// Lang is the client language ("en", "ru"); a client's initConnection lang_code overrides it.
	Lang    string
	Premium bool
	// MutualContacts population users become mutual contacts (seeded choice).
	MutualContacts int
}
