package tlschema

import (
	"fmt"
	"strings"
)

// NoCounterpartError is a constructor or function of the source layer
// that the target layer lacks (by name, or with another type).
type NoCounterpartError struct {
	Name     string
	ID       uint32
	Function bool
	Layer    int // the target layer
}

func (e *NoCounterpartError) Error() string {
	what := "constructor"
	if e.Function {
		what = "function"
	}
	return fmt.Sprintf("tl translate: layer %d has no %s %s (#%08x)", e.Layer, what, e.Name, e.ID)
}

// Translator rewrites decoded objects of one layer into another by
// constructor and field name:
//
//   - a constructor or function maps to the target's one of the same name
//     (a constructor only when it still has the type expected there);
//   - fields map by name; # fields are recomputed from the fields present
//     when encoding; a field the target lacks is dropped;
//   - a required target field the source lacks, or whose type changed
//     beyond the conversions below, gets its type's zero value: 0, empty
//     string or bytes, an empty vector, false, and for a boxed type its
//     zero constructor (see Schema.ZeroConstructor) with zero fields;
//   - conversions: int and long into each other (0 when out of range),
//     string and bytes, Bool and a true flag, vector to vector element by
//     element;
//   - a constructor without a counterpart is an error (NoCounterpartError)
//     unless Nearest is set, when it becomes the target's nearest
//     constructor of the expected type (see Schema.Nearest). A function
//     without a counterpart is always an error.
//
// Requests are translated without Nearest (the server must not act on a
// guess: the client gets an RPC error), answers and updates with it (the
// client gets the closest thing its layer can say).
type Translator struct {
	From, To *Schema
	Nearest  bool
}

// Call translates a function call.
func (x *Translator) Call(o *Object) (*Object, error) {
	return x.object(o, nil, 0)
}

// Boxed translates a boxed object whose type keeps its name in the target
// layer.
func (x *Translator) Boxed(o *Object) (*Object, error) {
	return x.object(o, o.C.Result, 0)
}

func (x *Translator) object(o *Object, want *Type, depth int) (*Object, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	var tc *Combinator
	if o.C.Function {
		tc = x.To.funcByName[o.C.Name]
	} else {
		tc = x.To.ctorByName[o.C.Name]
		if tc != nil && want != nil && want.Kind == KindBoxed && tc.Result.Name != want.Name {
			tc = nil
		}
	}
	if tc == nil {
		if !x.Nearest || o.C.Function || want == nil || want.Kind != KindBoxed {
			return nil, &NoCounterpartError{Name: o.C.Name, ID: o.C.ID, Function: o.C.Function, Layer: x.To.Layer}
		}
		if tc = x.To.Nearest(want.Name, o.C); tc == nil {
			return nil, fmt.Errorf("tl translate: layer %d has no type %s (for %s)", x.To.Layer, want.Name, o.C.Name)
		}
	}
	out := &Object{C: tc, Args: make([]any, len(tc.Params))}
	for i := range tc.Params {
		p := &tc.Params[i]
		if p.Type.Kind == KindFlags {
			continue
		}
		var v any
		if j := o.C.Param(p.Name); j >= 0 && o.Args[j] != nil {
			var err error
			if v, err = x.value(o.Args[j], o.C.Params[j].Type, p.Type, depth+1); err != nil {
				return nil, err
			}
		}
		if v == nil && !p.Conditional() {
			var err error
			if v, err = x.To.zero(p.Type, depth+1); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", tc.Name, p.Name, err)
			}
		}
		if v == false && p.Type.Kind == KindTrue {
			v = nil
		}
		out.Args[i] = v
	}
	return out, nil
}

// value translates one field value; nil means "no usable value".
func (x *Translator) value(v any, from, to *Type, depth int) (any, error) {
	switch to.Kind {
	case KindInt, KindLong, KindDouble:
		return number(v, to.Kind), nil
	case KindString, KindBytes:
		if from.Kind == KindString || from.Kind == KindBytes {
			return v, nil
		}
	case KindInt128, KindInt256:
		if from.Kind == to.Kind {
			return v, nil
		}
	case KindTrue:
		switch from.Kind {
		case KindTrue:
			return v, nil
		case KindBoxed:
			if o, ok := v.(*Object); ok && from.Name == "Bool" {
				return o.C.Name == "boolTrue", nil
			}
		}
	case KindVector, KindBareVector:
		if from.Kind != KindVector && from.Kind != KindBareVector {
			return nil, nil
		}
		in, ok := v.([]any)
		if !ok {
			return nil, nil
		}
		out := make([]any, 0, len(in))
		for _, e := range in {
			t, err := x.value(e, from.Elem, to.Elem, depth+1)
			if err != nil {
				return nil, err
			}
			if t == nil {
				if t, err = x.To.zero(to.Elem, depth+1); err != nil {
					return nil, err
				}
			}
			out = append(out, t)
		}
		return out, nil
	case KindBoxed:
		if to.Name == "Bool" && from.Kind == KindTrue {
			return x.To.boolObject(v == true)
		}
		if o, ok := v.(*Object); ok && (from.Kind == KindBoxed || from.Kind == KindBare) {
			return x.object(o, to, depth)
		}
	case KindBare:
		if o, ok := v.(*Object); ok && (from.Kind == KindBoxed || from.Kind == KindBare) {
			t, err := x.object(o, nil, depth)
			if err != nil || t.C.Name != to.Name {
				return nil, err
			}
			return t, nil
		}
	case KindQuery:
		if o, ok := v.(*Object); ok && o.C.Function {
			return x.object(o, nil, depth)
		}
	}
	return nil, nil
}

// number converts between TL's numeric kinds; a value that does not fit
// becomes 0, and a non-number nil.
func number(v any, to Kind) any {
	var i int64
	var f float64
	isFloat := false
	switch n := v.(type) {
	case int32:
		i = int64(n)
	case int64:
		i = n
	case float64:
		f, isFloat = n, true
	default:
		return nil
	}
	switch to {
	case KindInt:
		if isFloat || i != int64(int32(i)) {
			return int32(0)
		}
		return int32(i)
	case KindLong:
		if isFloat {
			return int64(0)
		}
		return i
	default:
		if isFloat {
			return f
		}
		return float64(i)
	}
}

// zero returns a type's zero value in this schema.
func (s *Schema) zero(t *Type, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch t.Kind {
	case KindInt:
		return int32(0), nil
	case KindLong:
		return int64(0), nil
	case KindDouble:
		return float64(0), nil
	case KindString, KindBytes:
		return []byte{}, nil
	case KindInt128:
		return make([]byte, 16), nil
	case KindInt256:
		return make([]byte, 32), nil
	case KindTrue:
		return false, nil
	case KindVector, KindBareVector:
		return []any{}, nil
	case KindBoxed:
		c := s.ZeroConstructor(t.Name)
		if c == nil {
			return nil, fmt.Errorf("tl translate: layer %d has no type %s", s.Layer, t.Name)
		}
		return s.zeroObject(c, depth)
	case KindBare:
		c := s.ctorByName[t.Name]
		if c == nil {
			return nil, fmt.Errorf("tl translate: layer %d has no constructor %s", s.Layer, t.Name)
		}
		return s.zeroObject(c, depth)
	}
	return nil, fmt.Errorf("tl translate: no zero value of %s", t)
}

func (s *Schema) zeroObject(c *Combinator, depth int) (*Object, error) {
	o := &Object{C: c, Args: make([]any, len(c.Params))}
	for i := range c.Params {
		p := &c.Params[i]
		if p.Type.Kind == KindFlags || p.Conditional() {
			continue
		}
		v, err := s.zero(p.Type, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", c.Name, p.Name, err)
		}
		o.Args[i] = v
	}
	return o, nil
}

func (s *Schema) boolObject(v bool) (*Object, error) {
	name := "boolFalse"
	if v {
		name = "boolTrue"
	}
	c := s.ctorByName[name]
	if c == nil {
		return nil, fmt.Errorf("tl translate: layer %d has no %s", s.Layer, name)
	}
	return &Object{C: c, Args: []any{}}, nil
}

// ZeroConstructor is the constructor a boxed type's zero value uses: the
// type's "Empty" constructor when it has one (userEmpty, messageEmpty,
// inputPeerEmpty, ...), otherwise the one with the fewest required fields,
// the first declared among equals (boolFalse for Bool).
func (s *Schema) ZeroConstructor(typeName string) *Combinator {
	cands := s.byType[typeName]
	want := lowerFirst(typeName) + "Empty"
	var best *Combinator
	for _, c := range cands {
		if c.Name == want {
			return c
		}
	}
	for _, c := range cands {
		if strings.HasSuffix(c.Name, "Empty") {
			return c
		}
	}
	for _, c := range cands {
		if best == nil || c.required < best.required {
			best = c
		}
	}
	return best
}

// Nearest is the fallback for a constructor the layer lacks: among the
// constructors of typeName, the one sharing the most field names with
// src, then the one with the fewest required fields, then the first
// declared.
func (s *Schema) Nearest(typeName string, src *Combinator) *Combinator {
	var best *Combinator
	bestShared := -1
	for _, c := range s.byType[typeName] {
		shared := 0
		for _, p := range src.Params {
			if p.Type.Kind != KindFlags && c.Param(p.Name) >= 0 {
				shared++
			}
		}
		if shared > bestShared || shared == bestShared && c.required < best.required {
			best, bestShared = c, shared
		}
	}
	return best
}

// New builds an object of the named constructor or function: the given
// fields, and every other required field at its zero value. It is how
// tests speak another layer.
func (s *Schema) New(name string, fields map[string]any) (*Object, error) {
	c := s.ctorByName[name]
	if c == nil {
		c = s.funcByName[name]
	}
	if c == nil {
		return nil, fmt.Errorf("tlschema: layer %d has no %s", s.Layer, name)
	}
	for k := range fields {
		if c.Param(k) < 0 {
			return nil, fmt.Errorf("tlschema: layer %d: %s has no field %s", s.Layer, name, k)
		}
	}
	o := &Object{C: c, Args: make([]any, len(c.Params))}
	for i := range c.Params {
		p := &c.Params[i]
		if v, ok := fields[p.Name]; ok {
			o.Args[i] = v
			continue
		}
		if p.Type.Kind == KindFlags || p.Conditional() {
			continue
		}
		v, err := s.zero(p.Type, 1)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", c.Name, p.Name, err)
		}
		o.Args[i] = v
	}
	return o, nil
}
