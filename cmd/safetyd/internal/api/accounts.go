package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/view"
	"github.com/tgsafety/tgsafety/monitor"
)

// Health.

// Health is the answer of /healthz and /readyz.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// NotMonitored are the configured accounts nobody watches (their
	// client stopped for good), with why and what to do. The daemon is
	// still ready: it serves the others.
	NotMonitored map[string]string `json:"not_monitored,omitempty"`
}

func (a *handler) healthz(*http.Request) (int, any, error) {
	return http.StatusOK, Health{Status: "ok", Version: a.d.Version}, nil
}

func (a *handler) readyz(*http.Request) (int, any, error) {
	if a.d.Ready != nil {
		if err := a.d.Ready(); err != nil {
			return http.StatusServiceUnavailable, Health{Status: "not ready", Reason: err.Error()}, nil
		}
	}
	resp := Health{Status: "ready"}
	if a.d.NotMonitored != nil {
		resp.NotMonitored = a.d.NotMonitored()
	}
	return http.StatusOK, resp, nil
}

// Accounts.

type accountsResponse struct {
	Accounts []view.Account `json:"accounts"`
}

func (a *handler) accounts(r *http.Request) (int, any, error) {
	accts := a.d.Monitor.Accounts() // sorted by name
	out := accountsResponse{Accounts: make([]view.Account, 0, len(accts))}
	for _, acct := range accts {
		out.Accounts = append(out.Accounts, view.Of(acct.Snapshot()))
	}
	if a.d.Fleet != nil {
		remote, err := a.d.Fleet.Remote(r.Context())
		if err != nil {
			return 0, nil, fmt.Errorf("read the accounts of other replicas: %w", err)
		}
		local := make(map[string]bool, len(accts))
		for _, acct := range accts {
			local[acct.Name()] = true
		}
		for _, rm := range remote {
			if !local[rm.Snapshot.Account] {
				out.Accounts = append(out.Accounts, view.RemoteOf(rm.Snapshot, rm.Replica).Account)
			}
		}
		slices.SortFunc(out.Accounts, func(x, y view.Account) int { return strings.Compare(x.Name, y.Name) })
	}
	return http.StatusOK, out, nil
}

func (a *handler) account(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	acct, err := a.lookup(name, "")
	if errors.Is(err, errRemote) {
		remote, err := a.d.Fleet.Remote(r.Context())
		if err != nil {
			return 0, nil, fmt.Errorf("read the accounts of other replicas: %w", err)
		}
		for _, rm := range remote {
			if rm.Snapshot.Account == name {
				return http.StatusOK, view.RemoteOf(rm.Snapshot, rm.Replica), nil
			}
		}
		return 0, nil, errorf(http.StatusNotFound, "no account %q", name)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view.DetailOf(acct.Snapshot()), nil
}

type eventsResponse struct {
	Events []monitor.Event `json:"events"`
}

func (a *handler) events(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	acct, err := a.lookup(name, "")
	if err != nil && !(errors.Is(err, errRemote) && a.d.Store != nil) {
		return 0, nil, err
	}
	q := r.URL.Query()
	since := a.d.Now().Add(-defaultEventsWindow)
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, nil, badRequest("since: invalid time; use RFC 3339, e.g. 2026-01-02T15:04:05Z")
		}
		since = t
	}
	limit := defaultEventsLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEventsLimit {
			return 0, nil, badRequest("limit: must be an integer from 1 to %d", maxEventsLimit)
		}
		limit = n
	}
	var evs []monitor.Event
	if a.d.Store != nil {
		evs, err = a.d.Store.Events(r.Context(), name, since, limit)
		if err != nil {
			return 0, nil, fmt.Errorf("read events: %w", err)
		}
	} else {
		for _, e := range acct.Events() {
			if !e.Time.Before(since) && len(evs) < limit {
				evs = append(evs, e)
			}
		}
	}
	if evs == nil {
		evs = []monitor.Event{}
	}
	return http.StatusOK, eventsResponse{Events: evs}, nil
}
