package tlschema

import (
	_ "embed" // the packed schemas
	"sync"
)

//go:generate go run ./gen

// packedLayers is the generator's output: every layer listed in
// sources.txt, with its source recorded (SOURCES.md says the same).
//
//go:embed layers.tlc.gz
var packedLayers []byte

// Native is the layer gotd/td v0.161.0 speaks: the test server's own
// handlers encode and decode in it.
const Native = 228

var (
	embeddedOnce sync.Once
	embedded     *Set
	embeddedErr  error
)

// Embedded returns the layers built into the binary.
func Embedded() (*Set, error) {
	embeddedOnce.Do(func() { embedded, embeddedErr = Unpack(packedLayers) })
	return embedded, embeddedErr
}
