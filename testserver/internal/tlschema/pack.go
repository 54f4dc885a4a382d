package tlschema

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The compact form holds many layers in one text, gzip-compressed:
// Telegram changes a few dozen definitions per layer, so each distinct
// definition is stored once and each layer lists the ones it has.
//
//	tlschema 1
//	T <definition>          a constructor, canonical form (Combinator.Line)
//	F <definition>          a function
//	L <layer> <source> <ranges>
//
// Definitions are numbered from 0 in order; ranges are comma-separated
// "a-b" or "a" of those numbers; source is where the layer's schema was
// read (module@version/path), with no spaces.
const packHeader = "tlschema 1"

// maxPacked bounds what Unpack inflates.
const maxPacked = 64 << 20

// Pack writes schemas in the compact form. Each layer may appear once.
func Pack(w io.Writer, schemas []*Schema) error {
	type key struct {
		fn   bool
		line string
	}
	index := map[key]int{}
	var defs []key
	var body strings.Builder
	seen := map[int]bool{}
	var layerLines []string
	for _, s := range schemas {
		if seen[s.Layer] {
			return fmt.Errorf("tlschema: layer %d packed twice", s.Layer)
		}
		seen[s.Layer] = true
		if s.Layer <= 0 || strings.ContainsAny(s.Source, " \n") || s.Source == "" {
			return fmt.Errorf("tlschema: layer %d: need a layer number and a source without spaces (%q)", s.Layer, s.Source)
		}
		if len(s.Constructors)+len(s.Functions) == 0 {
			return fmt.Errorf("tlschema: layer %d has no definitions", s.Layer)
		}
		var nums []int
		for _, list := range [][]*Combinator{s.Constructors, s.Functions} {
			for _, c := range list {
				k := key{c.Function, c.Line}
				n, ok := index[k]
				if !ok {
					n = len(defs)
					index[k] = n
					defs = append(defs, k)
				}
				nums = append(nums, n)
			}
		}
		slices.Sort(nums)
		layerLines = append(layerLines, fmt.Sprintf("L %d %s %s", s.Layer, s.Source, ranges(nums)))
	}
	body.WriteString(packHeader + "\n")
	for _, d := range defs {
		kind := "T"
		if d.fn {
			kind = "F"
		}
		body.WriteString(kind + " " + d.line + "\n")
	}
	for _, l := range layerLines {
		body.WriteString(l + "\n")
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(zw, body.String()); err != nil {
		return err
	}
	return zw.Close()
}

func ranges(nums []int) string {
	var b strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if i == j {
			b.WriteString(strconv.Itoa(nums[i]))
		} else {
			fmt.Fprintf(&b, "%d-%d", nums[i], nums[j])
		}
		i = j + 1
	}
	return b.String()
}

// Set is a packed collection of layers. Schemas are built on first use
// and kept.
type Set struct {
	defs   []string
	fns    []bool
	layers map[int]packedLayer

	mu     sync.Mutex
	parsed []*Combinator
	built  map[int]*Schema
}

type packedLayer struct {
	source string
	nums   []int
}

// Unpack reads the compact form. It checks the structure; definitions
// are parsed when a layer that uses them is first asked for.
func Unpack(data []byte) (*Set, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("tlschema: packed set: %w", err)
	}
	text, err := io.ReadAll(io.LimitReader(zr, maxPacked+1))
	if err != nil {
		return nil, fmt.Errorf("tlschema: packed set: %w", err)
	}
	if len(text) > maxPacked {
		return nil, fmt.Errorf("tlschema: packed set inflates past %d bytes", maxPacked)
	}
	return unpackText(string(text))
}

func unpackText(text string) (*Set, error) {
	set := &Set{layers: map[int]packedLayer{}, built: map[int]*Schema{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		bad := func(format string, args ...any) error {
			return fmt.Errorf("tlschema: packed set line %d: %s", line, fmt.Sprintf(format, args...))
		}
		if line == 1 {
			if t != packHeader {
				return nil, bad("header %q, want %q", t, packHeader)
			}
			continue
		}
		kind, rest, _ := strings.Cut(t, " ")
		switch kind {
		case "T", "F":
			if len(set.layers) > 0 {
				return nil, bad("definition after the layers")
			}
			set.defs = append(set.defs, rest)
			set.fns = append(set.fns, kind == "F")
		case "L":
			f := strings.Fields(rest)
			if len(f) != 3 {
				return nil, bad("want L layer source ranges")
			}
			layer, err := strconv.Atoi(f[0])
			if err != nil || layer <= 0 {
				return nil, bad("layer %q", f[0])
			}
			if _, dup := set.layers[layer]; dup {
				return nil, bad("layer %d twice", layer)
			}
			nums, err := parseRanges(f[2], len(set.defs))
			if err != nil {
				return nil, bad("layer %d: %v", layer, err)
			}
			set.layers[layer] = packedLayer{source: f[1], nums: nums}
		default:
			return nil, bad("unknown line kind %q", kind)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tlschema: packed set: %w", err)
	}
	if line == 0 {
		return nil, fmt.Errorf("tlschema: packed set is empty")
	}
	set.parsed = make([]*Combinator, len(set.defs))
	return set, nil
}

func parseRanges(s string, n int) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(a)
		if err != nil {
			return nil, fmt.Errorf("range %q", part)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(b); err != nil {
				return nil, fmt.Errorf("range %q", part)
			}
		}
		if lo < 0 || hi < lo || hi >= n || (len(out) > 0 && lo <= out[len(out)-1]) {
			return nil, fmt.Errorf("range %q out of order or past %d definitions", part, n)
		}
		for i := lo; i <= hi; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

// Layers returns the layers in the set, ascending.
func (s *Set) Layers() []int {
	out := make([]int, 0, len(s.layers))
	for l := range s.layers {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// Source returns where a layer's schema was read from.
func (s *Set) Source(layer int) string { return s.layers[layer].source }

// Schema returns one layer's schema, or an error when the set has no such
// layer or its definitions do not parse.
func (s *Set) Schema(layer int) (*Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sc := s.built[layer]; sc != nil {
		return sc, nil
	}
	pl, ok := s.layers[layer]
	if !ok {
		return nil, fmt.Errorf("tlschema: no schema for layer %d", layer)
	}
	combs := make([]*Combinator, 0, len(pl.nums))
	for _, n := range pl.nums {
		c := s.parsed[n]
		if c == nil {
			var err error
			c, err = parseCombinator(s.defs[n], s.fns[n])
			if err != nil {
				return nil, fmt.Errorf("tlschema: layer %d: %w", layer, err)
			}
			if c == nil {
				return nil, fmt.Errorf("tlschema: layer %d: builtin %q in a packed set", layer, s.defs[n])
			}
			s.parsed[n] = c
		}
		combs = append(combs, c)
	}
	sc, err := newSchema(layer, pl.source, combs)
	if err != nil {
		return nil, fmt.Errorf("tlschema: layer %d: %w", layer, err)
	}
	s.built[layer] = sc
	return sc, nil
}
