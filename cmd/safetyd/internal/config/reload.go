package config

import (
	"reflect"
)

// ReloadPlan is what applying a new configuration on SIGHUP changes.
type ReloadPlan struct {
	// Added, Removed and Changed are account names. A changed account is
	// restarted; the others keep running untouched.
	Added, Removed, Changed []string
	// Restart lists keys whose change takes effect only when the daemon
	// restarts; a reload keeps their old values.
	Restart []string
}

// PlanReload compares the running configuration with next. Accounts are
// changed when their own entry changed, or for all of them when guard,
// probes or the limits profile changed. telegram, sessions_dir, store and
// http need a restart; log.level applies at once.
func (c *Config) PlanReload(next *Config) ReloadPlan {
	var p ReloadPlan
	global := !reflect.DeepEqual(c.Guard, next.Guard) || !reflect.DeepEqual(c.Probes, next.Probes) ||
		c.LimitsProfile != next.LimitsProfile || !reflect.DeepEqual(c.Profile, next.Profile)
	for _, a := range next.Accounts {
		old, ok := c.Account(a.Name)
		switch {
		case !ok:
			p.Added = append(p.Added, a.Name)
		case global || !reflect.DeepEqual(old, a):
			p.Changed = append(p.Changed, a.Name)
		}
	}
	for _, a := range c.Accounts {
		if _, ok := next.Account(a.Name); !ok {
			p.Removed = append(p.Removed, a.Name)
		}
	}
	for _, k := range []struct {
		key  string
		a, b any
	}{
		{"telegram", c.Telegram, next.Telegram},
		{"sessions_dir", c.SessionsDir, next.SessionsDir},
		{"store", c.Store, next.Store},
		{"http", c.HTTP, next.HTTP},
	} {
		if !reflect.DeepEqual(k.a, k.b) {
			p.Restart = append(p.Restart, k.key)
		}
	}
	return p
}
