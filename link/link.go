// Package link is the format of the signed links in approval emails, shared
// by the worker (which mints them) and the redeemer (which opens them).
//
// A link is stateless: it carries the task token, the action, the recipient,
// the expiry and the redirect URL, encrypted and authenticated with AES-256-GCM
// under a key from the keyring. Nothing in it can be read or changed without
// the key. The wire form, base64url without padding, is
//
//	version(1) | len(kid)(1) | kid | nonce(12) | ciphertext | tag(16)
//
// where version, len(kid) and kid are the additional authenticated data, so
// a link cannot be moved to another key or version. The plaintext is a
// compact binary record (see encodeClaims); a request's approver policy
// (minApprovals above 1, requestedBy) and a channel link's approvers are
// optional tails flagged in it, so links without them are byte for byte
// what they were before those existed. Task tokens that are canonical
// standard base64, as Step Functions tokens are, are stored decoded, which is
// what keeps a link for a 2048-character token under 2,300 characters.
package link

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

// Version is the current wire version. Decoders reject any other.
const Version = 1

// PathPrefix is the path under the redeemer's base URL that links use.
const PathPrefix = "/a/"

var (
	// ErrInvalid means the link is malformed, altered, or minted with a key
	// not in the keyring. Nothing about its contents can be trusted.
	ErrInvalid = errors.New("invalid link")
	// ErrExpired means the link is authentic but past its expiry. Open
	// returns the claims along with it so a page can say what expired.
	ErrExpired = errors.New("link expired")
)

// Claims is what a link carries.
type Claims struct {
	TaskToken   string
	Action      approval.Action
	Recipient   string
	ExpiresAt   time.Time // whole seconds
	RedirectURL string
	// MinApprovals is the request's quorum; 0 and 1 both mean one
	// approval decides.
	MinApprovals int
	// RequestedBy is the requester's address, who may never decide; empty
	// when the request names none.
	RequestedBy string
	// Approvers is, for a channel's link, who may decide through it under
	// sign-in (the request's to and cc); empty on an address's link and
	// when the request lists no address.
	Approvers ApproverSet
	// KeyID is the key that minted the link; set by Open, ignored by Mint.
	KeyID string
}

// Quorum is the number of approvals the link's request needs: MinApprovals,
// at least 1.
func (c Claims) Quorum() int { return max(c.MinApprovals, 1) }

const (
	flagTokenBase64 = 1 << iota // token stored as decoded standard base64
	flagPolicy                  // minApprovals (uvarint) and requestedBy follow the fields
	flagApprovers               // a count (uvarint) and that many 8-byte digests follow
)

const knownFlags = flagTokenBase64 | flagPolicy | flagApprovers

// MaxMinApprovals bounds a link's quorum: far above any request's number
// of approvers (the worker allows 50).
const MaxMinApprovals = 1000

// maxEncoded bounds what Open will look at, far above any real link, so a
// hostile caller cannot make it decode megabytes.
const maxEncoded = 64 << 10

// Mint seals claims with the keyring's first key and returns the encoded link
// token (the part after PathPrefix).
func (kr *Keyring) Mint(c Claims) (string, error) {
	sealed, err := kr.seal(c)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// seal is Mint before the base64 encoding.
func (kr *Keyring) seal(c Claims) ([]byte, error) {
	if c.TaskToken == "" {
		return nil, errors.New("mint link: empty task token")
	}
	k := &kr.keys[0]
	hdr := make([]byte, 0, 2+len(k.id))
	hdr = append(hdr, Version, byte(len(k.id)))
	hdr = append(hdr, k.id...)

	plain := encodeClaims(c)
	out := make([]byte, len(hdr), len(hdr)+k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	copy(out, hdr)
	return k.aead.Seal(out, nil, plain, hdr), nil
}

// URL mints a link and joins it to the redeemer's base URL.
func (kr *Keyring) URL(baseURL string, c Claims) (string, error) {
	sealed, err := kr.seal(c)
	if err != nil {
		return "", err
	}
	// Encoded straight after the base: a link is a couple of KB, and
	// joining an encoded token to the base copied it once more.
	baseURL = strings.TrimRight(baseURL, "/")
	enc := base64.RawURLEncoding
	b := make([]byte, 0, len(baseURL)+len(PathPrefix)+enc.EncodedLen(len(sealed)))
	b = append(append(b, baseURL...), PathPrefix...)
	return string(enc.AppendEncode(b, sealed)), nil
}

// Open verifies and decrypts an encoded link token. It returns ErrInvalid for
// anything not minted by a key in the keyring, and the claims with ErrExpired
// for an authentic link past its expiry at now. It never panics, whatever
// the input.
func (kr *Keyring) Open(token string, now time.Time) (Claims, error) {
	if len(token) == 0 || len(token) > maxEncoded {
		return Claims{}, ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return Claims{}, ErrInvalid
	}
	if len(raw) < 2 || raw[0] != Version {
		return Claims{}, ErrInvalid
	}
	kidLen := int(raw[1])
	if len(raw) < 2+kidLen {
		return Claims{}, ErrInvalid
	}
	hdr := raw[:2+kidLen]
	k, ok := kr.byKID[string(raw[2:2+kidLen])]
	if !ok {
		return Claims{}, ErrInvalid
	}
	body := raw[len(hdr):]
	if len(body) < k.aead.NonceSize()+k.aead.Overhead() {
		return Claims{}, ErrInvalid
	}
	plain, err := k.aead.Open(nil, nil, body, hdr)
	if err != nil {
		return Claims{}, ErrInvalid
	}
	c, err := decodeClaims(plain)
	if err != nil {
		return Claims{}, ErrInvalid
	}
	c.KeyID = k.id
	if !now.Before(c.ExpiresAt) {
		return c, ErrExpired
	}
	return c, nil
}

// Plaintext layout, after the flags byte and the expiry (uvarint Unix
// seconds): length-prefixed (uvarint) fields in this order.
//
//	token, action name, action label, action type, output, error, cause,
//	recipient, redirect URL
//
// With flagPolicy, minApprovals (uvarint) and requestedBy (length-prefixed)
// follow. The flag is set only when the policy says something (a quorum
// above 1 or a requester), so a plain request's links stay as short as
// before and open in a redeemer that predates the policy. With
// flagApprovers, set only for a non-empty Approvers, the set's size
// (uvarint) and its digests come last, so only channel links grow.
func encodeClaims(c Claims) []byte {
	var flags byte
	token := []byte(c.TaskToken)
	if dec, ok := canonicalBase64(c.TaskToken); ok {
		flags |= flagTokenBase64
		token = dec
	}
	fields := [][]byte{
		token,
		[]byte(c.Action.Name),
		[]byte(c.Action.Label),
		[]byte(c.Action.Type),
		c.Action.Output,
		[]byte(c.Action.Error),
		[]byte(c.Action.Cause),
		[]byte(c.Recipient),
		[]byte(c.RedirectURL),
	}
	policy := c.MinApprovals > 1 || c.RequestedBy != ""
	if policy {
		flags |= flagPolicy
	}
	n := 1 + 4*binary.MaxVarintLen64 + len(c.RequestedBy) + len(c.Approvers)*len(Digest{})
	for _, f := range fields {
		n += binary.MaxVarintLen64 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, flags)
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
		b[0] |= flagApprovers
		b = binary.AppendUvarint(b, uint64(len(c.Approvers)))
		for _, d := range c.Approvers {
			b = append(b, d[:]...)
		}
	}
	return b
}

const numFields = 9

func decodeClaims(b []byte) (Claims, error) {
	if len(b) < 1 {
		return Claims{}, errors.New("short")
	}
	flags := b[0]
	if flags&^knownFlags != 0 {
		return Claims{}, errors.New("unknown flags")
	}
	b = b[1:]
	exp, n := binary.Uvarint(b)
	if n <= 0 || exp > 1<<40 {
		return Claims{}, errors.New("bad expiry")
	}
	b = b[n:]
	var f [numFields][]byte
	for i := range f {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return Claims{}, fmt.Errorf("field %d: bad length", i)
		}
		f[i] = b[n : n+int(l)]
		b = b[n+int(l):]
	}
	var minApprovals int
	var requestedBy string
	if flags&flagPolicy != 0 {
		m, n := binary.Uvarint(b)
		if n <= 0 || m < 1 || m > MaxMinApprovals {
			return Claims{}, errors.New("bad minApprovals")
		}
		b = b[n:]
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return Claims{}, errors.New("requestedBy: bad length")
		}
		if m == 1 && l == 0 {
			// Mint flags only a policy that says something; this one
			// would not encode back to itself.
			return Claims{}, errors.New("empty policy")
		}
		minApprovals, requestedBy = int(m), string(b[n:n+int(l)])
		b = b[n+int(l):]
	}
	var approvers ApproverSet
	if flags&flagApprovers != 0 {
		k, n := binary.Uvarint(b)
		if n <= 0 || k < 1 || k > MaxApprovers || k*uint64(len(Digest{})) != uint64(len(b)-n) {
			return Claims{}, errors.New("bad approvers")
		}
		b = b[n:]
		approvers = make(ApproverSet, k)
		for i := range approvers {
			b = b[copy(approvers[i][:], b):]
		}
	}
	if len(b) != 0 {
		return Claims{}, errors.New("trailing bytes")
	}
	token := string(f[0])
	if flags&flagTokenBase64 != 0 {
		token = base64.StdEncoding.EncodeToString(f[0])
	}
	c := Claims{
		TaskToken: token,
		Action: approval.Action{
			Name:  string(f[1]),
			Label: string(f[2]),
			Type:  approval.ActionType(f[3]),
			Error: string(f[5]),
			Cause: string(f[6]),
		},
		Recipient:    string(f[7]),
		RedirectURL:  string(f[8]),
		ExpiresAt:    time.Unix(int64(exp), 0).UTC(),
		MinApprovals: minApprovals,
		RequestedBy:  requestedBy,
		Approvers:    approvers,
	}
	if len(f[4]) > 0 {
		c.Action.Output = append([]byte(nil), f[4]...)
	}
	if c.TaskToken == "" || !c.Action.Type.Valid() {
		return Claims{}, errors.New("bad claims")
	}
	return c, nil
}

// canonicalBase64 decodes s if it is standard padded base64 that encodes back
// to exactly s; only then can the decoded form stand in for the token. The
// strict decoder accepts only that form, but for line breaks, which it
// skips: refusing those spares encoding the token again to compare.
func canonicalBase64(s string) ([]byte, bool) {
	if len(s) < 4 || len(s)%4 != 0 || strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}
