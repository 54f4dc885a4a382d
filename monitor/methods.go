package monitor

import (
	"reflect"
	"strings"
	"sync"

	"github.com/gotd/td/tg"
)

// OtherMethod is the method label, and the flood-wait key, of every
// method outside the TL schema (see MethodLabel).
const OtherMethod = "other"

// unknownMethod is MethodName's answer for a request without a TL name.
const unknownMethod = "unknown"

// knownMethods is the set of TL method names (not constructors) of the
// schema gotd was generated from, built once from gotd's type registry.
var knownMethods = sync.OnceValue(func() map[string]struct{} {
	names := tg.TypesMap()
	out := make(map[string]struct{}, 1024)
	for id, ctor := range tg.TypesConstructorMap() {
		name, _, _ := strings.Cut(names[id], "#")
		// gotd names a method's type after the method plus "Request"
		// (messages.sendMessage: MessagesSendMessageRequest); a few
		// constructors end in "Request" by their own name
		// (communityPeerRequest: CommunityPeerRequest).
		goName := reflect.TypeOf(ctor()).Elem().Name()
		if strings.EqualFold(goName, strings.ReplaceAll(name, ".", "")+"Request") {
			out[name] = struct{}{}
		}
	}
	return out
})

// KnownMethod reports whether name is a method of the TL schema tgsafety
// is built with (gotd's registry, layer tg.Layer). Names are
// case-sensitive, as in the schema.
func KnownMethod(name string) bool {
	_, ok := knownMethods()[name]
	return ok
}

// MethodLabel returns the label value, and the per-account flood-wait
// key, for a method name: the name itself when it is a known TL method
// (or MethodName's "unknown"), else OtherMethod. Method names reach the
// monitor from applications (the daemon's ingest API) as well as from
// requests, and each distinct label value is a metric series and a map
// entry for as long as the process lives: bounding them by the schema
// keeps their number, and the cost of every signal, independent of what
// is reported.
func MethodLabel(name string) string {
	if name == unknownMethod || KnownMethod(name) {
		return name
	}
	return OtherMethod
}
