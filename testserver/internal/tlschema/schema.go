package tlschema

import (
	"fmt"
	"strings"
)

// Kind is what a type term denotes.
type Kind uint8

// Kinds of type terms. Boxed values carry their constructor id on the
// wire; bare ones do not.
const (
	KindInt        Kind = iota + 1 // int: 4 bytes
	KindLong                       // long: 8 bytes
	KindDouble                     // double: 8 bytes
	KindString                     // string: TL bytes holding UTF-8
	KindBytes                      // bytes
	KindInt128                     // int128: 16 bytes
	KindInt256                     // int256: 32 bytes
	KindTrue                       // true: no bytes; only as a flag field
	KindFlags                      // #: a bit field
	KindVector                     // Vector<T>: boxed vector (id 0x1cb5c415)
	KindBareVector                 // vector<T>: length and elements only
	KindBoxed                      // a boxed type such as User or messages.Messages
	KindBare                       // a bare constructor (%name or a lowercase type name)
	KindQuery                      // !X: a nested function call
	KindGeneric                    // X: the type parameter, in results only
)

// VectorID is the constructor id of Vector<T>.
const VectorID = 0x1cb5c415

// GzipPackedID is gzip_packed#3072cfa1, which a sender may put where any
// boxed object is expected.
const GzipPackedID = 0x3072cfa1

// Type is a parsed type term.
type Type struct {
	Kind Kind
	// Name is the boxed type's name (KindBoxed), the constructor's name
	// (KindBare) or the type parameter (KindQuery, KindGeneric).
	Name string
	// Elem is the element type of a vector.
	Elem *Type
}

func (t *Type) String() string {
	switch t.Kind {
	case KindInt:
		return "int"
	case KindLong:
		return "long"
	case KindDouble:
		return "double"
	case KindString:
		return "string"
	case KindBytes:
		return "bytes"
	case KindInt128:
		return "int128"
	case KindInt256:
		return "int256"
	case KindTrue:
		return "true"
	case KindFlags:
		return "#"
	case KindVector:
		return "Vector<" + t.Elem.String() + ">"
	case KindBareVector:
		return "vector<" + t.Elem.String() + ">"
	case KindBare:
		return "%" + t.Name
	case KindQuery:
		return "!" + t.Name
	}
	return t.Name
}

// Param is one field of a combinator.
type Param struct {
	Name string
	Type *Type
	// Flags is the index in Params of the # field this field depends on,
	// or -1 when the field is always present.
	Flags int
	// Bit is the bit of that field which says the field is present.
	Bit int
}

// Conditional reports whether the field is present only when its flag
// bit is set.
func (p *Param) Conditional() bool { return p.Flags >= 0 }

// Combinator is a constructor or a function.
type Combinator struct {
	ID       uint32
	Name     string
	Params   []Param
	Result   *Type
	Function bool
	// Line is the definition as it appears in the compact form (and so in
	// errors): name#id params = Result.
	Line string

	byName   map[string]int
	required int // fields that are neither conditional nor flags
}

// Param returns the index of the named field, or -1.
func (c *Combinator) Param(name string) int {
	if i, ok := c.byName[name]; ok {
		return i
	}
	return -1
}

// Schema is one API layer's constructors and functions.
type Schema struct {
	Layer int
	// Source says where the schema was read from (module@version/path).
	Source string

	Constructors []*Combinator
	Functions    []*Combinator

	ctorByID   map[uint32]*Combinator
	funcByID   map[uint32]*Combinator
	ctorByName map[string]*Combinator
	funcByName map[string]*Combinator
	byType     map[string][]*Combinator
}

// Constructor returns the constructor with this id.
func (s *Schema) Constructor(id uint32) *Combinator { return s.ctorByID[id] }

// Function returns the function with this id.
func (s *Schema) Function(id uint32) *Combinator { return s.funcByID[id] }

// ConstructorNamed returns the constructor with this name.
func (s *Schema) ConstructorNamed(name string) *Combinator { return s.ctorByName[name] }

// FunctionNamed returns the function with this name.
func (s *Schema) FunctionNamed(name string) *Combinator { return s.funcByName[name] }

// OfType returns the constructors of a boxed type, in declaration order.
func (s *Schema) OfType(name string) []*Combinator { return s.byType[name] }

// newSchema indexes combinators. Duplicate ids or names are an error: a
// layer's schema defines each once.
func newSchema(layer int, source string, combs []*Combinator) (*Schema, error) {
	s := &Schema{
		Layer: layer, Source: source,
		ctorByID: map[uint32]*Combinator{}, funcByID: map[uint32]*Combinator{},
		ctorByName: map[string]*Combinator{}, funcByName: map[string]*Combinator{},
		byType: map[string][]*Combinator{},
	}
	for _, c := range combs {
		byID, byName := s.ctorByID, s.ctorByName
		if c.Function {
			byID, byName = s.funcByID, s.funcByName
		}
		if prev := byID[c.ID]; prev != nil {
			return nil, fmt.Errorf("id #%08x defined twice: %q and %q", c.ID, prev.Line, c.Line)
		}
		if prev := byName[c.Name]; prev != nil {
			return nil, fmt.Errorf("%s defined twice: %q and %q", c.Name, prev.Line, c.Line)
		}
		byID[c.ID], byName[c.Name] = c, c
		if c.Function {
			s.Functions = append(s.Functions, c)
		} else {
			s.Constructors = append(s.Constructors, c)
			s.byType[c.Result.Name] = append(s.byType[c.Result.Name], c)
		}
	}
	return s, nil
}

// index fills the lookup tables of a parsed combinator.
func (c *Combinator) index() {
	c.byName = make(map[string]int, len(c.Params))
	c.required = 0
	for i := range c.Params {
		c.byName[c.Params[i].Name] = i
		if !c.Params[i].Conditional() && c.Params[i].Type.Kind != KindFlags {
			c.required++
		}
	}
}

// lowerFirst turns a type name into the name its "Empty" constructor
// would have: User -> user, messages.Messages -> messages.messages.
func lowerFirst(typeName string) string {
	ns, name := "", typeName
	if i := strings.LastIndexByte(typeName, '.'); i >= 0 {
		ns, name = typeName[:i+1], typeName[i+1:]
	}
	if name == "" {
		return typeName
	}
	return ns + strings.ToLower(name[:1]) + name[1:]
}
