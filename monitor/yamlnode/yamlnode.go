package yamlnode

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tgsafety/tgsafety/monitor/limits"
)

// Problem is one thing wrong in a YAML document, with where it is, so
// that callers can turn it into their own error type.
type Problem struct {
	// Path is the field in YAML path form (steps[2].send.count); empty
	// for the document as a whole.
	Path string
	// Line and Column locate the problem; 0 when unknown.
	Line, Column int
	// Msg says what is wrong.
	Msg string
}

// Field is one value with the key that named it and its path, so that a
// problem can point at the key (a misplaced field) or at the value (a
// bad value). Key is nil for list items.
type Field struct {
	Key, Value *yaml.Node
	Path       string
}

// Wording is the text of the problems a Decoder finds by itself. Callers
// set it to keep the messages their users know; a nil entry uses the
// default, shown in its comment.
type Wording struct {
	// NotMapping: "expected key: value pairs, got <got>".
	NotMapping func(got string) string
	// KeyNotName: "keys must be plain names, got <got>".
	KeyNotName func(got string) string
	// Twice: "appears twice (first on line <first>)".
	Twice func(first int) string
	// Unknown: "unknown key (did you mean <suggestion>?); known keys
	// here: <known>", or a word on merge keys (<<). suggestion may be "".
	Unknown func(key, suggestion string, known []string) string
	// NotScalar: "expected <want>, got <got>".
	NotScalar func(want, got string) string
	// NotList: "expected a list (e.g. [a, b]), got <got>".
	NotList func(got string) string
	// NotInteger, NotNumber, NotBool: "expected an integer, got <v>" and
	// so on, v quoted by Decoder.Quote.
	NotInteger, NotNumber, NotBool func(v string) string
	// NotDuration: "<v> is not a duration (use 90s, 15m, 6h, 3d or
	// 1d12h)"; err is the parser's reason.
	NotDuration func(v string, err error) string
}

// Decoder walks nodes and collects Problems. The zero value works:
// aliases are refused, nulls are values, and messages use the default
// Wording. Set the fields before the first call.
type Decoder struct {
	// Problems found so far, in the order found.
	Problems []Problem
	// Max stops collecting after this many problems (0: no limit), so a
	// badly broken file gives a readable list.
	Max int
	// Lines, when not nil, receives the line of every accepted key and
	// list item by path, for problems found later (validation).
	Lines map[string]int
	// FollowAliases resolves *name to its anchor; otherwise anchors and
	// aliases are refused, since they make line numbers point elsewhere
	// and can expand without bound.
	FollowAliases bool
	// NullIsAbsent treats a null mapping or value (key: with nothing,
	// ~, null) as if it were not given.
	NullIsAbsent bool
	// ShowValues names a misplaced scalar by its quoted value; otherwise
	// it is "a single value", for documents that may hold secrets.
	ShowValues bool
	// Quote quotes a value for a message; default strconv.Quote. Set it
	// to keep secrets out of messages.
	Quote func(string) string
	// HideKey, when it says so, replaces an unexpected key in paths by
	// "(key not shown)" (a phone number pasted as a key).
	HideKey func(key string) bool
	// Refused are keys, by full path, that are known but not accepted,
	// with the reason (an inline secret); checked before unknown keys.
	Refused map[string]string
	// Words is the wording of the problems the Decoder finds.
	Words Wording
}

// Errorf records a problem at n (nil: no line) unless Max is reached;
// callers use it for their own checks so that all problems share order
// and limit.
func (d *Decoder) Errorf(n *yaml.Node, path, format string, args ...any) {
	p := Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.add(p)
}

// ErrorfAt records a problem at a line known without its node (a check
// across fields made after decoding).
func (d *Decoder) ErrorfAt(line int, path, format string, args ...any) {
	d.add(Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (d *Decoder) add(p Problem) {
	if d.Max > 0 && len(d.Problems) >= d.Max {
		return
	}
	d.Problems = append(d.Problems, p)
}

func (d *Decoder) quote(v string) string {
	if d.Quote != nil {
		return d.Quote(v)
	}
	return strconv.Quote(v)
}

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Syntax turns a yaml.Unmarshal error into a Problem with its line when
// the parser gave one, so that syntax errors read like the others:
// "YAML syntax: did not find expected key".
func Syntax(err error) Problem {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Msg: "YAML syntax: " + m[2]}
	}
	return Problem{Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

// Join appends a mapping key to a path: Join("http", "listen") is
// "http.listen", Join("", "log") is "log".
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index appends a list index to a path: Index("tags", 2) is "tags[2]".
func Index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// Kind names what n is for a message ("a list", "a mapping", ...); a
// scalar is its quoted value only with ShowValues.
func (d *Decoder) Kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if d.ShowValues {
			return d.quote(n.Value)
		}
		return "a single value"
	}
	return "something else"
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// Null reports whether n (through aliases) is a YAML null.
func Null(n *yaml.Node) bool {
	n = deref(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Resolve returns the node to read for n: its anchor's when aliases are
// followed; otherwise it refuses anchors and aliases (a problem, false).
func (d *Decoder) Resolve(n *yaml.Node, path string) (*yaml.Node, bool) {
	if d.FollowAliases {
		return deref(n), true
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.Errorf(n, path, "YAML anchors and aliases (&name, *name) are not supported; write the value out")
		return n, false
	}
	return n, true
}

// Entries returns a mapping's entries in order, reporting what is not a
// mapping, keys that are not plain names and keys given twice. It is for
// mappings whose keys are data (signal kinds, method names); Mapping is
// for fixed keys.
func (d *Decoder) Entries(n *yaml.Node, path string) ([]Field, bool) {
	n, ok := d.Resolve(n, path)
	if !ok {
		return nil, false
	}
	if d.NullIsAbsent && Null(n) {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, path, "%s", word(d.Words.NotMapping, "expected key: value pairs, got %s")(d.Kind(n)))
		return nil, false
	}
	out := make([]Field, 0, len(n.Content)/2)
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if d.FollowAliases {
			k = deref(k)
		}
		if k.Kind != yaml.ScalarNode {
			d.Errorf(k, path, "%s", word(d.Words.KeyNotName, "keys must be plain names, got %s")(d.Kind(k)))
			continue
		}
		p := Join(path, k.Value)
		if d.HideKey != nil && d.HideKey(k.Value) {
			p = Join(path, "(key not shown)")
		}
		if l, dup := first[k.Value]; dup {
			msg := fmt.Sprintf("appears twice (first on line %d)", l)
			if d.Words.Twice != nil {
				msg = d.Words.Twice(l)
			}
			d.Errorf(k, p, "%s", msg)
			continue
		}
		first[k.Value] = k.Line
		out = append(out, Field{Key: k, Value: v, Path: p})
	}
	return out, true
}

// Mapping returns a mapping's fields by key, reporting every key not in
// known (with the nearest known key when one is close), refused keys,
// and what Entries reports. It returns nil when n is not a mapping (or
// is null with NullIsAbsent); with NullIsAbsent null values are left out.
func (d *Decoder) Mapping(n *yaml.Node, path string, known ...string) map[string]Field {
	entries, ok := d.Entries(n, path)
	if !ok {
		return nil
	}
	out := make(map[string]Field, len(entries))
	for _, f := range entries {
		key := f.Key.Value
		if why, ok := d.Refused[Join(path, key)]; ok {
			d.Errorf(f.Key, f.Path, "%s", why)
			continue
		}
		if !slices.Contains(known, key) {
			d.Errorf(f.Key, f.Path, "%s", d.unknown(key, Suggest(key, known), known))
			continue
		}
		if d.Lines != nil {
			d.Lines[f.Path] = f.Key.Line
		}
		if d.NullIsAbsent && Null(f.Value) {
			continue
		}
		out[key] = f
	}
	return out
}

func (d *Decoder) unknown(key, suggestion string, known []string) string {
	if d.Words.Unknown != nil {
		return d.Words.Unknown(key, suggestion, known)
	}
	msg := "unknown key"
	if key == "<<" {
		msg = "YAML merge keys (<<) are not supported"
	} else if suggestion != "" {
		msg += " (did you mean " + suggestion + "?)"
	}
	return msg + "; known keys here: " + strings.Join(known, ", ")
}

// Suggest returns the known key closest to an unknown one (at most two
// edits away, case aside), or "": a typo should cost one glance.
func Suggest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// word returns f, or a formatter for the default wording.
func word(f func(string) string, format string) func(string) string {
	if f != nil {
		return f
	}
	return func(s string) string { return fmt.Sprintf(format, s) }
}

// scalar returns the resolved scalar node of f, reporting anything else
// as not being want ("an integer").
func (d *Decoder) scalar(f Field, want string) (*yaml.Node, bool) {
	n, ok := d.Resolve(f.Value, f.Path)
	if !ok {
		return nil, false
	}
	if n.Kind != yaml.ScalarNode {
		msg := fmt.Sprintf("expected %s, got %s", want, d.Kind(n))
		if d.Words.NotScalar != nil {
			msg = d.Words.NotScalar(want, d.Kind(n))
		}
		d.Errorf(n, f.Path, "%s", msg)
		return nil, false
	}
	return n, true
}

// Scalar returns f's single value as written; want names what was
// expected ("a date") in the problem when f is a list or a mapping.
func (d *Decoder) Scalar(f Field, want string) (string, bool) {
	n, ok := d.scalar(f, want)
	if !ok {
		return "", false
	}
	return n.Value, true
}

// String reads a string.
func (d *Decoder) String(f Field) (string, bool) {
	return d.Scalar(f, "a string")
}

// Int reads an integer; underscores group digits (10_000) as YAML allows.
func (d *Decoder) Int(f Field) (int, bool) {
	return convert(d, f, "an integer", func(v string) (int, error) {
		return strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	}, word(d.Words.NotInteger, "expected an integer, got %s"))
}

// Float reads a number.
func (d *Decoder) Float(f Field) (float64, bool) {
	return convert(d, f, "a number", func(v string) (float64, error) {
		return strconv.ParseFloat(v, 64)
	}, word(d.Words.NotNumber, "expected a number, got %s"))
}

// Bool reads true or false, and nothing else: yes, on and 1 are
// ambiguous across YAML versions.
func (d *Decoder) Bool(f Field) (bool, bool) {
	return convert(d, f, "true or false", func(v string) (bool, error) {
		if v != "true" && v != "false" {
			return false, strconv.ErrSyntax
		}
		return v == "true", nil
	}, word(d.Words.NotBool, "expected true or false, got %s"))
}

// convert reads f's single value with conv, reporting a value conv
// refuses with bad (given the quoted value).
func convert[T any](d *Decoder, f Field, want string, conv func(string) (T, error), bad func(string) string) (T, bool) {
	var zero T
	n, ok := d.scalar(f, want)
	if !ok {
		return zero, false
	}
	x, err := conv(n.Value)
	if err != nil {
		d.Errorf(n, f.Path, "%s", bad(d.quote(n.Value)))
		return zero, false
	}
	return x, true
}

// Duration reads a duration as limits.ParseDuration does (90s, 15m, 6h,
// 3d, 1d12h); an empty value is not one.
func (d *Decoder) Duration(f Field) (limits.Duration, bool) {
	n, ok := d.scalar(f, "a duration")
	if !ok {
		return 0, false
	}
	x, err := limits.ParseDuration(n.Value)
	if err == nil && strings.TrimSpace(n.Value) == "" {
		err = fmt.Errorf("invalid duration %q", n.Value)
	}
	if err != nil {
		msg := d.quote(n.Value) + " is not a duration (use 90s, 15m, 6h, 3d or 1d12h)"
		if d.Words.NotDuration != nil {
			msg = d.Words.NotDuration(n.Value, err)
		}
		d.Errorf(n, f.Path, "%s", msg)
		return 0, false
	}
	return x, true
}

// List returns a list's items as fields with their index paths.
func (d *Decoder) List(f Field) ([]Field, bool) {
	n, ok := d.Resolve(f.Value, f.Path)
	if !ok {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, f.Path, "%s", word(d.Words.NotList, "expected a list (e.g. [a, b]), got %s")(d.Kind(n)))
		return nil, false
	}
	out := make([]Field, len(n.Content))
	for i, item := range n.Content {
		out[i] = Field{Value: item, Path: Index(f.Path, i)}
		if d.Lines != nil {
			d.Lines[out[i].Path] = item.Line
		}
	}
	return out, true
}

// Strings reads a list of strings. The result keeps the list's indexes
// ("" for an item that is not a string) and ok is false if any item, or
// the list itself, was reported.
func (d *Decoder) Strings(f Field) ([]string, bool) {
	items, ok := d.List(f)
	if !ok {
		return nil, false
	}
	out := make([]string, len(items))
	for i, item := range items {
		v, good := d.String(item)
		out[i], ok = v, ok && good
	}
	return out, ok
}
