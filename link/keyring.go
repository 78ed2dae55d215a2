package link

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a signing key in bytes (AES-256).
const KeySize = 32

const maxKeyIDLen = 32

// Keyring holds the keys that mint and verify links. The first key mints;
// every key verifies, so a new key can be put first while links minted with
// the old one are still in flight.
type Keyring struct {
	keys  []key
	byKID map[string]*key
}

type key struct {
	id   string
	aead cipher.AEAD // seals, with a random nonce it prepends
	// gcm is the same key's AES-GCM with the nonce given: Open splits
	// the nonce off itself and decrypts in place.
	gcm cipher.AEAD
}

// nonceSize is the random-nonce AEAD's nonce, written before the
// ciphertext.
const nonceSize = 12

// ParseKeyring parses "kid1:base64key,kid2:base64key". Keys are 32 bytes in
// standard or URL-safe base64, padded or not.
func ParseKeyring(s string) (*Keyring, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no keys")
	}
	kr := &Keyring{byKID: map[string]*key{}}
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		id, enc, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("key %d: want kid:base64key", i+1)
		}
		if err := validKeyID(id); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("key %d: key id %q appears twice", i+1, id)
		}
		seen[id] = true
		raw, err := decodeKey(enc)
		if err != nil {
			// The error names the key by position only: never echo key material.
			return nil, fmt.Errorf("key %d (%s): %w", i+1, id, err)
		}
		k, err := newKey(id, raw)
		if err != nil {
			return nil, fmt.Errorf("key %d (%s): %w", i+1, id, err)
		}
		kr.keys = append(kr.keys, k)
	}
	for i := range kr.keys {
		kr.byKID[kr.keys[i].id] = &kr.keys[i]
	}
	return kr, nil
}

// KeyIDs lists the key ids, the minting key first.
func (kr *Keyring) KeyIDs() []string {
	ids := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = k.id
	}
	return ids
}

// String never shows key material, so a keyring printed by mistake leaks nothing.
func (kr *Keyring) String() string {
	return "Keyring(" + strings.Join(kr.KeyIDs(), ",") + ")"
}

func newKey(id string, raw []byte) (key, error) {
	if len(raw) != KeySize {
		return key{}, fmt.Errorf("key must be %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, err
	}
	// The random 96-bit nonce is generated and prepended by the AEAD itself.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return key{}, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, err
	}
	if gcm.NonceSize() != nonceSize || aead.Overhead() != nonceSize+gcm.Overhead() {
		return key{}, errors.New("unexpected AES-GCM nonce size")
	}
	return key{id: id, aead: aead, gcm: gcm}, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("key is not valid base64")
}

func validKeyID(id string) error {
	if id == "" {
		return errors.New("empty key id")
	}
	if len(id) > maxKeyIDLen {
		return fmt.Errorf("key id longer than %d characters", maxKeyIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("key id %q: only letters, digits, '-', '_' and '.' are allowed", id)
		}
	}
	return nil
}

// GenerateKey returns a fresh keyring entry, "kid:base64key", with a random id.
func GenerateKey() (string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	return "k" + hex.EncodeToString(id) + ":" + base64.StdEncoding.EncodeToString(raw), nil
}
