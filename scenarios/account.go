package scenarios

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/gotd/contrib/middleware/floodwait"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"go.uber.org/zap"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/probe"
	"github.com/tgsafety/tgsafety/monitor/spambot"
	"github.com/tgsafety/tgsafety/testserver"
)

// group is where send to: group and invite steps go.
const group = "sim_group_a"

// acctRun is one account during a scenario: its monitor account, guard,
// client and what its built-in client has learnt.
type acctRun struct {
	w     *world
	spec  *Account
	phone string
	mon   *monitor.Account
	guard *guard.Guard

	client  *telegram.Client
	api     *tg.Client
	cancel  context.CancelFunc
	runDone chan error
	self    chan error // each self check on (re)connect: nil or its error

	sched     *probe.Scheduler
	schedStop func()
	spam      *probe.SpamBot

	// Guarded by w.mu.
	outcomes map[string]int
	blocks   map[string]int

	contacts     []*tg.User
	contactNames map[string]bool
	nextContact  int
	nextStranger int
	nextResolve  int
	nextChannel  int
	nextImport   int
	randomID     int64
	users        map[string]*tg.User
	chans        map[string]*tg.Channel
	joined       map[int64]bool
}

func (w *world) newAccount(i int, a *Account) (*acctRun, error) {
	ar := &acctRun{w: w, spec: a, outcomes: map[string]int{}, blocks: map[string]int{},
		contactNames: map[string]bool{}, users: map[string]*tg.User{}, chans: map[string]*tg.Channel{},
		joined: map[int64]bool{}, self: make(chan error, 16)}
	if w.srv != nil {
		// Telegram's test numbers: 99966 X YYYY, X the DC.
		ar.phone = fmt.Sprintf("99966%d%04d", w.srv.DC(), i+1)
		if _, err := w.srv.CreateAccount(testserver.AccountSpec{Phone: ar.phone, FirstName: a.Name, Age: a.Age,
			Lang: a.Lang, Premium: a.Premium, MutualContacts: a.Contacts}); err != nil {
			return nil, fmt.Errorf("%s:%d: account %q: %w", w.s.File, a.Line, a.Name, err)
		}
	} else {
		ar.phone = w.r.opts.Staging.Phone
	}
	acct, err := w.mon.Account(a.Name)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: account: %w", w.s.File, a.Line, err)
	}
	ar.mon = acct
	if a.Guard != nil {
		g, err := guard.New(acct, guard.Options{Profile: w.profile, Margin: a.Guard.Margin, Mode: a.Guard.Mode,
			MaxWait: a.Guard.MaxWait, Created: w.clk.Now().Add(-a.Age), Logger: w.log.Named("guard")})
		if err != nil {
			return nil, fmt.Errorf("%s:%d: account %q: %w", w.s.File, a.Line, a.Name, err)
		}
		ar.guard = g
	}
	return ar, nil
}

// clientOptions builds the account's gotd options: session, language,
// middlewares (floodwait waiter, guard, monitor: outermost first) and the
// self hooks that report each (re)connect's users.getUsers(self).
func (a *acctRun) clientOptions(ctx context.Context) (telegram.Options, error) {
	w := a.w
	var opts telegram.Options
	if w.srv != nil {
		st, err := w.srv.SessionStorage(a.phone)
		if err != nil {
			return opts, err
		}
		opts = w.srv.ClientOptions()
		opts.SessionStorage = st
	} else {
		st, err := w.r.opts.Staging.login(ctx)
		if err != nil {
			return opts, err
		}
		opts = w.r.opts.Staging.clientOptions(st)
	}
	opts.Device = telegram.DeviceConfig{LangCode: a.spec.Lang, SystemLangCode: a.spec.Lang}
	var mws []telegram.Middleware
	if a.spec.Client == ClientFloodWait {
		// gotd/contrib's SimpleWaiter on the scenario clock. (Its Waiter
		// keeps its scheduler on the system clock whatever WithClock says,
		// so it cannot run on virtual time.)
		mws = append(mws, floodwait.NewSimpleWaiter().WithClock(w.clk).
			WithMaxWait(a.spec.FloodWait.MaxWait).WithMaxRetries(uint(a.spec.FloodWait.MaxRetries)))
	}
	var handler telegram.UpdateHandler = telegram.UpdateHandlerFunc(func(context.Context, tg.UpdatesClass) error { return nil })
	if a.guard != nil {
		mws = append(mws, a.guard.Middleware())
		handler = a.guard.Handler(nil)
	}
	mws = append(mws, a.mon.Middleware())
	opts.Middlewares = mws
	opts.NoUpdates = false
	opts.UpdateHandler = handler
	onOK, onErr := probe.Hooks(a.mon, nil)
	opts.OnSelfSuccess = func(u *tg.User) {
		onOK(u)
		a.selfDone(nil)
	}
	opts.OnSelfError = func(ctx context.Context, err error) error {
		res := onErr(ctx, err)
		a.selfDone(err)
		return res
	}
	a.configure(&opts)
	return opts, nil
}

// configure applies Options.ConfigureClient. On staging it then sets the
// test DCs again: whatever the caller's code does, a staging run talks to
// Telegram's test DCs, never to production.
func (a *acctRun) configure(opts *telegram.Options) {
	w := a.w
	f := w.r.opts.ConfigureClient
	if f == nil {
		return
	}
	f(a.spec.Name, opts)
	if w.srv != nil {
		return
	}
	want := w.r.opts.Staging.clientOptions(nil)
	if opts.DC != want.DC || !reflect.DeepEqual(opts.DCList, want.DCList) {
		w.log.Warn("Options.ConfigureClient changed the DC or the DC list on staging; the test DCs are kept",
			zap.String("account", a.spec.Name))
	}
	opts.DC, opts.DCList = want.DC, want.DCList
}

func (a *acctRun) selfDone(err error) {
	select {
	case a.self <- err:
	default: // nobody waits for this one; the account already knows
	}
}

func (a *acctRun) drainSelf() {
	for {
		select {
		case <-a.self:
		default:
			return
		}
	}
}

// awaitSelf waits for the self check of a (re)connect.
func (a *acctRun) awaitSelf(ctx context.Context) error {
	select {
	case <-a.self:
		return nil
	case err := <-a.runDone:
		a.runDone <- err
		return fmt.Errorf("client stopped: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("no self check after connecting: %w", ctx.Err())
	}
}

// login connects the account's client and waits for its self check; the
// monitor then knows the account (ok, or banned when Telegram says so).
func (a *acctRun) login(ctx context.Context) (string, error) {
	w := a.w
	opts, err := a.clientOptions(ctx)
	if err != nil {
		return "", err
	}
	appID, appHash := ClientAppID, ClientAppHash
	if w.srv == nil {
		appID, appHash = w.r.opts.Staging.AppID, w.r.opts.Staging.AppHash
	}
	c := telegram.NewClient(appID, appHash, opts)
	a.client, a.api = c, c.API()
	cctx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	a.runDone = make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		a.runDone <- runClient(cctx, c, func(ctx context.Context, _ *telegram.Client) error {
			close(ready)
			<-ctx.Done()
			return nil
		})
	}()
	select {
	case <-ready:
	case err := <-a.runDone:
		a.runDone <- err
		return "", fmt.Errorf("connect: %w", err)
	case <-ctx.Done():
		return "", fmt.Errorf("connect: %w", ctx.Err())
	}
	if err := a.awaitSelf(ctx); err != nil {
		return "", err
	}
	summary := "connected"
	if a.spec.Contacts > 0 {
		if err := w.call(ctx, a.loadContacts); err != nil {
			return "", fmt.Errorf("contacts.getContacts: %w", err)
		}
		summary += fmt.Sprintf(", %d mutual contacts", len(a.contacts))
	}
	if a.spec.Probes != nil {
		if err := a.startProbes(ctx); err != nil {
			return "", err
		}
		summary += ", probe scheduler running"
	}
	return summary, nil
}

// loadContacts reads the contact list (which also teaches the guard who
// is mutual) and keeps the mutual contacts to write to.
func (a *acctRun) loadContacts(ctx context.Context) error {
	res, err := a.api.ContactsGetContacts(ctx, 0)
	if err != nil {
		return err
	}
	cs, ok := res.(*tg.ContactsContacts)
	if !ok {
		return fmt.Errorf("unexpected %T", res)
	}
	mutual := map[int64]bool{}
	for _, c := range cs.Contacts {
		if c.Mutual {
			mutual[c.UserID] = true
		}
	}
	for _, uc := range cs.Users {
		if u, ok := uc.(*tg.User); ok && mutual[u.ID] {
			a.contacts = append(a.contacts, u)
			a.contactNames[strings.ToLower(u.Username)] = true
		}
	}
	sort.Slice(a.contacts, func(i, j int) bool { return a.contacts[i].ID < a.contacts[j].ID })
	return nil
}

func (a *acctRun) startProbes(ctx context.Context) error {
	w := a.w
	sched := probe.NewScheduler(a.mon, probe.Options{Seed: w.s.Seed, Logger: w.log.Named("probe")})
	kinds := sortedKeys(a.spec.Probes.Schedules)
	for _, kind := range kinds {
		ps := a.spec.Probes.Schedules[kind]
		if err := sched.Add(a.probe(kind), probe.Schedule{Interval: ps.Interval, Jitter: ps.Jitter, Floor: ps.Floor}); err != nil {
			return fmt.Errorf("probes.%s: %w", kind, err)
		}
	}
	var unwatch func()
	if a.spec.Probes.Watch {
		unwatch = sched.Watch(w.mon)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sched.Run(sctx)
	}()
	a.sched = sched
	a.schedStop = func() {
		if unwatch != nil {
			unwatch()
		}
		cancel()
		<-done
	}
	w.base++ // its timer is armed whenever it is idle
	return w.settle(ctx)
}

// probe returns the account's probe of a kind; SpamBot's is shared so
// that its peer is resolved once.
func (a *acctRun) probe(kind string) probe.Probe {
	switch kind {
	case monitor.ProbeSpamBot:
		if a.spam == nil {
			a.spam = probe.NewSpamBot(a.mon, a.api, spambot.ProberOptions{Clock: a.w.clk})
		}
		return a.spam
	case monitor.ProbeFreeze:
		return &probe.Freeze{Account: a.mon, API: a.api}
	case monitor.ProbeSessions:
		return &probe.Sessions{Account: a.mon, API: a.api}
	default:
		return &probe.Self{Account: a.mon, API: a.api}
	}
}

func (a *acctRun) stop() {
	if a.schedStop != nil {
		a.schedStop()
		a.schedStop = nil
	}
	if a.cancel != nil {
		a.cancel()
		<-a.runDone
		a.cancel = nil
	}
	if a.guard != nil {
		a.guard.Close()
	}
}

// note counts one call's outcome.
func (a *acctRun) note(err error) string {
	o, reason := outcomeOf(err)
	a.w.mu.Lock()
	a.outcomes[o]++
	if reason != "" {
		a.blocks[reason]++
	}
	a.w.mu.Unlock()
	return o
}

func (a *acctRun) nextRandomID() int64 {
	a.randomID++
	return a.randomID
}

// stranger returns the next population user who is not a contact. It
// never falls back to a contact: a step "to strangers" must not write to
// contacts (the parser refuses such a scenario; this is the backstop).
func (a *acctRun) stranger() (string, error) {
	us := a.w.usernames
	for range us {
		name := us[a.nextStranger%len(us)]
		a.nextStranger++
		if !a.contactNames[name] {
			return name, nil
		}
	}
	return "", fmt.Errorf("no stranger: all %d population users are contacts of %s", len(us), a.spec.Name)
}

func (a *acctRun) resolveUser(ctx context.Context, name string) (*tg.User, error) {
	if u := a.users[name]; u != nil {
		return u, nil
	}
	r, err := a.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: name})
	if err != nil {
		return nil, err
	}
	for _, uc := range r.Users {
		if u, ok := uc.(*tg.User); ok {
			a.users[name] = u
			return u, nil
		}
	}
	return nil, fmt.Errorf("@%s is not a user", name)
}

func (a *acctRun) resolveChannel(ctx context.Context, name string) (*tg.Channel, error) {
	if c := a.chans[name]; c != nil {
		return c, nil
	}
	r, err := a.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: name})
	if err != nil {
		return nil, err
	}
	for _, cc := range r.Chats {
		if c, ok := cc.(*tg.Channel); ok {
			a.chans[name] = c
			return c, nil
		}
	}
	return nil, fmt.Errorf("@%s is not a channel", name)
}

func (a *acctRun) join(ctx context.Context, name string) (*tg.Channel, error) {
	c, err := a.resolveChannel(ctx, name)
	if err != nil {
		return nil, err
	}
	if a.joined[c.ID] {
		return c, nil
	}
	_, err = a.api.ChannelsJoinChannel(ctx, &tg.InputChannel{ChannelID: c.ID, AccessHash: c.AccessHash})
	if err != nil && !tgerr.Is(err, "USER_ALREADY_PARTICIPANT") {
		return nil, err
	}
	a.joined[c.ID] = true
	return c, nil
}

func (a *acctRun) dm(ctx context.Context, peer tg.InputPeerClass) error {
	_, err := a.api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
		Peer: peer, Message: "Hello from a tgsafety scenario", RandomID: a.nextRandomID()})
	return err
}

// send is one message of a send step.
func (a *acctRun) send(ctx context.Context, to string) error {
	switch to {
	case ToContacts:
		u := a.contacts[a.nextContact%len(a.contacts)]
		a.nextContact++
		return a.dm(ctx, &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash})
	case ToGroup:
		c, err := a.join(ctx, group)
		if err != nil {
			return err
		}
		return a.dm(ctx, &tg.InputPeerChannel{ChannelID: c.ID, AccessHash: c.AccessHash})
	default:
		name, err := a.stranger()
		if err != nil {
			return err
		}
		u, err := a.resolveUser(ctx, name)
		if err != nil {
			return err
		}
		return a.dm(ctx, &tg.InputPeerUser{UserID: u.ID, AccessHash: u.AccessHash})
	}
}

func (a *acctRun) resolve(ctx context.Context) error {
	us := a.w.usernames
	name := us[a.nextResolve%len(us)]
	a.nextResolve++
	_, err := a.api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: name})
	return err
}

func (a *acctRun) joinNext(ctx context.Context) error {
	cs := a.w.channels
	for range cs {
		name := cs[a.nextChannel%len(cs)]
		a.nextChannel++
		if c := a.chans[name]; c != nil && a.joined[c.ID] {
			continue
		}
		_, err := a.join(ctx, name)
		return err
	}
	return errors.New("every simulated channel is joined already")
}

func (a *acctRun) invite(ctx context.Context) error {
	c, err := a.join(ctx, group)
	if err != nil {
		return err
	}
	name, err := a.stranger()
	if err != nil {
		return err
	}
	u, err := a.resolveUser(ctx, name)
	if err != nil {
		return err
	}
	_, err = a.api.ChannelsInviteToChannel(ctx, &tg.ChannelsInviteToChannelRequest{
		Channel: &tg.InputChannel{ChannelID: c.ID, AccessHash: c.AccessHash},
		Users:   []tg.InputUserClass{&tg.InputUser{UserID: u.ID, AccessHash: u.AccessHash}},
	})
	return err
}

// importContacts imports n made-up numbers in one call. They belong to
// nobody; Telegram (and the simulation) counts them all the same.
func (a *acctRun) importContacts(ctx context.Context, n int) error {
	cs := make([]tg.InputPhoneContact, n)
	for i := range cs {
		a.nextImport++
		cs[i] = tg.InputPhoneContact{ClientID: int64(a.nextImport), Phone: fmt.Sprintf("99977%06d", a.nextImport),
			FirstName: "Imported", LastName: fmt.Sprint(a.nextImport)}
	}
	_, err := a.api.ContactsImportContacts(ctx, cs)
	return err
}

// lastProbe describes the account's latest probe event of a kind.
func (a *acctRun) lastProbe(kind string) string {
	evs := a.w.eventsOf(a.spec.Name)
	for i := len(evs) - 1; i >= 0; i-- {
		if e := evs[i]; e.Type == monitor.EventProbe && e.Probe == kind {
			return e.Reason
		}
	}
	return "no answer recorded"
}
