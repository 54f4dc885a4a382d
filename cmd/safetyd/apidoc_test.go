package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tgsafety/tgsafety/monitor/signal"
	"github.com/tgsafety/tgsafety/monitor/spambot"
)

// docExample is a JSON answer shown in docs/api.md, with the request it
// answers.
type docExample struct {
	method, path string
	status       int // 0 for a ```json block (a 200 answer)
	body         string
	line         int
}

var (
	docRequest = regexp.MustCompile(`^\s*(GET|POST) (/\S*)`)
	docArrow   = regexp.MustCompile(`->\s+(\d{3}) (\{.*\})\s*$`)
)

// docExamples reads the answers docs/api.md shows: ```json blocks and
// "-> 202 {...}" lines, each under the last "GET /path" or "POST /path"
// line above it.
func docExamples(t *testing.T) []docExample {
	t.Helper()
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []docExample
	var method, path string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if m := docRequest.FindStringSubmatch(l); m != nil {
			method, path = m[1], m[2]
		}
		if m := docArrow.FindStringSubmatch(l); m != nil {
			var status int
			fmt.Sscan(m[1], &status)
			out = append(out, docExample{method: method, path: path, status: status, body: m[2], line: i + 1})
			continue
		}
		if strings.TrimSpace(l) == "```json" {
			start := i + 1
			var block []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				block = append(block, lines[i])
			}
			out = append(out, docExample{method: method, path: path, body: strings.Join(block, "\n"), line: start})
		}
	}
	return out
}

// The answers docs/api.md shows have the fields, JSON types, enum values
// and scale of real answers to the same requests, so that the document
// cannot drift from the code (it showed risk as 0.7 while the API answers
// 0-100).
func TestAPIDocExamplesMatchRealAnswers(t *testing.T) {
	ex := docExamples(t)
	type req struct {
		method, path string
		status       int
		// real makes the real answer on a fresh fixture.
		real func(f *apiFixture) apiResult
	}
	signalBody := `{"account":"alpha","method":"messages.sendMessage","code":420,"message":"FLOOD_WAIT_30"}`
	want := []req{
		{"GET", "/healthz", 200, func(f *apiFixture) apiResult { return f.get("/healthz") }},
		{"GET", "/readyz", 200, func(f *apiFixture) apiResult { return f.get("/readyz") }},
		{"GET", "/readyz", 503, func(f *apiFixture) apiResult {
			f.ready = fmt.Errorf("store not open yet")
			return f.get("/readyz")
		}},
		{"GET", "/api/v1/accounts", 0, func(f *apiFixture) apiResult {
			// The scenario the example shows: alpha limited by SpamBot
			// for two days, bravo in a 30 s flood wait.
			alpha, _ := f.mon.Lookup("alpha")
			alpha.ObserveSpamBot(apiEpoch, spambot.Result{State: spambot.LimitedTemporary, Until: apiEpoch.Add(48 * time.Hour)})
			bravo, _ := f.mon.Lookup("bravo")
			bravo.ObserveSignal(apiEpoch, "messages.sendMessage", signal.Parse(420, "FLOOD_WAIT_30"))
			return f.get("/api/v1/accounts")
		}},
		{"GET", "/api/v1/accounts/{name}/events?since=2026-03-01T00:00:00Z&limit=100", 0, func(f *apiFixture) apiResult {
			f.post("/api/v1/signals", `{"account":"alpha","method":"messages.sendMessage","code":400,"message":"PEER_FLOOD"}`)
			return f.get("/api/v1/accounts/alpha/events?since=2026-03-01T00:00:00Z&limit=100")
		}},
		{"POST", "/api/v1/accounts/{name}/probe", 202, func(f *apiFixture) apiResult {
			return f.post("/api/v1/accounts/alpha/probe", `{"probe":"spambot"}`)
		}},
		{"POST", "/api/v1/signals", 202, func(f *apiFixture) apiResult { return f.post("/api/v1/signals", signalBody) }},
		{"POST", "/api/v1/signals", 202, func(f *apiFixture) apiResult {
			return f.post("/api/v1/signals", `{"signals":[`+signalBody+`,`+signalBody+`]}`)
		}},
	}
	var got []string
	for _, e := range ex {
		got = append(got, fmt.Sprintf("%s %s %d", e.method, e.path, e.status))
	}
	var wantS []string
	for _, w := range want {
		wantS = append(wantS, fmt.Sprintf("%s %s %d", w.method, w.path, w.status))
	}
	if !slices.Equal(got, wantS) {
		t.Fatalf("docs/api.md shows these answers:\n  %s\nthe test checks:\n  %s\nkeep them in step", strings.Join(got, "\n  "), strings.Join(wantS, "\n  "))
	}
	for i, e := range ex {
		f := newAPIFixture(t, nil)
		res := want[i].real(f)
		status := e.status
		if status == 0 {
			status = 200
		}
		if res.code != status {
			t.Errorf("docs/api.md:%d: %s %s: the real answer is %d, the doc shows %d: %s", e.line, e.method, e.path, res.code, status, res.body)
			continue
		}
		var doc, real any
		if err := json.Unmarshal([]byte(e.body), &doc); err != nil {
			t.Errorf("docs/api.md:%d: the example is not JSON: %v", e.line, err)
			continue
		}
		if err := json.Unmarshal([]byte(res.body), &real); err != nil {
			t.Fatal(err)
		}
		for _, d := range shapeDiff(doc, real, "") {
			t.Errorf("docs/api.md:%d: %s %s: %s", e.line, e.method, e.path, d)
		}
	}
}

// enumKeys hold values from a fixed set; the example shows the value the
// real answer has.
var enumKeys = []string{"state", "from", "kind", "type", "status", "probe"}

// shapeDiff compares a documented JSON value with a real one: the same
// keys, JSON types, enum values, times where times are, and numbers of
// the same order of magnitude (a scale error shows as a factor of 100 or
// 10^9). Array elements are matched by "name" or "type", else in order.
func shapeDiff(doc, real any, path string) []string {
	var out []string
	at := func(s string) string {
		if path == "" {
			return s
		}
		return path + ": " + s
	}
	if jsonType(doc) != jsonType(real) {
		return []string{at(fmt.Sprintf("the doc shows %s, the API answers %s", jsonType(doc), jsonType(real)))}
	}
	switch d := doc.(type) {
	case map[string]any:
		r := real.(map[string]any)
		for k := range d {
			if _, ok := r[k]; !ok {
				out = append(out, at(fmt.Sprintf("the doc shows %q, the API does not answer it", k)))
			}
		}
		for k := range r {
			if _, ok := d[k]; !ok {
				out = append(out, at(fmt.Sprintf("the API answers %q, the doc does not show it", k)))
			}
		}
		for k, dv := range d {
			rv, ok := r[k]
			if !ok {
				continue
			}
			if ds, ok := dv.(string); ok && slices.Contains(enumKeys, k) {
				if rs, _ := rv.(string); rs != ds {
					out = append(out, at(fmt.Sprintf("%s: the doc shows %q, the API answers %q", k, ds, rs)))
				}
			}
			out = append(out, shapeDiff(dv, rv, strings.TrimPrefix(path+"."+k, "."))...)
		}
	case []any:
		r := real.([]any)
		for i, dv := range d {
			rv := matchElement(dv, r, i)
			if rv == nil {
				out = append(out, at(fmt.Sprintf("element %d has no counterpart in the real answer", i)))
				continue
			}
			out = append(out, shapeDiff(dv, rv, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case string:
		_, dErr := time.Parse(time.RFC3339Nano, d)
		_, rErr := time.Parse(time.RFC3339Nano, real.(string))
		if (dErr == nil) != (rErr == nil) {
			out = append(out, at(fmt.Sprintf("%q and the real %q are not both times", d, real)))
		}
	case float64:
		r := real.(float64)
		switch {
		case d < 0 != (r < 0):
			out = append(out, at(fmt.Sprintf("the doc shows %v, the API answers %v", d, r)))
		case r == 0:
			// Nothing to compare a scale with. (A reported signal's event
			// carries risk 0 until issue 11 item 3 is fixed; then it is
			// compared like the others.)
		case d == 0:
			out = append(out, at(fmt.Sprintf("the doc shows 0, the API answers %v", r)))
		case d/r > 10 || r/d > 10:
			out = append(out, at(fmt.Sprintf("the doc shows %v, the API answers %v: not the same scale", d, r)))
		}
	}
	return out
}

// matchElement finds the real array element a documented one stands for.
func matchElement(doc any, real []any, i int) any {
	if d, ok := doc.(map[string]any); ok {
		for _, key := range []string{"name", "type"} {
			if v, ok := d[key]; ok {
				for _, r := range real {
					if rm, ok := r.(map[string]any); ok && rm[key] == v {
						return r
					}
				}
			}
		}
	}
	if i < len(real) {
		return real[i]
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "true or false"
	}
	return fmt.Sprintf("%T", v)
}
