package testserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/session"
	"github.com/gotd/td/tgerr"
)

// The control API: what a test or scenario does to the simulated world
// from outside, instead of sleeping or scripting Telegram. Every method is
// safe for concurrent use. Errors never repeat a phone number.

// maxPhoneInput bounds a phone number as written ("+999 662 5001"),
// spaces and punctuation included.
const maxPhoneInput = 32

// ErrNoAccount is returned for a phone number with no simulated account.
var ErrNoAccount = errors.New("testserver: no account with that phone number")

// CreateAccount registers a simulated account that a client can sign in to
// (with the login code) or use through Session. It returns the user id.
func (s *Server) CreateAccount(spec AccountSpec) (int64, error) {
	if len(spec.Phone) > maxPhoneInput {
		return 0, fmt.Errorf("testserver: account: phone is longer than %d characters", maxPhoneInput)
	}
	spec.Phone = normalizePhone(spec.Phone)
	if spec.Phone == "" {
		return 0, errors.New("testserver: account: phone is empty")
	}
	if spec.Age < 0 {
		return 0, errors.New("testserver: account: age must not be negative")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.w.newAccount(spec, s.clock.Now(), s.opts.Seed)
	if err != nil {
		return 0, fmt.Errorf("testserver: %w", err)
	}
	return a.u.id, nil
}

// Session provisions an authorised session for an account: a fresh auth
// key, registered with the MTProto server and bound to the account as if
// the client had exchanged keys and signed in. This is how a fleet of
// simulated accounts connects without paying a key exchange each.
func (s *Server) Session(phone string) (*session.Data, error) {
	var k crypto.Key
	if _, err := rand.Read(k[:]); err != nil {
		return nil, err
	}
	key := k.WithID()
	s.mu.Lock()
	a, err := s.lookup(phone)
	if err == nil {
		s.w.bindKey(key.ID, a, s.clock.Now())
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := registerKey(s.srv, key); err != nil {
		return nil, err
	}
	o := s.dcOptions()[0]
	addr := net.JoinHostPort(o.IPAddress, strconv.Itoa(o.Port))
	return &session.Data{DC: s.opts.DC, Addr: addr, AuthKey: key.Value[:], AuthKeyID: key.ID[:]}, nil
}

// SessionStorage is Session packed in a gotd session storage, ready for
// telegram.Options.SessionStorage.
func (s *Server) SessionStorage(phone string) (*session.StorageMemory, error) {
	data, err := s.Session(phone)
	if err != nil {
		return nil, err
	}
	st := new(session.StorageMemory)
	if err := (&session.Loader{Storage: st}).Save(context.Background(), data); err != nil {
		return nil, err
	}
	return st, nil
}

func (s *Server) lookup(phone string) (*account, error) {
	u := s.w.byPhone[normalizePhone(phone)]
	if u == nil || u.acct == nil {
		return nil, ErrNoAccount
	}
	return u.acct, nil
}

func (s *Server) with(phone string, fn func(a *account, now time.Time) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.lookup(phone)
	if err != nil {
		return err
	}
	return fn(a, s.clock.Now())
}

// Limit restricts the account (mutual contacts only) for d, or permanently
// when d <= 0, as Telegram does after spam reports.
func (s *Server) Limit(phone string, d time.Duration) error {
	return s.with(phone, func(a *account, now time.Time) error {
		p := &a.policy
		p.limitSince, p.violations = now, 0
		if d <= 0 {
			p.permanent = true
			return nil
		}
		p.permanent, p.limitUntil = false, now.Add(d)
		p.steps = max(p.steps, 1)
		return nil
	})
}

// Release lifts any limit.
func (s *Server) Release(phone string) error {
	return s.with(phone, func(a *account, now time.Time) error {
		p := &a.policy
		p.permanent, p.limitUntil, p.violations = false, time.Time{}, 0
		return nil
	})
}

// Ban deactivates the account: its next call gets USER_DEACTIVATED_BAN.
func (s *Server) Ban(phone string) error {
	return s.with(phone, func(a *account, _ time.Time) error {
		a.policy.banned = true
		return nil
	})
}

// Unban reverses a ban (as after a successful appeal).
func (s *Server) Unban(phone string) error {
	return s.with(phone, func(a *account, _ time.Time) error {
		a.policy.banned = false
		return nil
	})
}

// Freeze freezes the account until the given deletion date (zero: the
// profile's freeze_for from now).
func (s *Server) Freeze(phone string, until time.Time) error {
	return s.with(phone, func(a *account, now time.Time) error {
		if until.IsZero() {
			until = now.Add(s.profile.Restrictions.FreezeFor.D())
		}
		s.freeze(a, now, until)
		return nil
	})
}

// Unfreeze lifts a freeze.
func (s *Server) Unfreeze(phone string) error {
	return s.with(phone, func(a *account, _ time.Time) error {
		a.policy.frozenSince, a.policy.frozenUntil = time.Time{}, time.Time{}
		return nil
	})
}

// RevokeSessions terminates every session of the account: their next call
// gets SESSION_REVOKED. It returns how many there were.
func (s *Server) RevokeSessions(phone string) (int, error) {
	n := 0
	err := s.with(phone, func(a *account, _ time.Time) error {
		for k := range a.sessions {
			s.w.revokeKey(k)
			n++
		}
		a.sessions = map[[8]byte]*authSession{}
		return nil
	})
	return n, err
}

// Fault is a failure injected into an account's next calls.
type Fault struct {
	// Method is the TL name the fault applies to. "" means any method,
	// including the calls gotd makes by itself on (re)connect (the self
	// check): a method-less Delay holds a reconnecting client until virtual
	// time moves.
	Method string
	// Times is how many calls it affects (at least 1).
	Times int
	// Error, when set, is answered instead of running the method.
	Error *tgerr.Error
	// Drop closes the connection instead of answering.
	Drop bool
	// Delay holds the answer back for this much virtual time: the call
	// completes when the clock is advanced past it.
	Delay time.Duration
}

// fault is an injected Fault in use.
type fault struct {
	method string
	n      int
	err    *tgerr.Error
	drop   bool
	delay  time.Duration
}

// Inject adds a fault for the account's next calls.
func (s *Server) Inject(phone string, f Fault) error {
	if f.Times < 1 {
		return errors.New("testserver: fault: times must be at least 1")
	}
	kinds := 0
	for _, set := range []bool{f.Error != nil, f.Drop, f.Delay > 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return errors.New("testserver: fault: set exactly one of Error, Drop, Delay")
	}
	if f.Method != "" && !strings.Contains(f.Method, ".") {
		return errors.New("testserver: fault: method is not a TL method name like messages.sendMessage")
	}
	return s.with(phone, func(a *account, _ time.Time) error {
		a.faults = append(a.faults, &fault{method: f.Method, n: f.Times, err: f.Error, drop: f.Drop, delay: f.Delay})
		return nil
	})
}

// takeFault returns and consumes the first fault matching method.
func (a *account) takeFault(method string) *fault {
	for i, f := range a.faults {
		if f.method != "" && f.method != method {
			continue
		}
		f.n--
		if f.n <= 0 {
			a.faults = append(a.faults[:i], a.faults[i+1:]...)
		}
		cp := *f
		return &cp
	}
	return nil
}

// SilenceSpamBot makes SpamBot stop answering (true) or answer again
// (false), to test what a prober does when no reply comes.
func (s *Server) SilenceSpamBot(silent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w.spamBotSilent = silent
}

// Advance moves virtual time forward and returns the new time.
func (s *Server) Advance(d time.Duration) time.Time { return s.clock.Advance(d) }

// MakeMutual makes the account and the population user with the given
// username mutual contacts.
func (s *Server) MakeMutual(phone, username string) error {
	return s.with(phone, func(a *account, _ time.Time) error {
		u := s.w.byUsername[strings.ToLower(strings.TrimPrefix(username, "@"))]
		if u == nil {
			return fmt.Errorf("testserver: no user @%s", username)
		}
		a.u.contacts[u.id] = true
		u.contacts[a.u.id] = true
		return nil
	})
}

// Usernames returns the usernames of the first n population users; none
// of them is a contact of a new account.
func (s *Server) Usernames(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = min(n, len(s.w.population))
	out := make([]string, n)
	for i := range out {
		out[i] = s.w.population[i].username
	}
	return out
}

// ChannelUsernames returns the usernames of every public channel and
// group, in creation order: the three channels, the three groups, then
// the Options.Groups extra groups.
func (s *Server) ChannelUsernames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.w.chanOrder))
	for i, c := range s.w.chanOrder {
		out[i] = c.username
	}
	return out
}

// AccountStatus is the simulation's view of an account, for assertions.
type AccountStatus struct {
	UserID       int64
	Lang         string
	Limited      bool
	LimitedUntil time.Time // zero when permanent or not limited
	Permanent    bool
	Restrictions int // limits given so far
	Banned       bool
	Frozen       bool
	FrozenUntil  time.Time
	Reports      int
	Sessions     int
}

// Status returns the account's simulated state now.
func (s *Server) Status(phone string) (AccountStatus, error) {
	var st AccountStatus
	err := s.with(phone, func(a *account, now time.Time) error {
		p := &a.policy
		st = AccountStatus{UserID: a.u.id, Lang: a.lang, Limited: p.limited(now), Permanent: p.permanent,
			Restrictions: p.steps, Banned: p.banned, Frozen: p.frozen(), FrozenUntil: p.frozenUntil,
			Reports: len(p.reports), Sessions: len(a.sessions)}
		if st.Limited && !p.permanent {
			st.LimitedUntil = p.limitUntil
		}
		return nil
	})
	return st, err
}

// bindKey makes key an authorised session of a.
func (w *world) bindKey(key [8]byte, a *account, now time.Time) {
	w.keys[key] = a
	a.sessions[key] = &authSession{hash: randomInt64(), created: now, active: now, conn: w.conns[key]}
}

// revokeKey unbinds a key and remembers it was revoked.
func (w *world) revokeKey(key [8]byte) {
	delete(w.keys, key)
	if w.revokedSet == nil {
		w.revokedSet = map[[8]byte]bool{}
	}
	w.revokedSet[key] = true
}

func (w *world) revoked(key [8]byte) bool { return w.revokedSet[key] }
