package link

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testKey(t testing.TB) string {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustKeyring(t testing.TB, s string) *Keyring {
	t.Helper()
	kr, err := ParseKeyring(s)
	if err != nil {
		t.Fatalf("ParseKeyring: %v", err)
	}
	return kr
}

// sfnToken looks like a Step Functions task token: standard base64 of n bytes.
func sfnToken(t testing.TB, chars int) string {
	t.Helper()
	b := make([]byte, chars/4*3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func sampleClaims(token string) Claims {
	return Claims{
		TaskToken:   token,
		Action:      approval.Action{Name: "approve", Label: "Approve", Type: approval.Success, Output: []byte(`{"approved":true}`)},
		Recipient:   "ben@example.com",
		ExpiresAt:   now.Add(72 * time.Hour),
		RedirectURL: "https://example.com/after",
	}
}

func TestRoundTrip(t *testing.T) {
	kr := mustKeyring(t, testKey(t))
	tests := []struct {
		name   string
		claims Claims
	}{
		{"sfn-like token", sampleClaims(sfnToken(t, 2048))},
		{"uuid token", sampleClaims("0b7f3c39-5a0e-4b8e-9b43-1f6cbb1f2f6e")},
		{"base64 lookalike, not canonical", sampleClaims("YWJj\n")},
		{"failure action", Claims{
			TaskToken: "tok",
			Action:    approval.Action{Name: "reject", Type: approval.Failure, Error: "Rejected", Cause: "no <b>way</b>"},
			Recipient: "José <jose@example.com>",
			ExpiresAt: now.Add(time.Minute),
		}},
		{"heartbeat", Claims{TaskToken: "t", Action: approval.Action{Name: "snooze", Type: approval.Heartbeat}, ExpiresAt: now.Add(time.Second)}},
		{"quorum and requester", func() Claims {
			c := sampleClaims(sfnToken(t, 2048))
			c.MinApprovals, c.RequestedBy = 3, "Ann Requester <ann@example.com>"
			return c
		}()},
		{"channel link with approvers", func() Claims {
			c := sampleClaims(sfnToken(t, 2048))
			c.Recipient, c.MinApprovals, c.RequestedBy = ChannelRecipient("ops"), 2, "ann@example.com"
			c.Approvers = NewApproverSet("ben@example.com", "Cy@Example.com")
			return c
		}()},
		{"approvers without a policy", func() Claims {
			c := sampleClaims("tok")
			c.Recipient, c.Approvers = ChannelRecipient("ops"), NewApproverSet("ben@example.com")
			return c
		}()},
		{"requester only", func() Claims {
			c := sampleClaims("tok")
			c.MinApprovals, c.RequestedBy = 1, "ann@example.com"
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := kr.Mint(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			got, err := kr.Open(tok, now)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			want := tt.claims
			want.KeyID = kr.KeyIDs()[0]
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			if strings.Contains(tok, "approve") || strings.Contains(tok, "ben") {
				t.Errorf("link shows plaintext: %s", tok)
			}
		})
	}
}

func TestMintIsRandomized(t *testing.T) {
	kr := mustKeyring(t, testKey(t))
	c := sampleClaims("tok")
	a, _ := kr.Mint(c)
	b, _ := kr.Mint(c)
	if a == b {
		t.Fatal("two mints of the same claims gave the same link; nonce not random")
	}
}

func TestOpenRejects(t *testing.T) {
	k1, k2 := testKey(t), testKey(t)
	kr := mustKeyring(t, k1)
	tok, err := kr.Mint(sampleClaims(sfnToken(t, 64)))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	kidLen := int(raw[1])
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	expiredTok, _ := kr.Mint(Claims{TaskToken: "t", Action: approval.Action{Name: "a", Type: approval.Success}, ExpiresAt: now.Add(-time.Second)})
	otherKID := strings.Replace(k2, strings.Split(k2, ":")[0], strings.Split(k1, ":")[0], 1)

	tests := []struct {
		name    string
		kr      *Keyring
		token   string
		wantErr error
	}{
		{"version byte", kr, flip(0), ErrInvalid},
		{"kid length", kr, flip(1), ErrInvalid},
		{"kid", kr, flip(2), ErrInvalid},
		{"nonce", kr, flip(2 + kidLen), ErrInvalid},
		{"ciphertext", kr, flip(2 + kidLen + 12 + 3), ErrInvalid},
		{"tag", kr, flip(len(raw) - 1), ErrInvalid},
		{"truncated by one byte", kr, base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]), ErrInvalid},
		{"truncated to header", kr, base64.RawURLEncoding.EncodeToString(raw[:2+kidLen]), ErrInvalid},
		{"extended", kr, base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), raw...), 0)), ErrInvalid},
		{"empty", kr, "", ErrInvalid},
		{"garbage", kr, "not a link at all!", ErrInvalid},
		{"padded base64", kr, tok + "==", ErrInvalid},
		{"key unknown to the keyring", mustKeyring(t, k2), tok, ErrInvalid},
		{"same kid, different key", mustKeyring(t, otherKID), tok, ErrInvalid},
		{"expired", kr, expiredTok, ErrExpired},
		{"oversized", kr, strings.Repeat("A", maxEncoded+1), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.kr.Open(tt.token, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestExpiredReturnsClaims(t *testing.T) {
	kr := mustKeyring(t, testKey(t))
	c := sampleClaims("tok")
	c.ExpiresAt = now
	tok, _ := kr.Mint(c)
	got, err := kr.Open(tok, now)
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired at the exact expiry second", err)
	}
	if got.Action.Name != "approve" {
		t.Errorf("expired link lost its claims: %+v", got)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := testKey(t), testKey(t)
	before := mustKeyring(t, oldKey)
	during := mustKeyring(t, newKey+","+oldKey)
	after := mustKeyring(t, newKey)

	oldLink, _ := before.Mint(sampleClaims("tok"))
	newLink, _ := during.Mint(sampleClaims("tok"))

	if _, err := during.Open(oldLink, now); err != nil {
		t.Errorf("link from the old key fails during rotation: %v", err)
	}
	c, err := during.Open(newLink, now)
	if err != nil {
		t.Fatalf("link from the new key fails: %v", err)
	}
	if c.KeyID != during.KeyIDs()[0] {
		t.Errorf("minted with %q, want the first key %q", c.KeyID, during.KeyIDs()[0])
	}
	if _, err := after.Open(oldLink, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("old link after the old key is removed: err = %v, want ErrInvalid", err)
	}
}

func TestParseKeyring(t *testing.T) {
	good := testKey(t)
	_, b64 := func() (string, string) { a, b, _ := strings.Cut(good, ":"); return a, b }()
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name    string
		in      string
		wantIDs []string
		wantErr string
	}{
		{"one", "k1:" + b64, []string{"k1"}, ""},
		{"two with spaces", " k1:" + b64 + " , k2:" + b64 + " ", []string{"k1", "k2"}, ""},
		{"url-safe unpadded", "k1:" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)), []string{"k1"}, ""},
		{"empty", "", nil, "no keys"},
		{"no colon", b64, nil, "want kid:base64key"},
		{"short key", "k1:" + short, nil, "must be 32 bytes"},
		{"not base64", "k1:%%%", nil, "not valid base64"},
		{"duplicate id", "k1:" + b64 + ",k1:" + b64, nil, "appears twice"},
		{"bad id", "k 1:" + b64, nil, "only letters"},
		{"empty id", ":" + b64, nil, "empty key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := ParseKeyring(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), b64) {
					t.Errorf("error echoes key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantIDs, kr.KeyIDs()); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if strings.Contains(kr.String(), b64) {
				t.Errorf("String() shows key material")
			}
		})
	}
}

// The design's compactness promise: a 2048-character task token gives a URL
// under 2,300 characters for each default action.
func TestURLLength(t *testing.T) {
	kr := mustKeyring(t, testKey(t))
	token := sfnToken(t, 2048)
	if len(token) != 2048 {
		t.Fatalf("token has %d chars", len(token))
	}
	for _, a := range approval.DefaultActions() {
		u, err := kr.URL("https://approvals.example.com", Claims{
			TaskToken: token, Action: a, Recipient: "approver.name@example.com", ExpiresAt: now.Add(72 * time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(u) >= 2300 {
			t.Errorf("%s: URL has %d characters, want < 2300", a.Name, len(u))
		}
		t.Logf("%s: %d characters", a.Name, len(u))
	}
}

// A request's approver policy costs a link a few bytes, so the promise holds
// for a quorum request with a requester too.
func TestURLLengthWithPolicy(t *testing.T) {
	kr := mustKeyring(t, testKey(t))
	token := sfnToken(t, 2048)
	for _, a := range approval.DefaultActions() {
		u, err := kr.URL("https://approvals.example.com", Claims{
			TaskToken: token, Action: a, Recipient: "approver.name@example.com", ExpiresAt: now.Add(72 * time.Hour),
			MinApprovals: 50, RequestedBy: "requester.name@example.com",
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(u) >= 2300 {
			t.Errorf("%s: URL has %d characters, want < 2300", a.Name, len(u))
		}
	}
}

// Links minted before the approver policy existed have no policy tail;
// they open as a quorum of one with no requester, and a request without a
// policy still mints exactly that layout (so a redeemer of before opens it).
func TestLinkWithoutPolicy(t *testing.T) {
	old := []byte{0}                                // flags: token stored as is
	old = append(old, 0x80, 0xa0, 0xa6, 0xe7, 0x06) // expiry, uvarint
	for _, f := range []string{"tok", "approve", "", "success", "", "", "", "ben@example.com", ""} {
		old = append(old, byte(len(f)))
		old = append(old, f...)
	}
	c, err := decodeClaims(old)
	if err != nil {
		t.Fatalf("decode a link of before: %v", err)
	}
	if c.MinApprovals != 0 || c.RequestedBy != "" || c.Quorum() != 1 || c.Recipient != "ben@example.com" {
		t.Errorf("got MinApprovals %d, RequestedBy %q, Quorum %d, Recipient %q", c.MinApprovals, c.RequestedBy, c.Quorum(), c.Recipient)
	}
	plain := encodeClaims(Claims{TaskToken: "tok", Action: approval.Action{Name: "approve", Type: approval.Success},
		Recipient: "ben@example.com", ExpiresAt: c.ExpiresAt, MinApprovals: 1})
	if string(plain) != string(old) {
		t.Errorf("a request without a policy minted\n%x\nwant the layout of before\n%x", plain, old)
	}
}

// A channel link carries its request's approvers, up to the worker's 50
// recipients, and still fits a Slack button's url (3,000 characters) with a
// 2048-character task token, a quorum and a requester, for every default
// action.
func TestURLLengthWithApprovers(t *testing.T) {
	kr := mustKeyring(t, testKey(t))
	token := sfnToken(t, 2048)
	addrs := make([]string, 50)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("approver.number.%02d@example.com", i)
	}
	for _, a := range approval.DefaultActions() {
		c := Claims{
			TaskToken: token, Action: a, Recipient: ChannelRecipient("platform-approvals"), ExpiresAt: now.Add(72 * time.Hour),
			MinApprovals: 50, RequestedBy: "requester.name@example.com",
		}
		plain, err := kr.URL("https://approvals.example.com", c)
		if err != nil {
			t.Fatal(err)
		}
		c.Approvers = NewApproverSet(addrs...)
		u, err := kr.URL("https://approvals.example.com", c)
		if err != nil {
			t.Fatal(err)
		}
		if len(u) >= 3000 {
			t.Errorf("%s: URL has %d characters, want < 3000 (Slack's button url)", a.Name, len(u))
		}
		// 50 digests of 8 bytes and their count, in base64url.
		if grew := len(u) - len(plain); grew > 540 {
			t.Errorf("%s: 50 approvers added %d characters, want at most 540", a.Name, grew)
		}
		t.Logf("%s: %d characters, %d for the approvers", a.Name, len(u), len(u)-len(plain))
	}
}

func TestApproverSet(t *testing.T) {
	s := NewApproverSet("ben@example.com", "Cy.Smith@Example.COM")
	tests := []struct {
		addr string
		want bool
	}{
		{"ben@example.com", true},
		{"BEN@EXAMPLE.COM", true},
		{"cy.smith@example.com", true},
		{"ann@example.com", false},
		{"ben@example.co", false},
		{"", false},
		// Only ASCII letters fold, as in identity.SameEmail: the Kelvin
		// sign is not a "k".
		{"ben@example.com\u212a", false},
	}
	for _, tt := range tests {
		if got := s.Has(tt.addr); got != tt.want {
			t.Errorf("Has(%q) = %t, want %t", tt.addr, got, tt.want)
		}
	}
	if NewApproverSet() != nil || NewApproverSet().Has("ben@example.com") {
		t.Error("an empty set is not nil or has a member")
	}
	kelvin := NewApproverSet("\u212aim@example.com")
	if kelvin.Has("kim@example.com") {
		t.Error("Unicode folding: \u212aim matched kim")
	}
}

// Only a channel link with approvers carries the tail: the same claims
// without them encode as before, and a tail that does not match its count
// does not open.
func TestApproversTail(t *testing.T) {
	c := sampleClaims("tok")
	plain := encodeClaims(c)
	c.Approvers = NewApproverSet("ben@example.com", "cy@example.com")
	with := encodeClaims(c)
	if len(with) != len(plain)+1+16 || string(with[1:len(plain)]) != string(plain[1:]) || with[0] != plain[0]|flagApprovers {
		t.Fatalf("approvers tail:\n%x\nwant\n%x plus a flag, a count and 16 bytes", with, plain)
	}
	for name, b := range map[string][]byte{
		"one digest short":  with[:len(with)-8],
		"a byte too many":   append(append([]byte(nil), with...), 0),
		"zero approvers":    append(append([]byte(nil), with[:len(plain)]...), 0),
		"flag without tail": append([]byte{with[0]}, plain[1:]...),
	} {
		if _, err := decodeClaims(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzOpen(f *testing.F) {
	key := "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	kr := mustKeyring(f, key)
	for _, c := range []Claims{sampleClaims("tok"), sampleClaims(sfnToken(f, 128))} {
		tok, _ := kr.Mint(c)
		f.Add(tok)
	}
	f.Add("")
	f.Add("AQJrMQ")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := kr.Open(s, now)
		if err == nil && c.TaskToken == "" {
			t.Fatalf("accepted a link with no token")
		}
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) {
			t.Fatalf("unexpected error type: %v", err)
		}
	})
}

// FuzzDecodeClaims reaches the plaintext decoder directly, which the AEAD
// otherwise shields from random input.
func FuzzDecodeClaims(f *testing.F) {
	f.Add(encodeClaims(sampleClaims("tok")))
	f.Add(encodeClaims(sampleClaims(sfnToken(f, 64))))
	withApprovers := sampleClaims("tok")
	withApprovers.MinApprovals, withApprovers.Approvers = 2, NewApproverSet("ben@example.com", "cy@example.com")
	f.Add(encodeClaims(withApprovers))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeClaims(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to something that decodes the same.
		c2, err := decodeClaims(encodeClaims(c))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(c, c2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func BenchmarkMint(b *testing.B) {
	kr := mustKeyring(b, testKey(b))
	c := sampleClaims(sfnToken(b, 2048))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Mint(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	kr := mustKeyring(b, testKey(b))
	tok, _ := kr.Mint(sampleClaims(sfnToken(b, 2048)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Open(tok, now); err != nil {
			b.Fatal(err)
		}
	}
}
