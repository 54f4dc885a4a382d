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
	"regexp"
	"strconv"
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
// fields, keys that differ from a field's name only in case, repeated
// keys (at any depth) and trailing data. An empty body is accepted (v
// untouched) only when emptyOK. A *http.MaxBytesError from r (the body
// limit) is returned as it is, for a 413; every other problem is a
// *BadRequest. Messages quote a field name only when it looks like one
// (see showName): a phone number or token sent as a key is not repeated.
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
	var raw json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return explain(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("request body: unexpected data after the JSON object")
	}
	// encoding/json keeps the last of repeated keys and matches names
	// case-insensitively; a pass over the tokens refuses both before
	// anything is decoded.
	tokens := json.NewDecoder(bytes.NewReader(raw))
	tokens.UseNumber()
	if err := checkBody(tokens, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec = json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return explain(err)
	}
	return nil
}

// maxDepth bounds the nesting checkBody follows: the APIs' bodies are two
// levels deep, and a body of a million '[' must not become a million
// stack frames.
const maxDepth = 32

// checkBody reads one JSON value from dec, which must be an object, and
// checks its keys against t (the type it will be decoded into).
func checkBody(dec *json.Decoder, t reflect.Type) error {
	tok, err := dec.Token()
	if err != nil {
		return explain(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return bad("request body must be a JSON object, got %s", tokenKind(tok))
	}
	return checkObject(dec, t, "", 1)
}

// checkValue checks the value whose first token is tok; path names it in
// messages ("" for the body itself).
func checkValue(dec *json.Decoder, tok json.Token, t reflect.Type, path string, depth int) error {
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar; its type is checked when decoding
	}
	if depth > maxDepth {
		return bad("request body: nested deeper than %d levels", maxDepth)
	}
	t = deref(t)
	if d == '{' {
		return checkObject(dec, t, path, depth)
	}
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	for i := 0; dec.More(); i++ {
		tok, err := dec.Token()
		if err != nil {
			return explain(err)
		}
		if err := checkValue(dec, tok, elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
			return err
		}
	}
	_, err := dec.Token() // ']'
	return explainOrNil(err)
}

// checkObject checks the keys of an object whose '{' has been read: each
// once, and, when t is a struct, each exactly the name of one of its
// fields.
func checkObject(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	t = deref(t)
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct && !isUnmarshaler(t) {
		fields = jsonFields(t)
	}
	in := ""
	if path != "" {
		in = " in " + path
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return explain(err)
		}
		key, _ := tok.(string)
		var ft reflect.Type
		switch {
		case fields != nil:
			var ok bool
			if ft, ok = fields[key]; !ok {
				return unknownField(key, fields, in)
			}
		case t != nil && t.Kind() == reflect.Map:
			ft = t.Elem()
		}
		if seen[key] {
			return bad("request body: field %s appears twice%s; send each field once", showName(key), in)
		}
		seen[key] = true
		if tok, err = dec.Token(); err != nil {
			return explain(err)
		}
		if err := checkValue(dec, tok, ft, join(path, key), depth+1); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return explainOrNil(err)
}

func unknownField(key string, fields map[string]reflect.Type, in string) error {
	name := "unknown field (name not shown)"
	if showable(key) {
		name = fmt.Sprintf("unknown field %q", key)
	}
	for f := range fields {
		if strings.EqualFold(f, key) {
			return bad("request body: %s%s; field names are case-sensitive: did you mean %q?", name, in, f)
		}
	}
	return bad("request body: %s%s", name, in)
}

// join extends a path with a key, keeping it readable only while the
// key is shown.
func join(path, key string) string {
	if !showable(key) {
		key = "(field)"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldName matches the names a message may quote: a request's field
// names are words of letters and underscores, and so are the typos
// worth pointing out. Anything else (digits, a long string) could be a
// phone number or a token sent in the wrong place.
var fieldName = regexp.MustCompile(`^[A-Za-z_]{1,40}$`)

// showable needs no phone rule (monitor/phone): fieldName refuses every
// digit.
func showable(key string) bool {
	return fieldName.MatchString(key)
}

// showName quotes a key for a message, or says it is not shown.
func showName(key string) string {
	if showable(key) {
		return strconv.Quote(key)
	}
	return "(name not shown)"
}

// jsonFields returns a struct's JSON field names, as encoding/json names
// them (tag name, else Go name; embedded structs' fields promoted), with
// their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if et := deref(f.Type); et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// isUnmarshaler reports types that decode themselves (time.Time): their
// keys are not struct fields.
func isUnmarshaler(t reflect.Type) bool {
	return t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler)
}

// tokenKind names what a token starts, for "must be a JSON object, got X".
func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "true or false"
	case nil:
		return "null"
	}
	return "something else"
}

func explainOrNil(err error) error {
	if err != nil {
		return explain(err)
	}
	return nil
}

// explain turns a decoding error into a message naming the problem.
func explain(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return bad("request body: truncated JSON")
	case errors.As(err, &syn):
		return bad("request body: invalid JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return bad("request body must be a JSON object, got %s", typ.Value)
		}
		return bad("field %q must be %s, got %s", typ.Field, kind(typ.Type), typ.Value)
	}
	// checkBody has refused unknown fields with a message of its own;
	// this is a fallback that does not repeat the decoder's text, which
	// quotes the name.
	if strings.Contains(err.Error(), "unknown field") {
		return bad("request body: unknown field (name not shown)")
	}
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
