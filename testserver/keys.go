package testserver

import (
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/tgtest"
)

// registerKey adds an auth key to tgtest's session table, as a completed key
// exchange would.
//
// Why: a fresh key exchange costs the gotd client about 0.55 s of CPU
// (ProbablyPrime(64) on the 2048-bit DH prime and its half), so 1,000
// simulated accounts would need minutes just to connect. tgtest v0.161.0
// has no exported way to register a key, so this reaches its unexported
// table by reflection. It is the only such access in tgsafety; gotd/td is
// pinned, and TestRegisterKeyMatchesTgtestLayout fails loudly if the
// layout changes. Both of tgtest's mutexes are held because its own lookup
// (getSession) locks connsMux while addSession locks sessionsMux.
func registerKey(srv *tgtest.Server, key crypto.AuthKey) error {
	users, err := field(reflect.ValueOf(srv).Elem(), "users")
	if err != nil {
		return err
	}
	u := users.Elem()
	sessions, err := field(u, "sessions")
	if err != nil {
		return err
	}
	var locks []*sync.Mutex
	for _, name := range []string{"connsMux", "sessionsMux"} {
		m, err := field(u, name)
		if err != nil {
			return err
		}
		mu, ok := m.Addr().Interface().(*sync.Mutex)
		if !ok {
			return fmt.Errorf("testserver: tgtest users.%s is %s, not sync.Mutex", name, m.Type())
		}
		locks = append(locks, mu)
	}
	want := reflect.TypeOf(map[[8]byte]crypto.AuthKey{})
	if sessions.Type() != want {
		return fmt.Errorf("testserver: tgtest users.sessions is %s, want %s", sessions.Type(), want)
	}
	for _, mu := range locks {
		mu.Lock()
	}
	sessions.SetMapIndex(reflect.ValueOf(key.ID), reflect.ValueOf(key))
	for i := len(locks) - 1; i >= 0; i-- {
		locks[i].Unlock()
	}
	return nil
}

// field returns a settable view of an unexported struct field.
func field(v reflect.Value, name string) (reflect.Value, error) {
	f := v.FieldByName(name)
	if !f.IsValid() {
		return reflect.Value{}, fmt.Errorf("testserver: tgtest layout changed: no field %q in %s", name, v.Type())
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem(), nil
}
