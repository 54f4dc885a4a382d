package tlschema

import (
	"bytes"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
)

// FuzzParse: any text either parses or fails with an error; a parsed
// schema prints canonically and re-parses to the same lines.
func FuzzParse(f *testing.F) {
	f.Add("// LAYER 7\nuser#1 flags:# id:long name:flags.0?string = User;\n---functions---\nget#2 {X:Type} q:!X = X;")
	f.Add("a#ff x:Vector<vector<%b>> = A;\nb#1 = B;")
	f.Add("int ? = Int;\n---types---\nbool#1 = Bool;")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text, "fuzz")
		if err != nil || len(s.Constructors)+len(s.Functions) == 0 {
			return
		}
		var b bytes.Buffer
		if err := Pack(&b, []*Schema{{Layer: 1, Source: "fuzz", Constructors: s.Constructors, Functions: s.Functions}}); err != nil {
			t.Fatal(err)
		}
		set, err := Unpack(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		again, err := set.Schema(1)
		if err != nil {
			t.Fatalf("canonical form does not re-parse: %v", err)
		}
		if len(again.Constructors) != len(s.Constructors) || len(again.Functions) != len(s.Functions) {
			t.Fatal("re-parse changed the schema")
		}
		for i, c := range s.Constructors {
			if again.Constructors[i].Line != c.Line {
				t.Fatalf("%q became %q", c.Line, again.Constructors[i].Line)
			}
		}
	})
}

// FuzzDecode: client bytes either decode or fail with an error, in any
// layer; what decodes encodes, and encoding is stable; translating a
// decoded request to the native layer never panics.
func FuzzDecode(f *testing.F) {
	for _, o := range []bin.Encoder{
		&tg.MessagesSendMessageRequest{Peer: &tg.InputPeerUser{UserID: 1, AccessHash: 2}, Message: "hi", RandomID: 3},
		&tg.InvokeWithLayerRequest{Layer: 144, Query: &tg.InitConnectionRequest{APIID: 1, Query: &tg.HelpGetConfigRequest{}}},
		&tg.User{ID: 1, FirstName: "a", Status: &tg.UserStatusOnline{Expires: 3}},
		&tg.UsersGetUsersRequest{ID: []tg.InputUserClass{&tg.InputUserSelf{}}},
	} {
		var b bin.Buffer
		if err := o.Encode(&b); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Buf)
	}
	native := layer(f, Native)
	old := layer(f, 144)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, s := range []*Schema{native, old} {
			for _, call := range []bool{true, false} {
				var o *Object
				var err error
				if call {
					o, err = s.DecodeCall(body)
				} else {
					o, err = s.DecodeBoxed(body)
				}
				if err != nil {
					continue
				}
				var b1 bin.Buffer
				if err := encodeObject(&b1, o, true, 0); err != nil {
					t.Fatalf("layer %d: decoded %s does not encode: %v", s.Layer, o.C.Name, err)
				}
				o2, err := s.decodeAny(b1.Buf, call)
				if err != nil {
					t.Fatalf("layer %d: re-decode of %s: %v", s.Layer, o.C.Name, err)
				}
				var b2 bin.Buffer
				if err := encodeObject(&b2, o2, true, 0); err != nil || !bytes.Equal(b1.Buf, b2.Buf) {
					t.Fatalf("layer %d: %s encoding not stable: %v", s.Layer, o.C.Name, err)
				}
				if s == old {
					tr := &Translator{From: old, To: native, Nearest: !call}
					var out *Object
					if call {
						out, err = tr.Call(o)
					} else {
						out, err = tr.Boxed(o)
					}
					if err == nil {
						var b3 bin.Buffer
						if err := encodeObject(&b3, out, true, 0); err != nil {
							t.Fatalf("translated %s does not encode: %v", o.C.Name, err)
						}
					}
				}
			}
		}
	})
}

func (s *Schema) decodeAny(b []byte, call bool) (*Object, error) {
	if call {
		return s.DecodeCall(b)
	}
	return s.DecodeBoxed(b)
}
