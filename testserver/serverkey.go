package testserver

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/gotd/td/crypto"
)

// KeyBits is the size of the server key: MTProto's RSA_PAD (and the older
// scheme) encrypt exactly 256 bytes, so clients assume a 2048-bit key.
const KeyBits = 2048

// keyAttempts bounds the search for a fingerprint every client can match;
// one key in 16 fails the test, so 64 attempts all failing means a broken
// generator, not bad luck.
const keyAttempts = 64

// GenerateKey returns a fresh 2048-bit server key whose fingerprint every
// supported client can match (see FingerprintUsable).
func GenerateKey() (*rsa.PrivateKey, error) {
	return generateKey(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, KeyBits) })
}

func generateKey(gen func() (*rsa.PrivateKey, error)) (*rsa.PrivateKey, error) {
	for range keyAttempts {
		k, err := gen()
		if err != nil {
			return nil, fmt.Errorf("testserver: generate key: %w", err)
		}
		if FingerprintUsable(&k.PublicKey) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("testserver: generate key: no usable fingerprint in %d keys", keyAttempts)
}

// Fingerprint is the key's MTProto fingerprint (the low 64 bits of the
// SHA-1 of the TL-serialised modulus and exponent) as 16 hexadecimal
// digits, the form clients print.
func Fingerprint(pub *rsa.PublicKey) string {
	return fmt.Sprintf("%016x", uint64(crypto.RSAFingerprint(pub)))
}

// FingerprintUsable reports whether every supported client can match the
// key's fingerprint. mtcute 0.30.3 indexes its keys by 16 hex digits but
// looks the server's fingerprint up by Long.toString(16), which drops
// leading zeros: a fingerprint whose first hex digit is 0 (one key in 16)
// is never found ("Could not find server public key with any of these
// fingerprints").
func FingerprintUsable(pub *rsa.PublicKey) bool {
	return uint64(crypto.RSAFingerprint(pub))>>60 != 0
}

// ParsePrivateKeyPEM reads a 2048-bit RSA private key from PEM: an
// "RSA PRIVATE KEY" (PKCS #1, `openssl genrsa -traditional`) or a
// "PRIVATE KEY" (PKCS #8, `openssl genpkey -algorithm RSA`) block.
func ParsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block (want an RSA PRIVATE KEY or PRIVATE KEY block)")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("RSA PRIVATE KEY block: %w", err)
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PRIVATE KEY block: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("PRIVATE KEY block holds a %T, want an RSA key", k)
		}
		key = rk
	default:
		return nil, fmt.Errorf("PEM block %q, want RSA PRIVATE KEY or PRIVATE KEY (a public key cannot serve)", block.Type)
	}
	if n := key.N.BitLen(); n != KeyBits {
		return nil, fmt.Errorf("RSA key of %d bits, want %d (MTProto encrypts exactly 256 bytes)", n, KeyBits)
	}
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("RSA key: %w", err)
	}
	return key, nil
}

// PrivateKeyPEM encodes a server key as an "RSA PRIVATE KEY" block, the
// form ParsePrivateKeyPEM reads.
func PrivateKeyPEM(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// LoadOrCreateKey reads the server key from path, or when the file does
// not exist generates one (GenerateKey) and writes it there with mode
// 0600, so that every later run serves the same key. Errors name the file.
func LoadOrCreateKey(path string) (key *rsa.PrivateKey, created bool, err error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		key, err := GenerateKey()
		if err != nil {
			return nil, false, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("create key file: %w", err)
		}
		_, werr := f.Write(PrivateKeyPEM(key))
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(path)
			return nil, false, fmt.Errorf("write key file %s: %w", path, werr)
		}
		return key, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("read key file: %w", err)
	}
	key, err = ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, false, fmt.Errorf("key file %s: %w", strconv.Quote(path), err)
	}
	return key, false, nil
}
