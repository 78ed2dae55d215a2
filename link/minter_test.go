package link

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

// mintBefore is a link as Keyring.URL minted it before the Minter: the
// token decoded for every link, the plaintext built field by field,
// sealed with the random-nonce AEAD and encoded after the base.
func mintBefore(t *testing.T, kr *Keyring, baseURL string, c Claims) string {
	t.Helper()
	var flags byte
	token := []byte(c.TaskToken)
	if len(c.TaskToken) >= 4 && len(c.TaskToken)%4 == 0 && !strings.ContainsAny(c.TaskToken, "\r\n") {
		if dec, err := base64.StdEncoding.Strict().DecodeString(c.TaskToken); err == nil {
			flags |= flagTokenBase64
			token = dec
		}
	}
	fields := [][]byte{token, []byte(c.Action.Name), []byte(c.Action.Label), []byte(c.Action.Type), c.Action.Output,
		[]byte(c.Action.Error), []byte(c.Action.Cause), []byte(c.Recipient), []byte(c.RedirectURL)}
	policy := c.MinApprovals > 1 || c.RequestedBy != ""
	if policy {
		flags |= flagPolicy
	}
	if len(c.Approvers) > 0 {
		flags |= flagApprovers
	}
	b := []byte{flags}
	b = binary.AppendUvarint(b, uint64(max(c.ExpiresAt.Unix(), 0)))
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	if policy {
		b = binary.AppendUvarint(b, uint64(max(c.MinApprovals, 1)))
		b = binary.AppendUvarint(b, uint64(len(c.RequestedBy)))
		b = append(b, c.RequestedBy...)
	}
	if len(c.Approvers) > 0 {
		b = binary.AppendUvarint(b, uint64(len(c.Approvers)))
		for _, d := range c.Approvers {
			b = append(b, d[:]...)
		}
	}
	k := &kr.keys[0]
	hdr := append([]byte{Version, byte(len(k.id))}, k.id...)
	sealed := k.aead.Seal(append([]byte(nil), hdr...), nil, b, hdr)
	return strings.TrimRight(baseURL, "/") + PathPrefix + base64.RawURLEncoding.EncodeToString(sealed)
}

// TestMinterMatchesMintBefore: a Minter decodes the token once and reuses
// its buffers from link to link, and still gives, for the same nonces,
// every link byte for byte as the old per-link mint did, whatever the
// links before it carried (actions, recipients, approvers on and off).
func TestMinterMatchesMintBefore(t *testing.T) {
	kr := mustKeyring(t, testKey(t))
	const base = "https://approvals.example.com/"
	reject := approval.Action{Name: "reject", Label: "Reject", Type: approval.Failure, Error: "Rejected", Cause: "Rejected by approver"}
	approvers := NewApproverSet("ben@example.com", "Cy@Example.com")
	requests := map[string]Claims{
		"sfn-like token":                  sampleClaims(sfnToken(t, 2048)),
		"uuid token":                      sampleClaims("0b7f3c39-5a0e-4b8e-9b43-1f6cbb1f2f6e"),
		"base64 lookalike, not canonical": sampleClaims("YWJj\n"),
		"base64 lookalike, not strict":    sampleClaims("YWJ="),
		"one padding byte":                sampleClaims("YWI="),
		"quorum and requester": func() Claims {
			c := sampleClaims(sfnToken(t, 1024))
			c.MinApprovals, c.RequestedBy = 3, "Ann Requester <ann@example.com>"
			return c
		}(),
	}
	type link struct {
		action    approval.Action
		recipient string
		approvers ApproverSet
	}
	links := []link{
		{sampleClaims("").Action, "ben@example.com", nil},
		{reject, "ben@example.com", nil},
		{sampleClaims("").Action, ChannelRecipient("ops"), approvers},
		{reject, "a-much-longer-recipient-address-than-the-others@subdomain.example.com", nil},
		{reject, ChannelRecipient("ops"), approvers},
	}
	for name, req := range requests {
		t.Run(name, func(t *testing.T) {
			m := kr.Minter(base, req)
			for i, l := range links {
				c := req
				c.Action, c.Recipient, c.Approvers = l.action, l.recipient, l.approvers
				cryptotest.SetGlobalRandom(t, uint64(i+1))
				want := mintBefore(t, kr, base, c)
				cryptotest.SetGlobalRandom(t, uint64(i+1))
				got, err := m.URL(l.action, l.recipient, l.approvers)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("link %d:\n got %s\nwant %s", i, got, want)
				}
				cryptotest.SetGlobalRandom(t, uint64(i+1))
				if viaURL, _ := kr.URL(base, c); viaURL != want {
					t.Fatalf("link %d: Keyring.URL gives another link than the Minter", i)
				}
				cryptotest.SetGlobalRandom(t, uint64(i+1))
				if tok, _ := kr.Mint(c); base[:len(base)-1]+PathPrefix+tok != want {
					t.Fatalf("link %d: Keyring.Mint gives another link than the Minter", i)
				}
			}
		})
	}
}

// TestMinterEmptyToken: minting for a request without a token fails as
// Keyring.URL always has, at the link, not when the Minter is made.
func TestMinterEmptyToken(t *testing.T) {
	kr := mustKeyring(t, testKey(t))
	m := kr.Minter("https://approvals.example.com", Claims{})
	if _, err := m.URL(sampleClaims("").Action, "ben@example.com", nil); err == nil || err.Error() != "mint link: empty task token" {
		t.Fatalf("URL error = %v, want mint link: empty task token", err)
	}
}

// TestOpenClaimsOwnTheirBytes: Open decodes into a reused buffer; the
// claims it returned must not change when later links are opened.
func TestOpenClaimsOwnTheirBytes(t *testing.T) {
	kr := mustKeyring(t, testKey(t))
	first := sampleClaims(sfnToken(t, 2048))
	first.MinApprovals, first.RequestedBy = 2, "ann@example.com"
	first.Recipient, first.Approvers = ChannelRecipient("ops"), NewApproverSet("ben@example.com")
	tok, err := kr.Mint(first)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kr.Open(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		other := Claims{TaskToken: sfnToken(t, 2048), Recipient: strings.Repeat("x", i) + "@example.com", ExpiresAt: now.Add(1e9),
			Action: approval.Action{Name: "zzzzzzz", Label: "ZZZZZZZ", Type: approval.Heartbeat}, RedirectURL: "https://example.org/zzzz"}
		o, err := kr.Mint(other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kr.Open(o, now); err != nil {
			t.Fatal(err)
		}
	}
	want := first
	want.KeyID = kr.KeyIDs()[0]
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims after other opens (-want +got):\n%s", diff)
	}
}
