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

type item struct {
	Name string `json:"name"`
}

type batch struct {
	Account string `json:"account"`
	Items   []item `json:"items"`
}

func badMsg(t *testing.T, body string, v any) string {
	t.Helper()
	err := Decode(strings.NewReader(body), v, false)
	var br *BadRequest
	if !errors.As(err, &br) {
		t.Fatalf("%s: %v, want a *BadRequest", body, err)
	}
	return br.Msg
}

// A repeated key is an error at any depth: with "last wins" a caller who
// sent two values does not know which one counted.
func TestDecodeRefusesDuplicateKeys(t *testing.T) {
	var r req
	if got := badMsg(t, `{"phone":"1","phone":"2"}`, &r); !strings.Contains(got, `field "phone" appears twice`) {
		t.Errorf("top level: %q", got)
	}
	var b batch
	if got := badMsg(t, `{"account":"a","items":[{"name":"x"},{"name":"x","name":"y"}]}`, &b); !strings.Contains(got, `field "name" appears twice in items[1]`) {
		t.Errorf("nested: %q", got)
	}
	// A key that is not a field is refused as unknown, repeated or not.
	if got := badMsg(t, `{"+79991234567":1,"+79991234567":2}`, &r); strings.Contains(got, "7999") {
		t.Errorf("repeated unknown key echoed: %q", got)
	}
}

// Field names match exactly: encoding/json would read "Account" into
// "account", so a client's typo in case would work here and fail
// elsewhere.
func TestDecodeFieldNamesAreCaseSensitive(t *testing.T) {
	var v batch
	got := badMsg(t, `{"Account":"a"}`, &v)
	if !strings.Contains(got, `unknown field "Account"`) || !strings.Contains(got, `did you mean "account"`) {
		t.Errorf("%q, want an unknown field suggesting \"account\"", got)
	}
	if v.Account != "" {
		t.Errorf("Account decoded into account: %q", v.Account)
	}
	got = badMsg(t, `{"items":[{"NAME":"x"}]}`, &v)
	if !strings.Contains(got, `unknown field "NAME" in items[0]`) {
		t.Errorf("nested: %q", got)
	}
}

// A body of null is not an object; it must not read as an empty request
// whose first required field is missing.
func TestDecodeNullBodyIsNotAnObject(t *testing.T) {
	for _, body := range []string{`null`, ` null `, `"x"`, `1`, `true`} {
		var v req
		if got := badMsg(t, body, &v); !strings.HasPrefix(got, "request body must be a JSON object, got ") {
			t.Errorf("%s: %q", body, got)
		}
	}
}

// An unknown field's name is quoted only when it looks like a field
// name; a phone number or token sent as a key is not repeated.
func TestDecodeDoesNotEchoSecretShapedFieldNames(t *testing.T) {
	for _, key := range []string{"+79991234567", "79991234567", "feedfacecafebeef0123456789abcdef", "tok_SECRET_4f8a2c9e1b7d", strings.Repeat("a", 41), "a b"} {
		body := `{"` + key + `":1}`
		var v req
		got := badMsg(t, body, &v)
		if !strings.Contains(got, "unknown field (name not shown)") || strings.Contains(got, key) {
			t.Errorf("%s: %q", body, got)
		}
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"phone":"1","times":2}`, `{`, `[]`, `{"times":1e99}`, "\xff", `{"a":{"b":[1,2,{}]}}`,
		`{"phone":"1","phone":"2"}`, `{"Phone":"1"}`, `null`, `{"a":[[[{"a":1,"a":2}]]]}`} {
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
