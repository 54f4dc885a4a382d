package probe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/signal"
)

// Freeze reads help.getAppConfig for the freeze fields Telegram added in
// 2025: freeze_since_date, freeze_until_date and freeze_appeal_url.
type Freeze struct {
	Account *monitor.Account
	API     *tg.Client
}

// Kind implements Probe.
func (f *Freeze) Kind() string { return monitor.ProbeFreeze }

// Run implements Probe.
func (f *Freeze) Run(ctx context.Context) error {
	// The answer is dated when the request was sent: a "not frozen"
	// answer clears only freeze evidence older than the request.
	sent := f.Account.Clock().Now()
	cfg, err := f.API.HelpGetAppConfig(ctx, 0)
	if err != nil {
		f.Account.ObserveFreeze(sent, monitor.FreezeStatus{Reason: "help.getAppConfig failed: " + signal.Describe(err)})
		return err
	}
	st := ParseAppConfig(cfg)
	f.Account.ObserveFreeze(sent, st)
	if !st.Known {
		return errors.New(st.Reason)
	}
	return nil
}

// ParseAppConfig reads the freeze fields. A missing or zero
// freeze_since_date is "not frozen"; appConfigNotModified or a value of the
// wrong type is unknown — never "not frozen".
func ParseAppConfig(cfg tg.HelpAppConfigClass) monitor.FreezeStatus {
	c, ok := cfg.(*tg.HelpAppConfig)
	if !ok {
		return monitor.FreezeStatus{Reason: fmt.Sprintf("no config in the answer (%T)", cfg)}
	}
	obj, ok := c.Config.(*tg.JSONObject)
	if !ok {
		return monitor.FreezeStatus{Reason: fmt.Sprintf("config is %T, not an object", c.Config)}
	}
	st := monitor.FreezeStatus{Known: true}
	unix := func(key string, v tg.JSONValueClass) (time.Time, bool) {
		n, ok := v.(*tg.JSONNumber)
		if !ok || n.Value < 0 || n.Value > 1<<40 {
			st = monitor.FreezeStatus{Reason: fmt.Sprintf("%s is not a unix time", key)}
			return time.Time{}, false
		}
		if n.Value == 0 {
			return time.Time{}, true
		}
		return time.Unix(int64(n.Value), 0).UTC(), true
	}
	for _, kv := range obj.Value {
		switch kv.Key {
		case "freeze_since_date":
			t, ok := unix(kv.Key, kv.Value)
			if !ok {
				return st
			}
			st.Since = t
		case "freeze_until_date":
			t, ok := unix(kv.Key, kv.Value)
			if !ok {
				return st
			}
			st.DeletionDate = t
		case "freeze_appeal_url":
			s, ok := kv.Value.(*tg.JSONString)
			if !ok {
				return monitor.FreezeStatus{Reason: "freeze_appeal_url is not a string"}
			}
			st.AppealURL = s.Value
		}
	}
	st.Frozen = !st.Since.IsZero()
	if !st.Frozen {
		st.DeletionDate, st.AppealURL = time.Time{}, ""
	}
	return st
}
