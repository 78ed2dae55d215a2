package identity_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/identity/albtest"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time for the verifier and the ALB.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type bundle struct {
	alb   *albtest.ALB
	clock *clock
	v     *identity.Verifier
}

func setup(t *testing.T, cfg identity.Config) bundle {
	t.Helper()
	b := bundle{alb: albtest.New(t), clock: &clock{t: t0}}
	b.alb.SetNow(b.clock.Now)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cfg.ALBARN = b.alb.ARN
	if cfg.KeysURL == "" {
		cfg.KeysURL = b.alb.KeysURL()
	}
	cfg.HTTPClient = &http.Client{Transport: tr}
	cfg.Now = b.clock.Now
	v, err := identity.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b.v = v
	return b
}

func (b bundle) token() albtest.Token {
	return b.alb.Token("user-1", "Ann@Example.com", t0.Add(2*time.Minute))
}

func TestVerifyValid(t *testing.T) {
	b := setup(t, identity.Config{})
	want := identity.Identity{Subject: "user-1", Email: "Ann@Example.com", Issuer: albtest.Issuer}
	for _, unpadded := range []bool{false, true} {
		tok := b.token()
		tok.Unpadded = unpadded
		raw := b.alb.Mint(tok)
		if !unpadded && !strings.Contains(raw, "=") {
			t.Fatalf("padded token has no padding: the case tests nothing")
		}
		got, err := b.v.Verify(context.Background(), raw)
		if err != nil {
			t.Fatalf("unpadded=%v: Verify: %v", unpadded, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("unpadded=%v: identity (-want +got):\n%s", unpadded, diff)
		}
	}
}

func TestVerifyRequest(t *testing.T) {
	b := setup(t, identity.Config{})
	r := httptest.NewRequest(http.MethodGet, "/a/x", nil)
	if _, err := b.v.VerifyRequest(r); reason(err) != identity.ReasonMissing {
		t.Errorf("no header: reason %q, want missing (%v)", reason(err), err)
	}
	r.Header.Set("x-amzn-oidc-data", b.alb.Header("user-1", "ann@example.com"))
	got, err := b.v.VerifyRequest(r)
	if err != nil || got.Subject != "user-1" {
		t.Fatalf("VerifyRequest = %+v, %v; want user-1", got, err)
	}
	r.Header.Add("x-amzn-oidc-data", b.alb.Header("user-2", "bob@example.com"))
	if _, err := b.v.VerifyRequest(r); reason(err) != identity.ReasonMalformed {
		t.Errorf("two headers: reason %q, want malformed (%v)", reason(err), err)
	}
}

func reason(err error) identity.Reason {
	r, _ := identity.ReasonOf(err)
	return r
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyRejects(t *testing.T) {
	b := setup(t, identity.Config{})
	other := albtest.NewUnstarted(t)
	empty := ""
	valid := b.alb.Mint(b.token())
	parts := strings.Split(valid, ".")

	mod := func(f func(*albtest.Token)) string {
		tok := b.token()
		f(&tok)
		return b.alb.Mint(tok)
	}
	hs256 := func() string {
		// Key confusion: HMAC keyed with the public key's PEM, which a
		// verifier trusting alg would accept.
		tok := b.token()
		tok.Header["alg"] = "HS256"
		sig := "x"
		tok.Signature = &sig
		signing := strings.TrimSuffix(b.alb.Mint(tok), ".x")
		m := hmac.New(sha256.New, albtest.PEM(&b.alb.Key().PublicKey))
		m.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}

	tests := []struct {
		name  string
		token string
		want  identity.Reason
		// fetch: whether the key server may be asked.
		fetch bool
	}{
		{name: "empty", token: "", want: identity.ReasonMissing},
		{name: "one segment", token: parts[0], want: identity.ReasonMalformed},
		{name: "two segments", token: parts[0] + "." + parts[1], want: identity.ReasonMalformed},
		{name: "four segments", token: valid + "." + parts[2], want: identity.ReasonMalformed},
		{name: "bad base64 header", token: "!!!." + parts[1] + "." + parts[2], want: identity.ReasonMalformed},
		{name: "bad base64 claims", token: parts[0] + ".*." + parts[2], want: identity.ReasonMalformed},
		{name: "bad base64 signature", token: parts[0] + "." + parts[1] + ".@@", want: identity.ReasonMalformed, fetch: true},
		{name: "header not JSON", token: b64("{alg:") + "." + parts[1] + "." + parts[2], want: identity.ReasonMalformed},
		{name: "claims not JSON", token: parts[0] + "." + b64("[1,") + "." + parts[2], want: identity.ReasonMalformed},
		{name: "claims of the wrong type", token: mod(func(t *albtest.Token) { t.Claims["email"] = 7 }), want: identity.ReasonMalformed},
		{name: "too long", token: strings.Repeat("a", 17<<10), want: identity.ReasonMalformed},
		{name: "kid not a UUID", token: mod(func(t *albtest.Token) { t.Header["kid"] = "../../etc/passwd" }), want: identity.ReasonMalformed},
		{name: "no kid", token: mod(func(t *albtest.Token) { delete(t.Header, "kid") }), want: identity.ReasonMalformed},
		{name: "no sub", token: mod(func(t *albtest.Token) { delete(t.Claims, "sub") }), want: identity.ReasonMalformed, fetch: true},
		{name: "no exp", token: mod(func(t *albtest.Token) { delete(t.Claims, "exp"); delete(t.Header, "exp") }), want: identity.ReasonMalformed, fetch: true},
		{name: "header exp not a number", token: mod(func(t *albtest.Token) { t.Header["exp"] = "soon" }), want: identity.ReasonMalformed, fetch: true},

		{name: "alg none", token: mod(func(t *albtest.Token) { t.Header["alg"] = "none"; t.Signature = &empty }), want: identity.ReasonAlg},
		{name: "alg None", token: mod(func(t *albtest.Token) { t.Header["alg"] = "None"; t.Signature = &empty }), want: identity.ReasonAlg},
		{name: "alg HS256 keyed with the public key", token: hs256(), want: identity.ReasonAlg},
		{name: "alg RS256", token: mod(func(t *albtest.Token) { t.Header["alg"] = "RS256" }), want: identity.ReasonAlg},
		{name: "alg ES384", token: mod(func(t *albtest.Token) { t.Header["alg"] = "ES384" }), want: identity.ReasonAlg},
		{name: "alg missing", token: mod(func(t *albtest.Token) { delete(t.Header, "alg") }), want: identity.ReasonAlg},
		{name: "alg not a string", token: mod(func(t *albtest.Token) { t.Header["alg"] = 256 }), want: identity.ReasonAlg},

		{name: "wrong signer", token: mod(func(t *albtest.Token) {
			t.Header["signer"] = strings.Replace(albtest.ARN, "approvals", "other", 1)
		}), want: identity.ReasonSigner},
		{name: "signer in claims only", token: mod(func(t *albtest.Token) {
			t.Claims["signer"] = t.Header["signer"]
			delete(t.Header, "signer")
		}), want: identity.ReasonSigner},

		{name: "unknown kid", token: mod(func(t *albtest.Token) { t.Header["kid"] = albtest.NewKid() }), want: identity.ReasonKidUnknown, fetch: true},

		{name: "wrong key", token: mod(func(t *albtest.Token) { t.Key = other.Key() }), want: identity.ReasonSignature, fetch: true},
		{name: "claims changed after signing", token: parts[0] + "." + b64(`{"sub":"boss","email":"boss@example.com","exp":9999999999}`) + "." + parts[2], want: identity.ReasonSignature, fetch: true},
		{name: "padding stripped after signing", token: strings.ReplaceAll(valid, "=", ""), want: identity.ReasonSignature, fetch: true},
		{name: "signature too short", token: parts[0] + "." + parts[1] + "." + b64("short"), want: identity.ReasonSignature, fetch: true},

		{name: "expired", token: mod(func(t *albtest.Token) {
			exp := t0.Add(-identity.DefaultClockSkew - time.Second).Unix()
			t.Claims["exp"], t.Header["exp"] = exp, exp
		}), want: identity.ReasonExpired, fetch: true},
		{name: "expired in the JOSE header only", token: mod(func(t *albtest.Token) {
			t.Header["exp"] = t0.Add(-time.Hour).Unix()
		}), want: identity.ReasonExpired, fetch: true},
		{name: "not valid yet", token: mod(func(t *albtest.Token) {
			t.Claims["nbf"] = t0.Add(time.Hour).Unix()
		}), want: identity.ReasonExpired, fetch: true},

		{name: "email not verified (Cognito string)", token: mod(func(t *albtest.Token) { t.Claims["email_verified"] = "false" }), want: identity.ReasonEmailUnverified, fetch: true},
		{name: "email not verified (boolean)", token: mod(func(t *albtest.Token) { t.Claims["email_verified"] = false }), want: identity.ReasonEmailUnverified, fetch: true},
	}
	kid := b.alb.Kid()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.alb.Fetches(kid)
			_, err := b.v.Verify(context.Background(), tt.token)
			if got := reason(err); got != tt.want {
				t.Fatalf("reason %q, want %q (err %v)", got, tt.want, err)
			}
			if identity.IsUnavailable(err) {
				t.Errorf("IsUnavailable(%v) = true for an invalid header", err)
			}
			if !tt.fetch && b.alb.Fetches(kid) != before {
				t.Errorf("the key server was asked for a header refused before any key is needed")
			}
			for _, s := range append([]string{tt.token}, strings.Split(tt.token, ".")...) {
				if len(s) >= 8 && strings.Contains(err.Error(), s) {
					t.Errorf("error text %q contains the JWT", err)
				}
			}
		})
	}
}

func TestVerifyClockSkew(t *testing.T) {
	b := setup(t, identity.Config{ClockSkew: 30 * time.Second})
	tok := b.alb.Token("user-1", "ann@example.com", t0)
	raw := b.alb.Mint(tok)
	b.clock.Add(29 * time.Second)
	if _, err := b.v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("29 s after exp, within 30 s of skew: %v", err)
	}
	b.clock.Add(2 * time.Second)
	if _, err := b.v.Verify(context.Background(), raw); reason(err) != identity.ReasonExpired {
		t.Fatalf("31 s after exp: reason %q, want expired (%v)", reason(err), err)
	}
}

func TestSameEmail(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"ann@example.com", "ann@example.com", true},
		{"Ann@Example.COM", "ann@example.com", true},
		{"ann@example.com", "bob@example.com", false},
		{"ann@example.com", "ann@example.com.evil", false},
		{"ann@example.com", " ann@example.com", false},
		{"", "", false},
		// U+212A KELVIN SIGN folds to k under Unicode rules; not here.
		{"\u212a@example.com", "k@example.com", false},
		{"\u00e9@example.com", "\u00e9@example.com", true},
		{"\u00c9@example.com", "\u00e9@example.com", false},
	}
	for _, tt := range tests {
		if got := identity.SameEmail(tt.a, tt.b); got != tt.want {
			t.Errorf("SameEmail(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// A verified sign-in as someone else is not an error of Verify: the caller
// compares the email to the link's recipient.
func TestVerifyAnotherEmail(t *testing.T) {
	b := setup(t, identity.Config{})
	id, err := b.v.Verify(context.Background(), b.alb.Header("user-2", "Bob@Example.com"))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if identity.SameEmail(id.Email, "ann@example.com") {
		t.Errorf("bob matched ann")
	}
	if !identity.SameEmail(id.Email, "bob@EXAMPLE.com") {
		t.Errorf("Bob@Example.com did not match bob@EXAMPLE.com")
	}
}

func TestKeyServerUnavailable(t *testing.T) {
	t.Run("5xx", func(t *testing.T) {
		b := setup(t, identity.Config{})
		raw := b.alb.Header("user-1", "ann@example.com")
		b.alb.Fail(http.StatusServiceUnavailable)
		_, err := b.v.Verify(context.Background(), raw)
		if !identity.IsUnavailable(err) {
			t.Fatalf("IsUnavailable(%v) = false", err)
		}
		var e *identity.Error
		if !errors.As(err, &e) || !e.Unavailable() {
			t.Fatalf("error %v is not an unavailable *identity.Error", err)
		}
		// Failures are not cached: the next request, once the server is
		// back, succeeds.
		b.alb.Fail(0)
		if _, err := b.v.Verify(context.Background(), raw); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})
	t.Run("down", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		down := srv.URL
		srv.Close()
		b := setup(t, identity.Config{KeysURL: down})
		_, err := b.v.Verify(context.Background(), b.alb.Header("user-1", "ann@example.com"))
		if !identity.IsUnavailable(err) {
			t.Fatalf("connection refused: reason %q, want keys_unavailable (%v)", reason(err), err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		b := setup(t, identity.Config{KeysURL: srv.URL, FetchTimeout: 50 * time.Millisecond})
		_, err := b.v.Verify(context.Background(), b.alb.Header("user-1", "ann@example.com"))
		if !identity.IsUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hung key server: %v, want keys_unavailable wrapping a deadline", err)
		}
	})
	t.Run("not a key", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("<html>captive portal</html>"))
		}))
		t.Cleanup(srv.Close)
		b := setup(t, identity.Config{KeysURL: srv.URL})
		_, err := b.v.Verify(context.Background(), b.alb.Header("user-1", "ann@example.com"))
		if !identity.IsUnavailable(err) {
			t.Fatalf("HTML for a key: reason %q, want keys_unavailable (%v)", reason(err), err)
		}
	})
}

func TestKeyCache(t *testing.T) {
	b := setup(t, identity.Config{CacheSize: 2, CacheTTL: 10 * time.Minute})
	ctx := context.Background()
	verify := func(kid string) {
		t.Helper()
		if _, err := b.v.Verify(ctx, b.alb.Header("user-1", "ann@example.com")); err != nil {
			t.Fatalf("Verify with kid %s: %v", kid, err)
		}
	}
	k1 := b.alb.Kid()
	verify(k1)
	verify(k1)
	if n := b.alb.Fetches(k1); n != 1 {
		t.Fatalf("two sign-ins with one kid fetched it %d times, want 1 (a cache hit)", n)
	}

	// Three kids through a cache of two: the least recently used goes.
	k2 := b.alb.Rotate(t)
	verify(k2)
	k3 := b.alb.Rotate(t)
	verify(k3)
	if got := b.alb.Fetches(k2) + b.alb.Fetches(k3); got != 2 {
		t.Fatalf("k2 and k3 fetched %d times in all, want 2", got)
	}
	// k1 was evicted: a header under it fetches it again, which evicts
	// k2, the least recently used; k3 stays.
	withKid := func(kid string) {
		t.Helper()
		tok := b.token()
		tok.Header["kid"] = kid
		if _, err := b.v.Verify(ctx, b.alb.Mint(tok)); err != nil {
			t.Fatalf("Verify with kid %s: %v", kid, err)
		}
	}
	withKid(k1)
	withKid(k3)
	withKid(k2)
	if got := []int{b.alb.Fetches(k1), b.alb.Fetches(k2), b.alb.Fetches(k3)}; !cmp.Equal(got, []int{2, 2, 1}) {
		t.Fatalf("fetches of k1, k2, k3 = %v, want [2 2 1]", got)
	}

	// Past the lifetime a cached key is fetched again.
	b.clock.Add(11 * time.Minute)
	verify(k3)
	if n := b.alb.Fetches(k3); n != 2 {
		t.Fatalf("k3 fetched %d times after its lifetime, want 2", n)
	}
}

func TestVerifyAccepts(t *testing.T) {
	b := setup(t, identity.Config{})
	tests := []struct {
		name string
		mod  func(*albtest.Token)
		want identity.Identity
	}{
		{
			name: "no email_verified (Entra ID sends none)",
			mod:  func(t *albtest.Token) { delete(t.Claims, "email_verified") },
			want: identity.Identity{Subject: "user-1", Email: "Ann@Example.com", Issuer: albtest.Issuer},
		},
		{
			name: "email_verified a boolean",
			mod:  func(t *albtest.Token) { t.Claims["email_verified"] = true },
			want: identity.Identity{Subject: "user-1", Email: "Ann@Example.com", Issuer: albtest.Issuer},
		},
		{
			name: "issuer only in the JOSE header",
			mod:  func(t *albtest.Token) { delete(t.Claims, "iss") },
			want: identity.Identity{Subject: "user-1", Email: "Ann@Example.com", Issuer: albtest.Issuer},
		},
		{
			name: "no email",
			mod:  func(t *albtest.Token) { delete(t.Claims, "email") },
			want: identity.Identity{Subject: "user-1", Issuer: albtest.Issuer},
		},
		{
			name: "other claims of any shape",
			mod: func(t *albtest.Token) {
				t.Claims["aud"] = 5
				t.Claims["iat"] = "yesterday"
				t.Claims["groups"] = []string{"approvers"}
			},
			want: identity.Identity{Subject: "user-1", Email: "Ann@Example.com", Issuer: albtest.Issuer},
		},
		{
			name: "exp only in the claims",
			mod:  func(t *albtest.Token) { delete(t.Header, "exp") },
			want: identity.Identity{Subject: "user-1", Email: "Ann@Example.com", Issuer: albtest.Issuer},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := b.token()
			tt.mod(&tok)
			got, err := b.v.Verify(context.Background(), b.alb.Mint(tok))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}
