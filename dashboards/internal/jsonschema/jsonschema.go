// Package jsonschema validates JSON documents against the subset of JSON
// Schema draft-07 that grafana-foundation-sdk's schemas use (see
// dashboards/schema/SOURCE.md): type, enum, const, properties, required,
// additionalProperties, items, $ref to local definitions, allOf, anyOf,
// oneOf, minimum/maximum (and exclusive), minLength/maxLength. A keyword
// outside that subset is an error, not silently ignored, so the validator
// cannot pass a document it does not understand. No JSON Schema library
// is in the module cache, and the subset is small enough to hold here.
package jsonschema

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// Schema is a parsed schema file.
type Schema struct {
	root map[string]any
}

// Parse reads a schema file.
func Parse(data []byte) (*Schema, error) {
	var root map[string]any
	if err := json.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	return &Schema{root: root}, nil
}

// known keywords: validated ones, then annotations that never constrain.
var (
	validated = map[string]bool{
		"type": true, "enum": true, "const": true, "properties": true, "required": true,
		"additionalProperties": true, "items": true, "$ref": true, "allOf": true, "anyOf": true,
		"oneOf": true, "minimum": true, "maximum": true, "exclusiveMinimum": true,
		"exclusiveMaximum": true, "minLength": true, "maxLength": true,
	}
	annotations = map[string]bool{
		"$schema": true, "definitions": true, "description": true, "default": true,
		"deprecated": true, "x-deprecation-message": true, "format": true, "title": true,
	}
)

// Validate checks doc (decoded with encoding/json into any) against the
// schema at ref: "" for the root, or "#/definitions/Name". It returns
// every violation, each with its JSON path.
func (s *Schema) Validate(doc any, ref string) []error {
	sch := s.root
	if ref != "" {
		var err error
		if sch, err = s.resolve(ref); err != nil {
			return []error{err}
		}
	}
	var errs []error
	s.validate(doc, sch, "$", &errs)
	return errs
}

func (s *Schema) resolve(ref string) (map[string]any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("unsupported $ref %q (only local refs)", ref)
	}
	var cur any = s.root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %s is not an object", ref, part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("$ref %q: no %s", ref, part)
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q is not a schema object", ref)
	}
	return m, nil
}

func errf(errs *[]error, path, format string, args ...any) {
	*errs = append(*errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (s *Schema) validate(v any, sch map[string]any, path string, errs *[]error) {
	keys := make([]string, 0, len(sch))
	for k := range sch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !validated[k] && !annotations[k] {
			errf(errs, path, "schema keyword %q is not supported by this validator", k)
		}
	}
	if ref, ok := sch["$ref"].(string); ok {
		target, err := s.resolve(ref)
		if err != nil {
			errf(errs, path, "%v", err)
			return
		}
		s.validate(v, target, path, errs)
	}
	if t, ok := sch["type"]; ok && !typeMatches(v, t) {
		errf(errs, path, "type %s, want %v", typeName(v), t)
		return
	}
	if e, ok := sch["enum"].([]any); ok {
		found := false
		for _, x := range e {
			if reflect.DeepEqual(x, v) {
				found = true
				break
			}
		}
		if !found {
			errf(errs, path, "%s is not one of %s", show(v), show(e))
		}
	}
	if c, ok := sch["const"]; ok && !reflect.DeepEqual(c, v) {
		errf(errs, path, "%s, want const %s", show(v), show(c))
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		subs, ok := sch[k].([]any)
		if !ok {
			continue
		}
		var passed int
		var sub []error
		for i, x := range subs {
			m, _ := x.(map[string]any)
			var e []error
			s.validate(v, m, path, &e)
			if len(e) == 0 {
				passed++
			} else {
				sub = append(sub, fmt.Errorf("%s[%d]: %w", k, i, e[0]))
			}
		}
		switch {
		case k == "allOf" && passed != len(subs):
			errf(errs, path, "allOf: %v", sub)
		case k == "anyOf" && passed == 0:
			errf(errs, path, "matches no anyOf branch: %v", sub)
		case k == "oneOf" && passed != 1:
			errf(errs, path, "matches %d oneOf branches, want 1: %v", passed, sub)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		s.object(x, sch, path, errs)
	case []any:
		if items, ok := sch["items"].(map[string]any); ok {
			for i, it := range x {
				s.validate(it, items, fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	case float64:
		number(x, sch, path, errs)
	case string:
		n := float64(utf8.RuneCountInString(x))
		if m, ok := sch["minLength"].(float64); ok && n < m {
			errf(errs, path, "%q shorter than %v", x, m)
		}
		if m, ok := sch["maxLength"].(float64); ok && n > m {
			errf(errs, path, "%q longer than %v", x, m)
		}
	}
}

func (s *Schema) object(x map[string]any, sch map[string]any, path string, errs *[]error) {
	props, _ := sch["properties"].(map[string]any)
	if req, ok := sch["required"].([]any); ok {
		for _, r := range req {
			if _, ok := x[r.(string)]; !ok {
				errf(errs, path, "required property %q missing", r)
			}
		}
	}
	names := make([]string, 0, len(x))
	for k := range x {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p := path + "." + k
		if ps, ok := props[k].(map[string]any); ok {
			s.validate(x[k], ps, p, errs)
			continue
		}
		switch ap := sch["additionalProperties"].(type) {
		case bool:
			if !ap {
				errf(errs, path, "property %q is not allowed", k)
			}
		case map[string]any:
			s.validate(x[k], ap, p, errs)
		}
	}
}

func number(x float64, sch map[string]any, path string, errs *[]error) {
	if m, ok := sch["minimum"].(float64); ok && x < m {
		errf(errs, path, "%v < minimum %v", x, m)
	}
	if m, ok := sch["maximum"].(float64); ok && x > m {
		errf(errs, path, "%v > maximum %v", x, m)
	}
	if m, ok := sch["exclusiveMinimum"].(float64); ok && x <= m {
		errf(errs, path, "%v <= exclusiveMinimum %v", x, m)
	}
	if m, ok := sch["exclusiveMaximum"].(float64); ok && x >= m {
		errf(errs, path, "%v >= exclusiveMaximum %v", x, m)
	}
}

func typeMatches(v any, t any) bool {
	switch t := t.(type) {
	case string:
		return isType(v, t)
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok && isType(v, s) {
				return true
			}
		}
	}
	return false
}

func isType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	}
	return false
}

func typeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func show(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}
