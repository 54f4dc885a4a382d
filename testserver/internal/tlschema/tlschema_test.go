package tlschema

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
)

func layer(t testing.TB, n int) *Schema {
	t.Helper()
	set, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s, err := set.Schema(n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEmbeddedLayersIncludeTheClientsLayers(t *testing.T) {
	set, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, l := range set.Layers() {
		got[l] = true
		if _, err := set.Schema(l); err != nil {
			t.Errorf("layer %d: %v", l, err)
		}
		if !strings.HasPrefix(set.Source(l), "github.com/gotd/td@v") {
			t.Errorf("layer %d: source %q", l, set.Source(l))
		}
	}
	for _, l := range []int{144, 198, 227, 228} { // Telethon 1.25, GramJS 2.26, mtcute 0.30, gotd
		if !got[l] {
			t.Errorf("layer %d missing; have %v", l, set.Layers())
		}
	}
	if _, err := set.Schema(143); err == nil {
		t.Error("layer 143 built")
	}
}

// TestNativeLayerMatchesGotd: the embedded layer 228 defines exactly the
// constructors and functions gotd v0.161.0's tg package does, same ids.
func TestNativeLayerMatchesGotd(t *testing.T) {
	s := layer(t, Native)
	want := tg.TypesMap()
	n := 0
	for _, list := range [][]*Combinator{s.Constructors, s.Functions} {
		for _, c := range list {
			if got := fmt.Sprintf("%s#%x", c.Name, c.ID); want[c.ID] != got {
				t.Errorf("%s: gotd has %q", got, want[c.ID])
			}
			n++
		}
	}
	if n != len(want)-5 { // int, long, double, string, bytes are the codec's
		have := map[uint32]bool{}
		for _, list := range [][]*Combinator{s.Constructors, s.Functions} {
			for _, c := range list {
				have[c.ID] = true
			}
		}
		for id, name := range want {
			if _, builtin := builtins[strings.Split(name, "#")[0]]; !have[id] && !builtin {
				t.Errorf("missing %s", name)
			}
		}
	}
}

// TestGenericCodecRoundTripsGotdObjects: every constructor gotd can
// encode from its zero value, plus objects with flags, nested vectors and
// strings, decodes generically and encodes back to the same bytes.
func TestGenericCodecRoundTripsGotdObjects(t *testing.T) {
	s := layer(t, Native)
	var objs []bin.Encoder
	for _, mk := range tg.TypesConstructorMap() {
		objs = append(objs, mk())
	}
	objs = append(objs,
		&tg.User{ID: 1, AccessHash: 2, FirstName: "Ann", Username: "ann", Bot: true, Premium: true,
			Status: &tg.UserStatusOffline{WasOnline: 5}, Usernames: []tg.Username{{Username: "x", Active: true}}},
		&tg.Updates{Updates: []tg.UpdateClass{&tg.UpdateNewMessage{Message: &tg.Message{ID: 3, Message: "hi",
			PeerID: &tg.PeerUser{UserID: 9}, ReplyMarkup: &tg.ReplyKeyboardMarkup{Rows: []tg.KeyboardButtonRow{
				{Buttons: []tg.KeyboardButtonClass{&tg.KeyboardButton{Text: "a"}}}}}}, Pts: 4, PtsCount: 1}},
			Users: []tg.UserClass{&tg.UserEmpty{ID: 7}}, Date: 8, Seq: 0},
		&tg.MessagesSendMessageRequest{Peer: &tg.InputPeerUser{UserID: 1, AccessHash: 2}, Message: strings.Repeat("x", 300),
			RandomID: 99, NoWebpage: true, Silent: true},
	)
	checked := 0
	for _, o := range objs {
		var b bin.Buffer
		if err := encodeGotd(o, &b); err != nil {
			continue // gotd refuses zero values with nil required fields
		}
		if id, _ := b.PeekID(); s.Constructor(id) == nil && s.Function(id) == nil {
			continue // a builtin (tg.Int, tg.Bytes, ...)
		}
		in := append([]byte(nil), b.Buf...)
		id, _ := b.PeekID()
		var dec *Object
		var err error
		if s.Function(id) != nil {
			dec, err = s.DecodeCall(in)
		} else {
			dec, err = s.DecodeBoxed(in)
		}
		if err != nil {
			t.Errorf("%T: decode: %v", o, err)
			continue
		}
		var out bin.Buffer
		if err := encodeObject(&out, dec, true, 0); err != nil {
			t.Errorf("%T: encode: %v", o, err)
			continue
		}
		if !bytes.Equal(in, out.Buf) {
			t.Errorf("%T: %x became %x", o, in, out.Buf)
		}
		checked++
	}
	if checked < 1500 {
		t.Fatalf("only %d objects round-tripped", checked)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"a#1 = A;\nb#zz = B;", "line 2"},
		{"a#1 x:flags.0?int = A;", "bad condition"},
		{"a#1 flags:# x:flags.40?int = A;", "bad condition"},
		{"a#1 x:!X = A;", "names no type parameter"},
		{"a#1 x:int x:int = A;", "twice"},
		{"a#1 = A;\na#2 = A;", "defined twice"},
		{"a#1 = a;", "boxed type name"},
		{"---nonsense---", "unknown section"},
		{"a#1 x:Vector<int = A;", "closing"},
		{"a#1 = A", "closing ';'"},
		{"1a#1 = A;", "bad name"},
		{"a#1 x:true = A;", "only a flag"},
		{"// LAYER x\n", "bad layer"},
	} {
		_, err := Parse(tc.text, "test")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.want)
		}
	}
	s, err := Parse("// LAYER 7\nint ? = Int;\nbytes#e937bb82 = Bytes;\n---functions---\nfoo#1 {X:Type} flags:# a:flags.3?true q:!X = X;\n---types---\nbar#2\n  x:vector<int> = Bar;", "test")
	if err != nil || s.Layer != 7 || len(s.Functions) != 1 || len(s.Constructors) != 1 {
		t.Fatalf("%+v %v", s, err)
	}
}

// TestTranslateRequestFromLayer144: a sendMessage as Telethon 1.25
// (layer 144) encodes it becomes the 228 request gotd's handlers decode,
// and a field 228 added (not in 144) stays absent.
func TestTranslateRequestFromLayer144(t *testing.T) {
	old, now := layer(t, 144), layer(t, Native)
	fn := old.FunctionNamed("messages.sendMessage")
	if fn == nil || fn.ID == tg.MessagesSendMessageRequestTypeID {
		t.Fatalf("layer 144 sendMessage %+v: want a different id from 228's", fn)
	}
	peer := obj(t, old, "inputPeerUser", map[string]any{"user_id": int64(5), "access_hash": int64(6)})
	req := obj(t, old, "messages.sendMessage", map[string]any{
		"peer": peer, "message": []byte("hello"), "random_id": int64(77), "silent": true,
		"reply_to_msg_id": int32(3), // renamed reply_to:InputReplyTo later: dropped
	})
	var b bin.Buffer
	if err := old.EncodeCall(&b, req); err != nil {
		t.Fatal(err)
	}
	dec, err := old.DecodeCall(b.Buf)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := (&Translator{From: old, To: now}).Call(dec)
	if err != nil {
		t.Fatal(err)
	}
	var out bin.Buffer
	if err := now.EncodeCall(&out, tr); err != nil {
		t.Fatal(err)
	}
	var got tg.MessagesSendMessageRequest
	if err := got.Decode(&out); err != nil {
		t.Fatal(err)
	}
	p, ok := got.Peer.(*tg.InputPeerUser)
	if !ok || p.UserID != 5 || p.AccessHash != 6 || got.Message != "hello" || got.RandomID != 77 || !got.Silent || got.ReplyTo != nil {
		t.Fatalf("translated %+v", got)
	}
}

// TestTranslateAnswerToLayer144: a 228 user (which 144 knows by another
// id, with fewer fields) reaches a 144 client as 144's user.
func TestTranslateAnswerToLayer144(t *testing.T) {
	old, now := layer(t, 144), layer(t, Native)
	u := &tg.User{ID: 42, AccessHash: 43, FirstName: "Ann", Username: "ann", Bot: true, Phone: "999",
		Status: &tg.UserStatusRecently{ByMe: true}, Color: &tg.PeerColor{Color: 3}}
	auth := &tg.AuthAuthorization{User: u}
	var b bin.Buffer
	if err := auth.Encode(&b); err != nil {
		t.Fatal(err)
	}
	dec, err := now.DecodeBoxed(b.Buf)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := (&Translator{From: now, To: old, Nearest: true}).Boxed(dec)
	if err != nil {
		t.Fatal(err)
	}
	var out bin.Buffer
	if err := old.EncodeBoxed(&out, tr); err != nil {
		t.Fatal(err)
	}
	back, err := old.DecodeBoxed(out.Buf)
	if err != nil {
		t.Fatal(err)
	}
	user := back.Arg("user").(*Object)
	if user.C != old.ConstructorNamed("user") || user.C.ID == tg.UserTypeID {
		t.Fatalf("user as %s#%x", user.C.Name, user.C.ID)
	}
	if user.Arg("id") != int64(42) || string(user.Arg("first_name").([]byte)) != "Ann" || user.Arg("bot") != true ||
		user.Arg("color") != nil {
		t.Fatalf("user fields %v", user.Args)
	}
}

// TestTranslateFallbacks: the documented fallbacks for what a layer lacks.
func TestTranslateFallbacks(t *testing.T) {
	old, now := layer(t, 144), layer(t, Native)
	// A request for a function 144 has and 228 has not: an error naming it.
	var gone *Combinator
	for _, f := range old.Functions {
		if now.FunctionNamed(f.Name) == nil && len(f.Params) == 0 {
			gone = f
			break
		}
	}
	if gone != nil {
		_, err := (&Translator{From: old, To: now}).Call(&Object{C: gone})
		if _, ok := err.(*NoCounterpartError); !ok {
			t.Errorf("%s: %v", gone.Name, err)
		}
	}
	// An answer constructor 144 lacks becomes the nearest one of its type.
	var b bin.Buffer
	st := &tg.UserStatusRecently{ByMe: true}
	if err := (&tg.User{ID: 1, Status: st}).Encode(&b); err != nil {
		t.Fatal(err)
	}
	dec, err := now.DecodeBoxed(b.Buf)
	if err != nil {
		t.Fatal(err)
	}
	if old.ConstructorNamed("storyItemDeleted") != nil {
		t.Fatal("layer 144 has stories?")
	}
	story := obj(t, now, "storyItemDeleted", map[string]any{"id": int32(3)})
	tr := &Translator{From: now, To: old, Nearest: true}
	if _, err := tr.Boxed(story); err == nil {
		t.Error("a type 144 lacks altogether translated")
	}
	if _, err := (&Translator{From: now, To: old}).Boxed(dec); err != nil {
		t.Errorf("user without Nearest: %v", err)
	}
	// Zero constructors.
	for typ, want := range map[string]string{"User": "userEmpty", "Bool": "boolFalse", "InputPeer": "inputPeerEmpty", "PeerSettings": "peerSettings"} {
		if c := old.ZeroConstructor(typ); c == nil || c.Name != want {
			t.Errorf("zero %s: %v, want %s", typ, c, want)
		}
	}
	// 144's statuses have no fields: none shares one with 228's
	// userStatusLastWeek(by_me), so the first with fewest required wins.
	if c := old.Nearest("UserStatus", now.ConstructorNamed("userStatusLastWeek")); c.Name != "userStatusEmpty" {
		t.Errorf("nearest %s", c.Name)
	}
	if c := now.Nearest("InputPeer", old.ConstructorNamed("inputPeerUser")); c.Name != "inputPeerUser" {
		t.Errorf("nearest of a constructor the layer has: %s", c.Name)
	}
}

// obj builds an object from named fields.
func obj(t testing.TB, s *Schema, name string, fields map[string]any) *Object {
	t.Helper()
	o, err := s.New(name, fields)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// encodeGotd encodes with gotd, which panics on some zero values (the
// invoke wrappers' nil queries).
func encodeGotd(o bin.Encoder, b *bin.Buffer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return o.Encode(b)
}
