package testserver

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedKeysSkipFingerprintsMtcuteCannotMatch: mtcute 0.30.3 never
// finds a key whose fingerprint starts with a 0 hex digit, so generation
// skips such keys. The generator here varies the exponent of one modulus
// (fingerprints only, no real keys needed) until it has produced one such
// fingerprint.
func TestGeneratedKeysSkipFingerprintsMtcuteCannotMatch(t *testing.T) {
	base := testKey(t)
	e, sawBad, badE := 3, false, 0
	k, err := generateKey(func() (*rsa.PrivateKey, error) {
		for {
			k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: base.N, E: e}}
			e += 2
			if !FingerprintUsable(&k.PublicKey) {
				sawBad, badE = true, k.E
				return k, nil
			}
			if sawBad {
				return k, nil
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawBad || !FingerprintUsable(&k.PublicKey) || strings.HasPrefix(Fingerprint(&k.PublicKey), "0") {
		t.Fatalf("generateKey returned fingerprint %s (a bad one offered: %v)", Fingerprint(&k.PublicKey), sawBad)
	}
	if _, err := generateKey(func() (*rsa.PrivateKey, error) {
		return &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: base.N, E: badE}}, nil
	}); err == nil {
		t.Fatal("a generator that only makes unusable keys did not fail")
	}
}

func TestFingerprintMatchesTheMTProtoDefinition(t *testing.T) {
	// Telegram's production key 0xd09d1d85de64fd85 (from its docs).
	const pemKey = `-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEA6LszBcC1LGzyr992NzE0ieY+BSaOW622Aa9Bd4ZHLl+TuFQ4lo4g
5nKaMBwK/BIb9xUfg0Q29/2mgIR6Zr9krM7HjuIcCzFvDtr+L0GQjae9H0pRB2OO
62cECs5HKhT5DZ98K33vmWiLowc621dQuwKWSQKjWf50XYFw42h21P2KXUGyp2y/
+aEyZ+uVgLLQbRA1dEjSDZ2iGRy12Mk5gpYc397aYp438fsJoHIgJ2lgMv5h7WY9
t6N/byY9Nw9p21Og3AoXSL2q/2IJ1WRUhebgAdGVMlV1fkuOQoEzR7EdpqtQD9Cs
5+bfo3Nhmcyvk5ftB0WkJ9z6bNZ7yxrP8wIDAQAB
-----END RSA PUBLIC KEY-----`
	b, _ := pem.Decode([]byte(pemKey))
	pub, err := x509.ParsePKCS1PublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := Fingerprint(pub); got != "d09d1d85de64fd85" {
		t.Fatalf("fingerprint %s", got)
	}
}

func TestLoadOrCreateKeyKeepsTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.pem")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first load: created %v, %v", created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("second load: created %v, same %v, %v", created, k1.Equal(k2), err)
	}
	// PKCS #8 is read too.
	der, err := x509.MarshalPKCS8PrivateKey(k1)
	if err != nil {
		t.Fatal(err)
	}
	k3, err := ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil || !k1.Equal(k3) {
		t.Fatalf("PKCS #8: %v", err)
	}
	s := newServer(t, Options{Users: 1, Key: k2})
	if Fingerprint(s.PublicKey()) != Fingerprint(&k1.PublicKey) {
		t.Fatal("server does not serve the loaded key")
	}
}

func TestBadKeyFilesAreRefused(t *testing.T) {
	dir := t.TempDir()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&testKey(t).PublicKey)})
	for name, tc := range map[string]struct {
		data string
		want string
	}{
		"empty.pem":  {"", "no PEM block"},
		"public.pem": {string(pub), "a public key cannot serve"},
		"small.pem":  {string(PrivateKeyPEM(small)), "1024 bits, want 2048"},
		"broken.pem": {"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "RSA PRIVATE KEY block"},
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateKey(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming the file and saying %q", name, err, tc.want)
		}
	}
	if _, err := New(Options{Key: small}); err == nil {
		t.Error("New accepted a 1024-bit key")
	}
}

var sharedKey *rsa.PrivateKey

// testKey is one generated key shared by the tests of this file.
func testKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	if sharedKey == nil {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		sharedKey = k
	}
	return sharedKey
}
