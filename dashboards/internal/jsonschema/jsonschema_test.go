package jsonschema

import (
	"encoding/json"
	"strings"
	"testing"
)

const testSchema = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$ref": "#/definitions/Panel",
  "definitions": {
    "Panel": {
      "type": "object",
      "additionalProperties": false,
      "required": ["type"],
      "properties": {
        "type": {"type": "string", "minLength": 1},
        "id": {"type": "integer", "minimum": 0},
        "mode": {"$ref": "#/definitions/Mode"},
        "steps": {"type": "array", "items": {"type": "object", "properties": {"value": {"type": ["number", "null"]}}}},
        "x": {"anyOf": [{"type": "boolean"}, {"type": "number"}]},
        "k": {"const": "fixed"},
        "extra": {"type": "object", "additionalProperties": {"type": "string"}}
      }
    },
    "Mode": {"enum": ["single", "multi"], "type": "string"}
  }
}`

func check(t *testing.T, doc string) []error {
	t.Helper()
	s, err := Parse([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	return s.Validate(v, "")
}

func TestValid(t *testing.T) {
	if errs := check(t, `{"type":"stat","id":3,"mode":"multi","steps":[{"value":null},{"value":2}],"x":true,"k":"fixed","extra":{"a":"b"}}`); len(errs) != 0 {
		t.Fatal(errs)
	}
}

func TestViolations(t *testing.T) {
	for doc, want := range map[string]string{
		`{}`:                                   `required property "type" missing`,
		`{"type":""}`:                          `shorter than 1`,
		`{"type":"a","id":1.5}`:                `$.id: type number, want integer`,
		`{"type":"a","id":-1}`:                 `< minimum 0`,
		`{"type":"a","mode":""}`:               `$.mode: "" is not one of`,
		`{"type":"a","other":1}`:               `property "other" is not allowed`,
		`{"type":"a","steps":[{"value":"x"}]}`: `$.steps[0].value: type string`,
		`{"type":"a","x":"s"}`:                 `matches no anyOf branch`,
		`{"type":"a","k":"other"}`:             `want const "fixed"`,
		`{"type":"a","extra":{"a":1}}`:         `$.extra.a: type number, want string`,
	} {
		errs := check(t, doc)
		if len(errs) == 0 {
			t.Errorf("%s: no error, want %q", doc, want)
			continue
		}
		if !strings.Contains(errs[0].Error(), want) {
			t.Errorf("%s: %v, want %q", doc, errs, want)
		}
	}
}

func TestUnknownKeywordIsAnError(t *testing.T) {
	s, err := Parse([]byte(`{"type":"string","pattern":"^a"}`))
	if err != nil {
		t.Fatal(err)
	}
	if errs := s.Validate("a", ""); len(errs) == 0 || !strings.Contains(errs[0].Error(), `"pattern" is not supported`) {
		t.Fatalf("errors = %v", errs)
	}
}
