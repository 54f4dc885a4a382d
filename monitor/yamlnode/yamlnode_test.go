package yamlnode

import (
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// sample is a small schema exercising every reader.
type sample struct {
	Name    string
	Count   int
	Ratio   float64
	On      bool
	Every   string
	Tags    []string
	Servers []string
}

func decode(d *Decoder, data []byte) (sample, error) {
	var s sample
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return s, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return s, nil
	}
	m := d.Mapping(doc.Content[0], "", "name", "count", "ratio", "on", "every", "tags", "servers")
	if f, ok := m["name"]; ok {
		s.Name, _ = d.String(f)
	}
	if f, ok := m["count"]; ok {
		s.Count, _ = d.Int(f)
	}
	if f, ok := m["ratio"]; ok {
		s.Ratio, _ = d.Float(f)
	}
	if f, ok := m["on"]; ok {
		s.On, _ = d.Bool(f)
	}
	if f, ok := m["every"]; ok {
		if x, ok := d.Duration(f); ok {
			s.Every = x.String()
		}
	}
	if f, ok := m["tags"]; ok {
		s.Tags, _ = d.Strings(f)
	}
	if f, ok := m["servers"]; ok {
		for _, item := range mustList(d, f) {
			sm := d.Mapping(item.Value, item.Path, "host")
			if h, ok := sm["host"]; ok {
				v, _ := d.String(h)
				s.Servers = append(s.Servers, v)
			}
		}
	}
	if len(d.Problems) > 0 {
		return s, problemsError(d.Problems)
	}
	return s, nil
}

func mustList(d *Decoder, f Field) []Field {
	items, _ := d.List(f)
	return items
}

type problemsError []Problem

func (e problemsError) Error() string {
	var b strings.Builder
	for _, p := range e {
		b.WriteString(p.Path + ":" + strconv.Itoa(p.Line) + ": " + p.Msg + "\n")
	}
	return b.String()
}

func TestDecodeGood(t *testing.T) {
	d := &Decoder{Lines: map[string]int{}}
	s, err := decode(d, []byte("name: a\ncount: 1_000\nratio: 0.5\non: true\nevery: 1d12h\ntags: [x, y]\nservers:\n  - host: h1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "a" || s.Count != 1000 || s.Ratio != 0.5 || !s.On || s.Every != "1d12h" || len(s.Tags) != 2 || s.Servers[0] != "h1" {
		t.Fatalf("decoded %+v", s)
	}
	if d.Lines["servers[0].host"] != 8 || d.Lines["tags"] != 6 {
		t.Fatalf("lines %v", d.Lines)
	}
}

func TestDecodeProblems(t *testing.T) {
	cases := []struct {
		name, yaml, want string
		dec              Decoder
	}{
		{"unknown with suggestion", "nmae: a\n", "nmae:1: unknown key (did you mean name?); known keys here: name,", Decoder{}},
		{"unknown far", "zzzzzz: a\n", "zzzzzz:1: unknown key; known keys here:", Decoder{}},
		{"twice", "name: a\nname: b\n", "name:2: appears twice (first on line 1)", Decoder{}},
		{"merge key", "<<: {name: a}\n", "<<:1: YAML merge keys (<<) are not supported", Decoder{}},
		{"not a mapping", "- a\n", ":1: expected key: value pairs, got a list", Decoder{}},
		{"key not a name", "[a]: b\n", ":1: keys must be plain names, got a list", Decoder{}},
		{"int", "count: many\n", `count:1: expected an integer, got "many"`, Decoder{}},
		{"int list", "count: [1]\n", "count:1: expected an integer, got a list", Decoder{}},
		{"float", "ratio: half\n", `ratio:1: expected a number, got "half"`, Decoder{}},
		{"bool", "on: yes\n", `on:1: expected true or false, got "yes"`, Decoder{}},
		{"duration", "every: 3 days\n", `every:1: "3 days" is not a duration`, Decoder{}},
		{"empty duration", "every: ''\n", `every:1: "" is not a duration`, Decoder{}},
		{"list", "tags: a\n", "tags:1: expected a list (e.g. [a, b]), got a single value", Decoder{}},
		{"list shows value", "tags: a\n", `tags:1: expected a list (e.g. [a, b]), got "a"`, Decoder{ShowValues: true}},
		{"list item", "tags: [a, [b]]\n", "tags[1]:1: expected a string, got a list", Decoder{}},
		{"nested", "servers:\n  - host: a\n    port: 1\n", "servers[0].port:3: unknown key", Decoder{}},
		{"alias refused", "name: &x a\n", "name:1: YAML anchors and aliases", Decoder{}},
		{"refused key", "name: a\nsecret: s\n", "secret:2: put it elsewhere", Decoder{Refused: map[string]string{"secret": "put it elsewhere"}}},
		{"hidden key", "'+447700900123': 1\n", "(key not shown):1: unknown key", Decoder{HideKey: func(k string) bool { return strings.HasPrefix(k, "+") }}},
		{"quote hides", "count: 'x+447700900123'\n", "count:1: expected an integer, got (value not shown)", Decoder{Quote: func(string) string { return "(value not shown)" }}},
		{"wording", "count: x\n", `count:1: must be a whole number, got "x"`, Decoder{Words: Wording{NotInteger: func(v string) string { return "must be a whole number, got " + v }}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decode(&c.dec, []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestFollowAliasesAndNulls(t *testing.T) {
	d := &Decoder{FollowAliases: true, NullIsAbsent: true}
	s, err := decode(d, []byte("name: &n a\ntags: [*n]\ncount:\nservers: ~\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "a" || len(s.Tags) != 1 || s.Tags[0] != "a" || s.Count != 0 {
		t.Fatalf("decoded %+v", s)
	}
}

func TestMax(t *testing.T) {
	d := &Decoder{Max: 2}
	_, err := decode(d, []byte("a: 1\nb: 2\nc: 3\n"))
	if err == nil || len(d.Problems) != 2 {
		t.Fatalf("problems %v", d.Problems)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"interval", "jitter", "floor"}
	for key, want := range map[string]string{"intervall": "interval", "Jitter": "jitter", "flor": "floor", "ceiling": ""} {
		if got := Suggest(key, known); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

// FuzzDecode feeds arbitrary bytes through the YAML parser and a small
// schema: decoding must never panic, whatever the tree.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"name: a\ncount: 3\nratio: 0.5\non: true\nevery: 1d\ntags: [a, b]\nservers: [{host: h}]\n",
		"name: &a x\ntags: [*a, *a]\n<<: {count: 1}\n",
		"- a\n- b\n",
		"servers:\n  - host: [1, 2]\n    other: ~\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range []*Decoder{{}, {FollowAliases: true, NullIsAbsent: true, ShowValues: true, Lines: map[string]int{}}} {
			_, err := decode(d, data)
			if err == nil && len(d.Problems) > 0 {
				t.Fatal("problems without an error")
			}
		}
	})
}

func TestSyntax(t *testing.T) {
	var n yaml.Node
	err := yaml.Unmarshal([]byte("a: 1\nb: [unclosed\n"), &n)
	if err == nil {
		t.Fatal("no syntax error")
	}
	p := Syntax(err)
	if p.Line == 0 || !strings.HasPrefix(p.Msg, "YAML syntax: ") || strings.Contains(p.Msg, "yaml:") {
		t.Fatalf("Syntax = %+v", p)
	}
}
