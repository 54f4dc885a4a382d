package jsonbody

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type req struct {
	Phone string `json:"phone"`
	Times int    `json:"times"`
}

func TestDecode(t *testing.T) {
	for body, want := range map[string]string{
		`{"phone":"1","times":2}`:   "",
		``:                          "request body is empty; send a JSON object",
		`{"phone":"1"`:              "request body: truncated JSON",
		`{"phone":1}`:               `field "phone" must be a string, got number`,
		`{"times":"x"}`:             `field "times" must be an integer, got string`,
		`[1]`:                       "request body must be a JSON object, got array",
		`{"phnoe":"1"}`:             `request body: unknown field "phnoe"`,
		`{"phone":"1"} {"times":1}`: "request body: unexpected data after the JSON object",
		`{"phone":"1",}`:            "request body: invalid JSON at byte 14",
	} {
		var v req
		err := Decode(strings.NewReader(body), &v, false)
		var br *BadRequest
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", body, err)
		case want != "" && (!errors.As(err, &br) || !strings.HasPrefix(br.Msg, want)):
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
	var v req
	if err := Decode(strings.NewReader("  \n"), &v, true); err != nil {
		t.Errorf("empty body with emptyOK: %v", err)
	}
	big := http.MaxBytesReader(httptest.NewRecorder(), readCloser{strings.NewReader(`{"phone":"123456"}`)}, 4)
	var tooBig *http.MaxBytesError
	if err := Decode(big, &v, false); !errors.As(err, &tooBig) {
		t.Errorf("oversized body: %v, want *http.MaxBytesError", err)
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"phone":"1","times":2}`, `{`, `[]`, `{"times":1e99}`, "\xff", `{"a":{"b":[1,2,{}]}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v req
		err := Decode(strings.NewReader(body), &v, false)
		var br *BadRequest
		if err != nil && (!errors.As(err, &br) || br.Msg == "") {
			t.Fatalf("%q: error %v is not a BadRequest with a message", body, err)
		}
	})
}

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, http.StatusAccepted, map[string]string{"a": "<b>"})
	if w.Code != http.StatusAccepted || w.Body.String() != "{\"a\":\"<b>\"}\n" {
		t.Fatalf("%d %q", w.Code, w.Body.String())
	}
	w = httptest.NewRecorder()
	Write(w, http.StatusOK, func() {})
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), `"error"`) {
		t.Fatalf("unencodable: %d %q", w.Code, w.Body.String())
	}
}
