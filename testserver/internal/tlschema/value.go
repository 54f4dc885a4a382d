package tlschema

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/gotd/td/bin"
)

// Limits of the generic decoder: input comes from clients.
const (
	maxDepth = 64
	// maxInflated bounds what gzip_packed objects may inflate to, per
	// decode call.
	maxInflated = 8 << 20
	// maxZeroSizeElems bounds vectors whose elements may take no bytes
	// (bare constructors without fields).
	maxZeroSizeElems = 1 << 12
)

// Object is a decoded constructor or function call. Args has one entry
// per field of C: nil for an absent conditional field and for # fields
// (their bits are recomputed from the fields present when encoding).
// Values are int32, int64, float64, []byte (string, bytes, int128,
// int256), bool (true: a set flag), []any (vectors) and *Object.
type Object struct {
	C    *Combinator
	Args []any
}

// Arg returns the named field's value, or nil.
func (o *Object) Arg(name string) any {
	if i := o.C.Param(name); i >= 0 {
		return o.Args[i]
	}
	return nil
}

// DecodeError is a body that does not match the schema.
type DecodeError struct {
	Msg string
}

func (e *DecodeError) Error() string { return "tl decode: " + e.Msg }

// UnknownIDError is an id the schema does not define where a constructor
// or function was expected.
type UnknownIDError struct {
	ID       uint32
	Function bool
	Layer    int
}

func (e *UnknownIDError) Error() string {
	what := "constructor"
	if e.Function {
		what = "function"
	}
	return fmt.Sprintf("tl decode: layer %d has no %s #%08x", e.Layer, what, e.ID)
}

func decodeErr(format string, args ...any) error {
	return &DecodeError{Msg: fmt.Sprintf(format, args...)}
}

type decoder struct {
	s        *Schema
	inflated int
}

// DecodeCall decodes a function call (a request body). It must use every
// byte.
func (s *Schema) DecodeCall(body []byte) (*Object, error) {
	d := &decoder{s: s}
	b := &bin.Buffer{Buf: body}
	o, err := d.call(b, 0)
	if err != nil {
		return nil, err
	}
	if b.Len() != 0 {
		return nil, decodeErr("%d bytes after %s", b.Len(), o.C.Name)
	}
	return o, nil
}

// DecodeBoxed decodes one boxed object of any type (a result or an
// update). It must use every byte.
func (s *Schema) DecodeBoxed(body []byte) (*Object, error) {
	d := &decoder{s: s}
	b := &bin.Buffer{Buf: body}
	o, err := d.boxed(b, nil, 0)
	if err != nil {
		return nil, err
	}
	if b.Len() != 0 {
		return nil, decodeErr("%d bytes after %s", b.Len(), o.C.Name)
	}
	return o, nil
}

func (d *decoder) call(b *bin.Buffer, depth int) (*Object, error) {
	if depth > maxDepth {
		return nil, decodeErr("nested deeper than %d", maxDepth)
	}
	id, err := b.ID()
	if err != nil {
		return nil, decodeErr("function id: %v", err)
	}
	c := d.s.funcByID[id]
	if c == nil {
		return nil, &UnknownIDError{ID: id, Function: true, Layer: d.s.Layer}
	}
	return d.fields(b, c, depth)
}

// boxed decodes a constructor id and its fields; want, when set, is the
// boxed type expected.
func (d *decoder) boxed(b *bin.Buffer, want *Type, depth int) (*Object, error) {
	if depth > maxDepth {
		return nil, decodeErr("nested deeper than %d", maxDepth)
	}
	id, err := b.ID()
	if err != nil {
		return nil, decodeErr("constructor id: %v", err)
	}
	if id == GzipPackedID {
		return d.gzipped(b, want, depth)
	}
	c := d.s.ctorByID[id]
	if c == nil {
		return nil, &UnknownIDError{ID: id, Layer: d.s.Layer}
	}
	if want != nil && want.Kind == KindBoxed && c.Result.Name != want.Name {
		return nil, decodeErr("%s is a %s, not a %s", c.Name, c.Result.Name, want.Name)
	}
	return d.fields(b, c, depth)
}

func (d *decoder) gzipped(b *bin.Buffer, want *Type, depth int) (*Object, error) {
	packed, err := b.Bytes()
	if err != nil {
		return nil, decodeErr("gzip_packed: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(packed))
	if err != nil {
		return nil, decodeErr("gzip_packed: %v", err)
	}
	room := maxInflated - d.inflated
	data, err := io.ReadAll(io.LimitReader(zr, int64(room)+1))
	if err != nil {
		return nil, decodeErr("gzip_packed: %v", err)
	}
	if len(data) > room {
		return nil, decodeErr("gzip_packed inflates past %d bytes", maxInflated)
	}
	d.inflated += len(data)
	inner := &bin.Buffer{Buf: data}
	o, err := d.boxed(inner, want, depth+1)
	if err != nil {
		return nil, err
	}
	if inner.Len() != 0 {
		return nil, decodeErr("gzip_packed: %d bytes after %s", inner.Len(), o.C.Name)
	}
	return o, nil
}

func (d *decoder) fields(b *bin.Buffer, c *Combinator, depth int) (*Object, error) {
	o := &Object{C: c, Args: make([]any, len(c.Params))}
	var flags [4]uint32 // values of the # fields, by their order among them
	flagSlot := map[int]int{}
	for i := range c.Params {
		p := &c.Params[i]
		if p.Type.Kind == KindFlags {
			v, err := b.Uint32()
			if err != nil {
				return nil, decodeErr("%s.%s: %v", c.Name, p.Name, err)
			}
			slot := len(flagSlot)
			if slot >= len(flags) {
				return nil, decodeErr("%s: more than %d # fields", c.Name, len(flags))
			}
			flagSlot[i] = slot
			flags[slot] = v
			continue
		}
		if p.Conditional() && flags[flagSlot[p.Flags]]&(1<<p.Bit) == 0 {
			continue
		}
		v, err := d.value(b, p.Type, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", c.Name, p.Name, err)
		}
		o.Args[i] = v
	}
	return o, nil
}

func (d *decoder) value(b *bin.Buffer, t *Type, depth int) (any, error) {
	switch t.Kind {
	case KindInt:
		return b.Int32()
	case KindLong:
		return b.Long()
	case KindDouble:
		return b.Double()
	case KindString, KindBytes:
		return b.Bytes()
	case KindInt128:
		v, err := b.Int128()
		return v[:], err
	case KindInt256:
		v, err := b.Int256()
		return v[:], err
	case KindTrue:
		return true, nil
	case KindVector, KindBareVector:
		return d.vector(b, t, depth)
	case KindBoxed:
		return d.boxed(b, t, depth)
	case KindBare:
		c := d.s.ctorByName[t.Name]
		if c == nil {
			return nil, decodeErr("layer %d has no constructor %s", d.s.Layer, t.Name)
		}
		return d.fields(b, c, depth)
	case KindQuery:
		return d.call(b, depth)
	}
	return nil, decodeErr("cannot decode a value of type %s", t)
}

func (d *decoder) vector(b *bin.Buffer, t *Type, depth int) (any, error) {
	if depth > maxDepth {
		return nil, decodeErr("nested deeper than %d", maxDepth)
	}
	var n int
	var err error
	if t.Kind == KindVector {
		n, err = b.VectorHeader()
	} else {
		n, err = b.Int()
	}
	if err != nil {
		return nil, decodeErr("%s: %v", t, err)
	}
	// Every element but a bare constructor without fields takes at least
	// 4 bytes: refuse lengths the body cannot hold before allocating.
	if n < 0 || n > b.Len()/4 && (n > maxZeroSizeElems || d.minSize(t.Elem) > 0) {
		return nil, decodeErr("%s of %d elements in %d bytes", t, n, b.Len())
	}
	out := make([]any, n)
	for i := range out {
		v, err := d.value(b, t.Elem, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", t, i, err)
		}
		out[i] = v
	}
	return out, nil
}

// minSize is 0 for bare constructors that may take no bytes, 4 otherwise.
func (d *decoder) minSize(t *Type) int {
	if t.Kind == KindBare {
		if c := d.s.ctorByName[t.Name]; c != nil && len(c.Params) == 0 {
			return 0
		}
	}
	return 4
}

// EncodeCall encodes a function call.
func (s *Schema) EncodeCall(b *bin.Buffer, o *Object) error {
	if !o.C.Function {
		return fmt.Errorf("tl encode: %s is not a function", o.C.Name)
	}
	return encodeObject(b, o, true, 0)
}

// EncodeBoxed encodes a constructor with its id.
func (s *Schema) EncodeBoxed(b *bin.Buffer, o *Object) error {
	return encodeObject(b, o, true, 0)
}

var errTooDeep = errors.New("tl encode: nested too deep")

func encodeObject(b *bin.Buffer, o *Object, boxed bool, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	c := o.C
	if len(o.Args) != len(c.Params) {
		return fmt.Errorf("tl encode: %s has %d values for %d fields", c.Name, len(o.Args), len(c.Params))
	}
	if boxed {
		b.PutID(c.ID)
	}
	for i := range c.Params {
		p := &c.Params[i]
		if p.Type.Kind == KindFlags {
			var bits uint32
			for j := range c.Params {
				q := &c.Params[j]
				if q.Flags == i && o.Args[j] != nil && o.Args[j] != false {
					bits |= 1 << q.Bit
				}
			}
			b.PutUint32(bits)
			continue
		}
		v := o.Args[i]
		if p.Conditional() && (v == nil || v == false) {
			continue
		}
		if v == nil {
			return fmt.Errorf("tl encode: %s.%s is required", c.Name, p.Name)
		}
		if err := encodeValue(b, v, p.Type, depth+1); err != nil {
			return fmt.Errorf("%s.%s: %w", c.Name, p.Name, err)
		}
	}
	return nil
}

func encodeValue(b *bin.Buffer, v any, t *Type, depth int) error {
	bad := func() error { return fmt.Errorf("tl encode: %T for %s", v, t) }
	switch t.Kind {
	case KindInt:
		x, ok := v.(int32)
		if !ok {
			return bad()
		}
		b.PutInt32(x)
	case KindLong:
		x, ok := v.(int64)
		if !ok {
			return bad()
		}
		b.PutLong(x)
	case KindDouble:
		x, ok := v.(float64)
		if !ok {
			return bad()
		}
		b.PutDouble(x)
	case KindString, KindBytes:
		x, ok := v.([]byte)
		if !ok {
			return bad()
		}
		b.PutBytes(x)
	case KindInt128, KindInt256:
		x, ok := v.([]byte)
		if !ok || len(x) != 16 && t.Kind == KindInt128 || len(x) != 32 && t.Kind == KindInt256 {
			return bad()
		}
		b.Put(x)
	case KindTrue:
		if _, ok := v.(bool); !ok {
			return bad()
		}
	case KindVector, KindBareVector:
		x, ok := v.([]any)
		if !ok {
			return bad()
		}
		if t.Kind == KindVector {
			b.PutVectorHeader(len(x))
		} else {
			b.PutInt(len(x))
		}
		for _, e := range x {
			if err := encodeValue(b, e, t.Elem, depth+1); err != nil {
				return err
			}
		}
	case KindBoxed, KindBare, KindQuery:
		x, ok := v.(*Object)
		if !ok || x == nil {
			return bad()
		}
		if t.Kind == KindBoxed && x.C.Result.Name != t.Name || t.Kind == KindBare && x.C.Name != t.Name ||
			t.Kind == KindQuery && !x.C.Function {
			return fmt.Errorf("tl encode: %s where %s is expected", x.C.Name, t)
		}
		return encodeObject(b, x, t.Kind != KindBare, depth)
	default:
		return bad()
	}
	return nil
}

// DecodeResult decodes the answer to a call of fn (its result type, which
// may be a vector or Bool). It must use every byte.
func (s *Schema) DecodeResult(body []byte, fn *Combinator) (any, error) {
	d := &decoder{s: s}
	b := &bin.Buffer{Buf: body}
	t := fn.Result
	if t.Kind == KindGeneric {
		t = nil // the wrapped query's type: any boxed object
	}
	var v any
	var err error
	if t == nil {
		v, err = d.boxed(b, nil, 0)
	} else {
		v, err = d.value(b, t, 0)
	}
	if err != nil {
		return nil, err
	}
	if b.Len() != 0 {
		return nil, decodeErr("%d bytes after the result of %s", b.Len(), fn.Name)
	}
	return v, nil
}
