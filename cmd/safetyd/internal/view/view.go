package view

import (
	"sort"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
)

// Account is an account in the API's list (GET /api/v1/accounts).
type Account struct {
	Name       string                 `json:"name"`
	State      monitor.State          `json:"state"`
	Since      time.Time              `json:"since"`
	Until      time.Time              `json:"until,omitzero"`
	Reason     string                 `json:"reason,omitempty"`
	Risk       float64                `json:"risk"`
	FloodWaits []monitor.FloodWait    `json:"flood_waits"`
	Limit      monitor.Limit          `json:"limit"`
	Freeze     monitor.Freeze         `json:"freeze"`
	SpamBot    *monitor.SpamBotStatus `json:"spambot"`
	// Replica, on a PostgreSQL fleet, names the replica that runs the
	// account when it is not the one answering; the state is then the
	// one stored, as of AsOf (its last snapshot).
	Replica string    `json:"replica,omitempty"`
	AsOf    time.Time `json:"as_of,omitzero"`
}

// Detail is one account: the list view plus the last signal, the
// risk inputs and the instant the snapshot describes.
type Detail struct {
	Account
	LastSignal *monitor.Event      `json:"last_signal"`
	RiskInputs []monitor.RiskInput `json:"risk_inputs"`
	At         time.Time           `json:"at"`
}

// Of is the list view of a snapshot.
func Of(s monitor.Snapshot) Account {
	v := Account{
		Name: s.Account, State: s.State, Since: s.Since, Until: s.Until, Reason: s.Reason,
		Risk: s.Risk, FloodWaits: s.FloodWaits, Limit: s.Limit, Freeze: s.Freeze,
	}
	if v.FloodWaits == nil {
		v.FloodWaits = []monitor.FloodWait{}
	}
	if sb := s.SpamBot; sb != nil {
		// The reason an answer was not understood is for the status page
		// and the log; the API's answer stays state, until and at.
		cp := *sb
		cp.Reason = ""
		v.SpamBot = &cp
	}
	return v
}

// DetailOf is the detailed view of a snapshot.
func DetailOf(s monitor.Snapshot) Detail {
	d := Detail{Account: Of(s), LastSignal: s.LastSignal, RiskInputs: s.RiskInputs, At: s.At}
	if d.RiskInputs == nil {
		d.RiskInputs = []monitor.RiskInput{}
	}
	return d
}

// RemoteOf is the detailed view of an account another replica runs, as
// its stored snapshot has it: Replica names the holder ("none" while no
// replica holds its lease) and AsOf is the snapshot's time.
func RemoteOf(s monitor.Snapshot, replica string) Detail {
	d := DetailOf(s)
	d.Replica, d.AsOf = replica, s.At
	if d.Replica == "" {
		d.Replica = "none"
	}
	return d
}

// Severity orders states for the fleet table and the timeline's legend, most urgent first. It
// follows the monitor's order (Banned, Dead, Frozen, Limited, Throttled,
// Watch) except that unknown ranks above ok: an account the monitor knows
// nothing about, or whose SpamBot probe failed, needs a look; an ok one
// does not.
func Severity(s monitor.State) int {
	switch s {
	case monitor.Banned:
		return 7
	case monitor.Dead:
		return 6
	case monitor.Frozen:
		return 5
	case monitor.Limited:
		return 4
	case monitor.Throttled:
		return 3
	case monitor.Watch:
		return 2
	case monitor.Unknown:
		return 1
	}
	return 0
}

// StatesBySeverity returns every state, most urgent first.
func StatesBySeverity() []monitor.State {
	out := monitor.States()
	sort.SliceStable(out, func(i, j int) bool { return Severity(out[i]) > Severity(out[j]) })
	return out
}
