package api

import (
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/tgsafety/tgsafety/monitor"
	"github.com/tgsafety/tgsafety/monitor/probe"
)

// Probes.

type probeRequest struct {
	Probe string `json:"probe"`
}

type probeResponse struct {
	Probe  string    `json:"probe"`
	RunsAt time.Time `json:"runs_at"`
}

var probeKindRE = regexp.MustCompile(`^[a-z][a-z_]{0,31}$`) // no digits: a kind is echoed in errors

func (a *handler) probe(r *http.Request) (int, any, error) {
	acct, err := a.lookup(r.PathValue("name"), "")
	if err != nil {
		return 0, nil, err
	}
	var req probeRequest
	if err := decodeBody(r, &req, true); err != nil {
		return 0, nil, err
	}
	kind := req.Probe
	if kind == "" {
		kind = monitor.ProbeSpamBot
	}
	if !probeKindRE.MatchString(kind) {
		return 0, nil, badRequest("probe: unknown probe kind")
	}
	// A banned or dead account's client stops for good (runner.loop),
	// and so does its scheduler: a runs_at would be a promise never
	// kept. The state is checked too because the runner notices a
	// little after the account does.
	if st := acct.Snapshot().State; st == monitor.Banned || st == monitor.Dead {
		return 0, nil, errorf(http.StatusConflict, "account %q is %s: its client has stopped and probes do not run", acct.Name(), st)
	}
	var s *probe.Scheduler
	if a.d.Scheduler != nil {
		s = a.d.Scheduler(acct.Name())
	}
	if s == nil {
		return 0, nil, errorf(http.StatusConflict, "account %q has no probe scheduler: its client is not running (not signed in, or stopped; see the daemon's log)", acct.Name())
	}
	at, err := s.Request(kind)
	if errors.Is(err, probe.ErrUnknownProbe) {
		return 0, nil, badRequest("probe: unknown probe kind %q for account %q", kind, acct.Name())
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, probeResponse{Probe: kind, RunsAt: at}, nil
}
