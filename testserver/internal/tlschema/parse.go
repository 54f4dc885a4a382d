package tlschema

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// maxDefinition bounds one definition's text: the longest in Telegram's
// schema is under 2 KB.
const maxDefinition = 16 << 10

// builtins are declared in schema files ("int ? = Int;", "bytes = Bytes;",
// "vector {t:Type} # [ t ] = Vector t;") but handled by the codec itself.
var builtins = map[string]Kind{
	"int": KindInt, "long": KindLong, "double": KindDouble, "string": KindString,
	"bytes": KindBytes, "int128": KindInt128, "int256": KindInt256, "true": KindTrue,
}

// ParseError is a problem in a schema file, with the line it starts on.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Parse reads a TL schema file (Telegram's api.tl dialect as gotd ships
// it in _schema/telegram.tl): definitions end with ';', "---functions---"
// and "---types---" switch sections, "//" starts a comment, and a
// "// LAYER N" comment gives the layer. Builtin declarations are skipped.
func Parse(text, source string) (*Schema, error) {
	combs, layer, err := parseDefinitions(text)
	if err != nil {
		return nil, err
	}
	s, err := newSchema(layer, source, combs)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func parseDefinitions(text string) ([]*Combinator, int, error) {
	var (
		combs     []*Combinator
		layer     int
		functions bool
		def       strings.Builder
		defLine   int
	)
	for n, line := range strings.Split(text, "\n") {
		lineNo := n + 1
		if i := strings.Index(line, "//"); i >= 0 {
			comment := strings.TrimSpace(line[i+2:])
			if rest, ok := strings.CutPrefix(comment, "LAYER "); ok {
				l, err := strconv.Atoi(strings.TrimSpace(rest))
				if err != nil || l <= 0 || l > 1<<16 {
					return nil, 0, &ParseError{lineNo, fmt.Sprintf("bad layer comment %q", comment)}
				}
				layer = l
			}
			line = line[:i]
		}
		for {
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if def.Len() == 0 && strings.HasPrefix(line, "---") {
				switch line {
				case "---functions---":
					functions = true
				case "---types---":
					functions = false
				default:
					return nil, 0, &ParseError{lineNo, fmt.Sprintf("unknown section %q", line)}
				}
				line = ""
				continue
			}
			if def.Len() == 0 {
				defLine = lineNo
			}
			end := strings.IndexByte(line, ';')
			if end < 0 {
				def.WriteString(line)
				def.WriteByte(' ')
				if def.Len() > maxDefinition {
					return nil, 0, &ParseError{defLine, "definition longer than 16 KB (a missing ';'?)"}
				}
				break
			}
			def.WriteString(line[:end])
			line = line[end+1:]
			c, err := parseCombinator(def.String(), functions)
			def.Reset()
			if err != nil {
				return nil, 0, &ParseError{defLine, err.Error()}
			}
			if c != nil {
				combs = append(combs, c)
			}
		}
	}
	if strings.TrimSpace(def.String()) != "" {
		return nil, 0, &ParseError{defLine, "definition without a closing ';'"}
	}
	return combs, layer, nil
}

// parseCombinator parses one definition without its ';'. It returns nil
// for builtin declarations.
func parseCombinator(def string, function bool) (*Combinator, error) {
	fields := strings.Fields(def)
	if len(fields) < 3 {
		return nil, fmt.Errorf("definition %q: want name#id [params] = Type", def)
	}
	name, idText, hasID := strings.Cut(fields[0], "#")
	if _, ok := builtins[name]; ok && name != "true" || name == "vector" {
		return nil, nil
	}
	eq := -1
	for i, f := range fields {
		if f == "=" {
			eq = i
			break
		}
	}
	if eq < 0 || eq == len(fields)-1 {
		return nil, fmt.Errorf("definition %q: no '= Type'", def)
	}
	if eq != len(fields)-2 {
		return nil, fmt.Errorf("definition %q: result type %q is not one term", def, strings.Join(fields[eq+1:], " "))
	}
	for _, f := range fields[1:eq] {
		if f == "?" {
			return nil, nil // a builtin such as "int ? = Int"
		}
	}
	if err := checkName(name, true); err != nil {
		return nil, fmt.Errorf("definition %q: %v", def, err)
	}
	if !hasID || idText == "" {
		return nil, fmt.Errorf("definition %q: no #id", def)
	}
	id, err := strconv.ParseUint(idText, 16, 32)
	if err != nil || len(idText) > 8 {
		return nil, fmt.Errorf("definition %q: bad id %q", def, idText)
	}
	c := &Combinator{ID: uint32(id), Name: name, Function: function}
	generics := map[string]bool{}
	flagFields := map[string]int{}
	for _, f := range fields[1:eq] {
		if strings.HasPrefix(f, "{") {
			g, ok := strings.CutSuffix(strings.TrimPrefix(f, "{"), ":Type}")
			if !ok || checkName(g, false) != nil {
				return nil, fmt.Errorf("definition %q: bad type parameter %q", def, f)
			}
			if len(c.Params) > 0 {
				// A field before it named the same type as an ordinary
				// one: "A:X {X:Type}" would mean one thing here and
				// another once written in canonical order (found by
				// FuzzParse).
				return nil, fmt.Errorf("definition %q: type parameter %q after a field; type parameters come first", def, f)
			}
			generics[g] = true
			continue
		}
		pname, ptype, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("definition %q: field %q is not name:type", def, f)
		}
		if err := checkName(pname, false); err != nil {
			return nil, fmt.Errorf("definition %q: field %q: %v", def, f, err)
		}
		if c.Param(pname) >= 0 {
			return nil, fmt.Errorf("definition %q: field %q twice", def, pname)
		}
		p := Param{Name: pname, Flags: -1}
		if cond, rest, ok := strings.Cut(ptype, "?"); ok {
			field, bitText, ok := strings.Cut(cond, ".")
			bit, err := strconv.Atoi(bitText)
			idx, known := flagFields[field]
			if !ok || err != nil || bit < 0 || bit > 31 || !known {
				return nil, fmt.Errorf("definition %q: field %q: bad condition %q", def, pname, cond)
			}
			p.Flags, p.Bit, ptype = idx, bit, rest
		}
		t, err := parseType(ptype, generics)
		if err != nil {
			return nil, fmt.Errorf("definition %q: field %q: %v", def, pname, err)
		}
		switch {
		case t.Kind == KindFlags && p.Conditional():
			return nil, fmt.Errorf("definition %q: field %q: a # field cannot be conditional", def, pname)
		case t.Kind == KindTrue && !p.Conditional():
			return nil, fmt.Errorf("definition %q: field %q: true is only a flag", def, pname)
		case t.Kind == KindGeneric:
			return nil, fmt.Errorf("definition %q: field %q: a bare type parameter; want !%s", def, pname, t.Name)
		}
		p.Type = t
		if t.Kind == KindFlags {
			flagFields[pname] = len(c.Params)
		}
		c.Params = append(c.Params, p)
		c.index()
	}
	res, err := parseType(fields[eq+1], generics)
	if err != nil {
		return nil, fmt.Errorf("definition %q: result: %v", def, err)
	}
	switch {
	case res.Kind == KindQuery || res.Kind == KindFlags || res.Kind == KindTrue:
		return nil, fmt.Errorf("definition %q: result type %s", def, res)
	case !function && res.Kind != KindBoxed:
		return nil, fmt.Errorf("definition %q: a constructor's type must be a boxed type name, not %s", def, res)
	}
	c.Result = res
	c.index()
	c.Line = c.format(generics)
	return c, nil
}

// format prints the combinator canonically: the compact form's line.
func (c *Combinator) format(generics map[string]bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s#%x", c.Name, c.ID)
	for _, g := range sortedKeys(generics) {
		fmt.Fprintf(&b, " {%s:Type}", g)
	}
	for _, p := range c.Params {
		b.WriteString(" " + p.Name + ":")
		if p.Conditional() {
			fmt.Fprintf(&b, "%s.%d?", c.Params[p.Flags].Name, p.Bit)
		}
		b.WriteString(p.Type.String())
	}
	b.WriteString(" = " + c.Result.String())
	return b.String()
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

// parseType parses a type term.
func parseType(s string, generics map[string]bool) (*Type, error) {
	if s == "#" {
		return &Type{Kind: KindFlags}, nil
	}
	if k, ok := builtins[s]; ok {
		return &Type{Kind: k}, nil
	}
	if rest, ok := strings.CutPrefix(s, "!"); ok {
		if !generics[rest] {
			return nil, fmt.Errorf("!%s names no type parameter", rest)
		}
		return &Type{Kind: KindQuery, Name: rest}, nil
	}
	if generics[s] {
		return &Type{Kind: KindGeneric, Name: s}, nil
	}
	if rest, ok := strings.CutPrefix(s, "%"); ok {
		if err := checkName(rest, true); err != nil {
			return nil, err
		}
		return &Type{Kind: KindBare, Name: rest}, nil
	}
	for _, v := range []struct {
		prefix string
		kind   Kind
	}{{"Vector<", KindVector}, {"vector<", KindBareVector}} {
		if inner, ok := strings.CutPrefix(s, v.prefix); ok {
			inner, ok = strings.CutSuffix(inner, ">")
			if !ok {
				return nil, fmt.Errorf("type %q: no closing '>'", s)
			}
			elem, err := parseType(inner, generics)
			if err != nil {
				return nil, err
			}
			switch elem.Kind {
			case KindTrue, KindFlags, KindQuery, KindGeneric:
				return nil, fmt.Errorf("type %q: no vector of %s", s, elem)
			}
			return &Type{Kind: v.kind, Elem: elem}, nil
		}
	}
	if err := checkName(s, true); err != nil {
		return nil, fmt.Errorf("type %q: %v", s, err)
	}
	base := s[strings.LastIndexByte(s, '.')+1:]
	if base[0] >= 'a' && base[0] <= 'z' {
		return &Type{Kind: KindBare, Name: s}, nil
	}
	return &Type{Kind: KindBoxed, Name: s}, nil
}

// checkName accepts identifiers, optionally with one namespace
// (messages.sendMessage).
func checkName(s string, namespaced bool) error {
	parts := strings.Split(s, ".")
	if len(parts) > 2 || len(parts) == 2 && !namespaced {
		return fmt.Errorf("bad name %q", s)
	}
	for _, p := range parts {
		if p == "" {
			return fmt.Errorf("bad name %q", s)
		}
		for i, r := range p {
			letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
			if !letter && (i == 0 || r != '_' && (r < '0' || r > '9')) {
				return fmt.Errorf("bad name %q", s)
			}
		}
	}
	return nil
}
