package dashboards

import (
	"fmt"

	"github.com/tgsafety/tgsafety/monitor"
)

// NextStep is what an operator should do first about an account in a
// state other than ok: the first action of the runbook section that the
// state's alert links to, so that the status page, the alerts and
// docs/runbook.md give the same advice.
type NextStep struct {
	// Text is one or two sentences, addressed to the operator.
	Text string
	// Alert names the alert (and runbook section) behind the advice.
	Alert string
}

// Runbook is the link to the runbook section.
func (n NextStep) Runbook() string { return Alert{Name: n.Alert}.RunbookAnchor() }

// nextSteps maps each state that asks something of the operator to the
// runbook's first action. Watch and throttled have no alert of their own:
// they link to the alerts that fire on what put the account there.
var nextSteps = map[monitor.State]NextStep{
	monitor.Banned: {Alert: "TgsafetyAccountBanned",
		Text: "Stop every automation that uses this account. Appeal only through Telegram's official channels, and only if its traffic was legitimate."},
	monitor.Dead: {Alert: "TgsafetyAccountBanned",
		Text: "Stop every automation that uses this account. If you did not end the session, secure the account from an official app first; then sign in again with `safetyd login --account %s`."},
	monitor.Frozen: {Alert: "TgsafetyAccountFrozen",
		Text: "Stop all writes from this account. Appeal before the deletion date, through the appeal link or @SpamBot in an official app."},
	monitor.Limited: {Alert: "TgsafetyAccountLimited",
		Text: "Stop messages, invites and adds to people who are not mutual contacts: each one extends the limit. Ask SpamBot once (a spambot probe) for the end date."},
	monitor.Throttled: {Alert: "TgsafetyLongFloodWait",
		Text: "Do not retry the waiting methods before their waits end (a retry lengthens them); spread that action over the day."},
	monitor.Watch: {Alert: "TgsafetyRiskHigh",
		Text: "Slow this account down and read its latest signals: PEER_FLOOD often follows."},
	monitor.Unknown: {Alert: "TgsafetyClientDisconnected",
		Text: "Nothing conclusive is known yet: check that its client is connected (a missing session needs `safetyd login --account %s`) and read the SpamBot probe's events."},
}

// NextStepFor returns the next step for an account called name in state
// st; ok is false for ok, which asks for nothing.
func NextStepFor(st monitor.State, name string) (NextStep, bool) {
	n, ok := nextSteps[st]
	if !ok {
		return NextStep{}, false
	}
	if st == monitor.Dead || st == monitor.Unknown {
		n.Text = fmt.Sprintf(n.Text, name)
	}
	return n, true
}
