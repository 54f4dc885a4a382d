package scenarios

import (
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/guard"
	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// The labels a scenario may carry. They select scenarios in the Ginkgo
// suite (--label-filter) and in scenario-run, so their spelling is part of
// the file format.
const (
	// LabelSim: runs against the simulated Telegram (every scenario does;
	// the parser adds it when missing).
	LabelSim = "sim"
	// LabelStaging: safe to run against Telegram's test DCs: one account,
	// low volume, no server-side control steps.
	LabelStaging = "staging"
	// LabelSlow: takes noticeably longer than the rest (seconds of wall
	// time); CI may filter it out.
	LabelSlow = "slow"
)

// Scenario is one parsed scenario file: who the accounts are, what they
// do, and what must hold. Parse builds it; the fields mirror the YAML
// (docs/scenarios.md) so that a report can point back at the file.
type Scenario struct {
	// File is the path the scenario was read from (for messages).
	File        string
	Name        string
	Description string
	Labels      []string
	// Seed drives the test server's population and simulated spam
	// reports, so a scenario gives the same outcome every run.
	Seed uint64
	// Users is the size of the simulated population.
	Users int
	// Profile is "default" or the path of a limits profile file, relative
	// to the scenario file.
	Profile  string
	Accounts []*Account
	Steps    []*Step
	Expect   []*Expectation
}

// HasLabel reports whether the scenario carries label l.
func (s *Scenario) HasLabel(l string) bool {
	for _, x := range s.Labels {
		if x == l {
			return true
		}
	}
	return false
}

// ClientKind is how a scenario's built-in client reacts to FLOOD_WAIT.
type ClientKind string

// The client kinds.
const (
	// ClientNaive makes each call once and moves on, whatever the answer:
	// the way many scripts treat errors.
	ClientNaive ClientKind = "naive"
	// ClientFloodWait installs gotd/contrib's floodwait.SimpleWaiter
	// (on the scenario's clock): it sleeps through waits of up to MaxWait
	// and retries up to MaxRetries times, then gives up.
	ClientFloodWait ClientKind = "floodwait"
)

// Account is a simulated account (or, on staging, the test account).
type Account struct {
	Line int
	// Name is the monitor's account name: never a phone number.
	Name string
	// Age is how old the account is when the scenario starts.
	Age time.Duration
	// Lang is the client's language code ("en", "ru"); SpamBot answers in it.
	Lang    string
	Premium bool
	// Contacts is how many population users are mutual contacts.
	Contacts int
	Client   ClientKind
	// FloodWait tunes ClientFloodWait.
	FloodWait FloodWaitSpec
	// Guard, when set, puts the guard in front of the monitor middleware.
	Guard *GuardSpec
	// Probes, when set, runs a probe scheduler for the account.
	Probes *ProbesSpec
}

// FloodWaitSpec configures the floodwait client (gotd/contrib defaults).
type FloodWaitSpec struct {
	MaxWait    time.Duration
	MaxRetries int
}

// GuardSpec configures the account's guard (docs/guard.md).
type GuardSpec struct {
	Mode    guard.Mode
	Margin  float64
	MaxWait time.Duration
}

// ProbesSpec configures the account's probe scheduler (docs/probes.md).
type ProbesSpec struct {
	// Schedules by probe kind (spambot, freeze, sessions).
	Schedules map[string]ProbeSchedule
	// Watch requests probes on state changes (Scheduler.Watch).
	Watch bool
}

// ProbeSchedule is probe.Schedule in file form.
type ProbeSchedule struct {
	Interval, Jitter, Floor time.Duration
}

// StepKind names what a step does; it is the step's key in the file.
type StepKind string

// The step kinds. docs/scenarios.md describes each.
const (
	StepLogin          StepKind = "login"
	StepSend           StepKind = "send"
	StepResolve        StepKind = "resolve"
	StepJoin           StepKind = "join"
	StepInvite         StepKind = "invite"
	StepImportContacts StepKind = "import_contacts"
	StepAskSpamBot     StepKind = "ask_spambot"
	StepProbe          StepKind = "probe"
	StepRequestProbe   StepKind = "request_probe"
	StepAdvance        StepKind = "advance"
	StepFreeze         StepKind = "freeze"
	StepUnfreeze       StepKind = "unfreeze"
	StepBan            StepKind = "ban"
	StepUnban          StepKind = "unban"
	StepLimit          StepKind = "limit"
	StepRelease        StepKind = "release"
	StepFault          StepKind = "fault"
	StepReconnect      StepKind = "reconnect"
	StepHook           StepKind = "hook"
	StepCheck          StepKind = "check"
)

// Send targets.
const (
	ToContacts    = "contacts"
	ToNonContacts = "non_contacts"
	ToGroup       = "group"
)

// Step is one thing that happens in a scenario.
type Step struct {
	Line    int
	Kind    StepKind
	Account string
	// Count is how many calls (or, for import_contacts, contacts).
	Count int
	// Over spreads the calls evenly over this long (zero: see Interval).
	Over time.Duration
	// Interval is the time between consecutive calls from rate; with
	// neither over nor rate the calls are a burst at one instant.
	Interval time.Duration
	// StopOn ends a repeated step at the first call with one of these
	// outcomes, as a client that respects them would; the rest of the
	// step's time does not pass.
	StopOn []string
	// To is the send target (contacts, non_contacts, group).
	To string
	// Batch is how many contacts one importContacts call carries.
	Batch int
	// Duration is advance's length, freeze's and limit's length.
	Duration time.Duration
	// Permanent is limit without an end.
	Permanent bool
	// ProbeKind is the probe of probe and request_probe.
	ProbeKind string
	// Fault is the injected failure.
	Fault *FaultSpec
	// Hook names a registered Go hook (Options.Hooks).
	Hook string
	// Check is the expectation of a check step.
	Check *Expectation
}

// FaultSpec is testserver.Fault in file form.
type FaultSpec struct {
	Method string
	Times  int
	Code   int
	Error  string
	Drop   bool
	Delay  time.Duration
}

// Expectation is what must hold for one account, at the end (expect) or
// at a point of the scenario (check). Unset fields are not checked.
type Expectation struct {
	Line    int
	Path    string // "expect[0]" or "steps[3].check", for messages
	Account string
	// State is the state at the time of the check.
	State *monitor.State
	// Reaches is a state entered at some point, by Within from the start
	// when Within is set.
	Reaches *monitor.State
	Within  time.Duration
	// Never lists states the account must never enter.
	Never []monitor.State
	// Signals counts signals by kind.
	Signals map[signal.Kind]Range
	// FloodWaits counts FLOOD_WAIT signals by method.
	FloodWaits map[string]Range
	// LongestFloodWait bounds the longest wait seen (in seconds).
	LongestFloodWait *Range
	// SpamBot is the last conclusive SpamBot answer; spambot.Unknown
	// when SpamBot was asked but never answered conclusively. The check
	// fails, whatever the value, when SpamBot was never asked.
	SpamBot *spambot.State
	// Risk bounds the risk score (0-100).
	Risk *Range
	// GuardBlocks counts calls the guard refused, in total ("" key) or by
	// reason.
	GuardBlocks map[string]Range
	// Outcomes counts the scenario client's calls by outcome: ok,
	// blocked, error, or the signal kind of the RPC error.
	Outcomes map[string]Range
	// Probes counts probe runs by kind.
	Probes map[string]Range
	// ProbeGap bounds the shortest time between two runs of a probe kind
	// (in seconds).
	ProbeGap map[string]Range
}
