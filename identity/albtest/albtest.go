// Package albtest stands in for an Application Load Balancer's sign-in in
// tests: it mints x-amzn-oidc-data headers signed with a test key, the way
// the ALB does (ES256, padded base64url, signer and kid in the JOSE header),
// and serves the public keys as the regional key endpoint does, as PEM at
// /{kid}.
package albtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Defaults of what New mints.
const (
	ARN    = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/approvals/50dc6c495c0c9188"
	Issuer = "https://idp.example.com"
	Client = "approvals-client"
)

// ALB signs headers and serves its keys. Its methods are safe for
// concurrent use.
type ALB struct {
	// ARN is the signer the headers name.
	ARN string
	// Issuer is the iss they carry.
	Issuer string

	server *httptest.Server

	mu      sync.Mutex
	kid     string
	key     *ecdsa.PrivateKey
	keys    map[string]*ecdsa.PrivateKey // every kid ever current, served
	fetches map[string]int
	status  int
	now     func() time.Time
}

// New returns an ALB with a fresh key and its key server listening on
// 127.0.0.1; both go away when the test ends.
func New(t testing.TB) *ALB {
	t.Helper()
	a := NewUnstarted(t)
	a.server = httptest.NewServer(a)
	t.Cleanup(a.server.Close)
	return a
}

// NewUnstarted returns an ALB with no server: serve its keys in process with
// the ALB as an http.Handler (ServeHTTP), or use only Mint.
func NewUnstarted(t testing.TB) *ALB {
	t.Helper()
	a := &ALB{
		ARN:     ARN,
		Issuer:  Issuer,
		keys:    make(map[string]*ecdsa.PrivateKey),
		fetches: make(map[string]int),
		now:     time.Now,
	}
	a.Rotate(t)
	return a
}

// KeysURL is the key server's URL, for identity.Config.KeysURL.
func (a *ALB) KeysURL() string {
	if a.server == nil {
		return "http://albtest.invalid"
	}
	return a.server.URL
}

// Kid is the current key's id.
func (a *ALB) Kid() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.kid
}

// Key is the current private key.
func (a *ALB) Key() *ecdsa.PrivateKey {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.key
}

// Rotate makes a new key current, as the ALB does from time to time; the
// old ones stay served. It returns the new kid.
func (a *ALB) Rotate(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	kid := NewKid()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.kid, a.key = kid, key
	a.keys[kid] = key
	return kid
}

// SetNow sets the clock that Header's expiry counts from.
func (a *ALB) SetNow(now func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = now
}

// Header mints a valid header for a user with that email, expiring in two
// minutes, the way the ALB mints one per request.
func (a *ALB) Header(sub, email string) string {
	a.mu.Lock()
	exp := a.now().Add(2 * time.Minute)
	a.mu.Unlock()
	return a.Mint(a.Token(sub, email, exp))
}

// Token is a header before signing. Change any part to mint an invalid one.
type Token struct {
	// Header is the JOSE header.
	Header map[string]any
	// Claims is the payload.
	Claims map[string]any
	// Key signs it; nil means the ALB's key named by Header["kid"], or its
	// current key if the kid is none of its own.
	Key *ecdsa.PrivateKey
	// Unpadded leaves the base64url segments without the "=" padding the
	// ALB adds.
	Unpadded bool
	// Signature replaces the signature segment (already encoded) when
	// non-nil: use a pointer to "" for alg none.
	Signature *string
}

// Token returns what the ALB would sign for that user, expiring at exp.
func (a *ALB) Token(sub, email string, exp time.Time) Token {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Token{
		Header: map[string]any{
			"typ": "JWT", "alg": "ES256", "kid": a.kid, "signer": a.ARN,
			"iss": a.Issuer, "client": Client, "exp": exp.Unix(),
		},
		Claims: map[string]any{
			"sub": sub, "email": email, "email_verified": "true",
			"exp": exp.Unix(), "iss": a.Issuer,
		},
	}
}

// Mint encodes and signs t.
func (a *ALB) Mint(t Token) string {
	enc := base64.URLEncoding
	if t.Unpadded {
		enc = base64.RawURLEncoding
	}
	seg := func(v map[string]any) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("albtest: encode token: %v", err))
		}
		return enc.EncodeToString(b)
	}
	signing := seg(t.Header) + "." + seg(t.Claims)
	if t.Signature != nil {
		return signing + "." + *t.Signature
	}
	key := t.Key
	if key == nil {
		kid, _ := t.Header["kid"].(string)
		a.mu.Lock()
		key = a.keys[kid]
		if key == nil {
			key = a.key
		}
		a.mu.Unlock()
	}
	return signing + "." + enc.EncodeToString(Sign(key, signing))
}

// Sign is the ES256 signature of s: r and s as 32 bytes each.
func Sign(key *ecdsa.PrivateKey, s string) []byte {
	h := sha256.Sum256([]byte(s))
	r, ss, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		panic(fmt.Sprintf("albtest: sign: %v", err))
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	ss.FillBytes(out[32:])
	return out
}

// PEM is pub as the key endpoint serves it.
func PEM(pub *ecdsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(fmt.Sprintf("albtest: marshal key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// NewKid returns a random UUID, the form of the ALB's key ids.
func NewKid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Fail makes the key server answer status to every request; 0 restores it.
func (a *ALB) Fail(status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status = status
}

// Fetches is how many times the key server was asked for kid.
func (a *ALB) Fetches(kid string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fetches[kid]
}

// ServeHTTP is the key server: GET /{kid} answers the PEM public key, 404
// for an unknown kid.
func (a *ALB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kid := strings.TrimPrefix(r.URL.Path, "/")
	a.mu.Lock()
	a.fetches[kid]++
	status, key := a.status, a.keys[kid]
	a.mu.Unlock()
	switch {
	case status != 0:
		http.Error(w, http.StatusText(status), status)
	case r.Method != http.MethodGet:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case key == nil:
		http.NotFound(w, r)
	default:
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(PEM(&key.PublicKey))
	}
}
