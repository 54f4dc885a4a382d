// Package jsonbody reads and writes the JSON bodies of tgsafety's HTTP APIs (the
// daemon's API and the test server's control API) strictly and explains
// what is wrong: a typo in a field name must fail loudly, not be ignored
// and leave a caller silently doing something else.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// BadRequest is a body that is not what the endpoint accepts; its message
// names the problem and, where there is one, the field. Answer it with 400.
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

func bad(format string, args ...any) error {
	return &BadRequest{Msg: fmt.Sprintf(format, args...)}
}

// Decode reads exactly one JSON object from r into v, refusing unknown
// fields and trailing data. An empty body is accepted (v untouched) only
// when emptyOK. A *http.MaxBytesError from r (the body limit) is returned
// as it is, for a 413; every other problem is a *BadRequest.
func Decode(r io.Reader, v any, emptyOK bool) error {
	b, err := io.ReadAll(r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return bad("request body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if emptyOK {
			return nil
		}
		return bad("request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return explain(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("request body: unexpected data after the JSON object")
	}
	return nil
}

// explain turns a decoding error into a message naming the problem.
func explain(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad("request body: truncated JSON")
	case errors.As(err, &syn):
		return bad("request body: invalid JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return bad("request body must be a JSON object, got %s", typ.Value)
		}
		return bad("field %q must be %s, got %s", typ.Field, kind(typ.Type), typ.Value)
	}
	// DisallowUnknownFields reports `json: unknown field "x"` as a plain error.
	return bad("request body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}

// Write answers v as JSON with status. HTML is not escaped: the answers
// are read by programs and people, not rendered by browsers. If v cannot be
// encoded the answer is a 500 with a JSON error, never half a body.
func Write(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error":"internal error: cannot encode the response"}` + "\n")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
