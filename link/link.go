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
	"sync"
	"time"
	"unsafe"

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
	m := kr.minter("", c)
	sealed, err := m.seal(c.Action, c.Recipient, c.Approvers)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	b := make([]byte, enc.EncodedLen(len(sealed)))
	enc.Encode(b, sealed)
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// URL mints a link and joins it to the redeemer's base URL.
func (kr *Keyring) URL(baseURL string, c Claims) (string, error) {
	m := kr.minter(baseURL, c)
	return m.URL(c.Action, c.Recipient, c.Approvers)
}

// Minter mints the links of one request, which share a task token, an
// expiry, a redirect URL and a policy: the token is decoded once, however
// many links are minted, and each link is sealed with a nonce of its own.
// Not safe for concurrent use.
type Minter struct {
	k    *key
	base string // the base URL without its trailing slashes
	req  Claims
	// plain holds the plaintext's head (flags, expiry, token) and, after
	// it, the last link's other fields; sealed is the last link sealed.
	plain  []byte
	head   int
	sealed []byte
}

// Minter returns a Minter for the links under baseURL that carry c's task
// token, expiry, redirect URL, minApprovals and requestedBy; c's Action,
// Recipient and Approvers are given for each link instead.
func (kr *Keyring) Minter(baseURL string, c Claims) *Minter {
	m := kr.minter(baseURL, c)
	return &m
}

func (kr *Keyring) minter(baseURL string, c Claims) Minter {
	m := Minter{k: &kr.keys[0], base: strings.TrimRight(baseURL, "/"), req: c}
	if c.TaskToken != "" {
		// One allocation for both buffers: the plaintext, then the
		// sealed link, which is the plaintext and a little more. The
		// plaintext's capacity ends where the sealed link begins, so
		// that it never grows into it.
		plain := claimsHeadLen(c) + minterSlack
		sealed := 2 + len(m.k.id) + m.k.aead.Overhead() + plain
		buf := make([]byte, plain+sealed)
		m.plain = appendClaimsHead(buf[:0:plain], c)
		m.head = len(m.plain)
		m.sealed = buf[plain:plain]
	}
	return m
}

// minterSlack is room in a Minter's buffers for the fields after the token,
// which run to a few hundred bytes in a real request.
const minterSlack = 512

// URL mints the link for action a and recipient, with approvers on a
// channel's link, joined to the base URL: what Keyring.URL gives for the
// Minter's claims with these fields.
func (m *Minter) URL(a approval.Action, recipient string, approvers ApproverSet) (string, error) {
	sealed, err := m.seal(a, recipient, approvers)
	if err != nil {
		return "", err
	}
	// The link is encoded straight after the base into a buffer of its
	// exact size, which becomes the string: a link is a couple of KB, and
	// a conversion would copy it once more.
	enc := base64.RawURLEncoding
	b := make([]byte, 0, len(m.base)+len(PathPrefix)+enc.EncodedLen(len(sealed)))
	b = append(append(b, m.base...), PathPrefix...)
	b = enc.AppendEncode(b, sealed)
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// seal returns the link's wire form before the base64 encoding, in a
// buffer that the next call reuses.
func (m *Minter) seal(a approval.Action, recipient string, approvers ApproverSet) ([]byte, error) {
	if m.req.TaskToken == "" {
		return nil, errors.New("mint link: empty task token")
	}
	c := m.req
	c.Action, c.Recipient, c.Approvers = a, recipient, approvers
	plain := appendClaimsTail(m.plain[:m.head], c)
	m.plain = plain

	k := m.k
	hdrLen := 2 + len(k.id)
	if n := hdrLen + k.aead.Overhead() + len(plain); cap(m.sealed) < n {
		m.sealed = make([]byte, 0, n+minterSlack)
	}
	s := append(m.sealed[:0], Version, byte(len(k.id)))
	s = append(s, k.id...)
	s = k.aead.Seal(s, nil, plain, s[:hdrLen])
	m.sealed = s
	return s, nil
}

// Open verifies and decrypts an encoded link token. It returns ErrInvalid for
// anything not minted by a key in the keyring, and the claims with ErrExpired
// for an authentic link past its expiry at now. It never panics, whatever
// the input.
func (kr *Keyring) Open(token string, now time.Time) (Claims, error) {
	if len(token) == 0 || len(token) > maxEncoded {
		return Claims{}, ErrInvalid
	}
	// The link is decoded into a pooled buffer and decrypted in place:
	// the claims copy out what they keep.
	bp := openBuffers.Get().(*[]byte)
	defer openBuffers.Put(bp)
	n := base64.RawURLEncoding.DecodedLen(len(token))
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	raw := (*bp)[:n]
	n, err := base64.RawURLEncoding.Decode(raw, readOnlyBytes(token))
	if err != nil {
		return Claims{}, ErrInvalid
	}
	raw = raw[:n]
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
	if len(body) < nonceSize+k.gcm.Overhead() {
		return Claims{}, ErrInvalid
	}
	// What the random-nonce AEAD that sealed it does, without its copy of
	// the ciphertext: the nonce comes first.
	nonce, ct := body[:nonceSize], body[nonceSize:]
	plain, err := k.gcm.Open(ct[:0], nonce, ct, hdr)
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

// openBuffers hold decoded links for Open; a link for the longest task
// token fits in one of the size they start at.
var openBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

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
	b := make([]byte, 0, claimsHeadLen(c)+claimsTailLen(c))
	return appendClaimsTail(appendClaimsHead(b, c), c)
}

// claimsHeadLen bounds what appendClaimsHead appends.
func claimsHeadLen(c Claims) int {
	return 1 + 2*binary.MaxVarintLen64 + len(c.TaskToken)
}

// claimsTailLen bounds what appendClaimsTail appends.
func claimsTailLen(c Claims) int {
	n := 2*binary.MaxVarintLen64 + len(c.RequestedBy) + binary.MaxVarintLen64 + len(c.Approvers)*len(Digest{})
	for _, l := range []int{len(c.Action.Name), len(c.Action.Label), len(c.Action.Type), len(c.Action.Output),
		len(c.Action.Error), len(c.Action.Cause), len(c.Recipient), len(c.RedirectURL)} {
		n += binary.MaxVarintLen64 + l
	}
	return n
}

// appendClaimsHead starts a plaintext in b (empty) with what all of a
// request's links share: the flags (but flagApprovers, which is the
// link's), the expiry and the token, decoded here once.
func appendClaimsHead(b []byte, c Claims) []byte {
	var flags byte
	if c.MinApprovals > 1 || c.RequestedBy != "" {
		flags |= flagPolicy
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(max(c.ExpiresAt.Unix(), 0)))
	if l, ok := canonicalBase64Len(c.TaskToken); ok {
		at := len(b)
		b = binary.AppendUvarint(b, uint64(l))
		if dec, err := strictStd.AppendDecode(b, readOnlyBytes(c.TaskToken)); err == nil && len(dec)-len(b) == l {
			dec[0] |= flagTokenBase64
			return dec
		}
		b = b[:at]
	}
	b = binary.AppendUvarint(b, uint64(len(c.TaskToken)))
	return append(b, c.TaskToken...)
}

// appendClaimsTail ends a plaintext that appendClaimsHead started for the
// same claims.
func appendClaimsTail(b []byte, c Claims) []byte {
	for _, f := range [...]string{c.Action.Name, c.Action.Label, string(c.Action.Type)} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Action.Output)))
	b = append(b, c.Action.Output...)
	for _, f := range [...]string{c.Action.Error, c.Action.Cause, c.Recipient, c.RedirectURL} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	if c.MinApprovals > 1 || c.RequestedBy != "" {
		b = binary.AppendUvarint(b, uint64(max(c.MinApprovals, 1)))
		b = binary.AppendUvarint(b, uint64(len(c.RequestedBy)))
		b = append(b, c.RequestedBy...)
	}
	b[0] &^= flagApprovers
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

func decodeClaims(plain []byte) (Claims, error) {
	b := plain
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
	var requestedBy []byte
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
		minApprovals, requestedBy = int(m), b[n:n+int(l)]
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
	var token string
	if flags&flagTokenBase64 != 0 {
		// Encoded into a buffer of its size that becomes the string.
		t := make([]byte, base64.StdEncoding.EncodedLen(len(f[0])))
		base64.StdEncoding.Encode(t, f[0])
		token = unsafe.String(unsafe.SliceData(t), len(t))
	} else {
		token = string(f[0])
	}
	// The fields after the token lie in order in the plaintext: one copy
	// of them all, which each field's string is cut from, rather than a
	// copy each. Every field is a slice of plain to its end, so its
	// capacity says where it starts.
	at := func(field []byte) int { return cap(plain) - cap(field) }
	start, end := at(f[1]), at(f[8])+len(f[8])
	if requestedBy != nil {
		end = at(requestedBy) + len(requestedBy)
	}
	text := string(plain[start:end])
	str := func(field []byte) string {
		if len(field) == 0 {
			return ""
		}
		i := at(field) - start
		return text[i : i+len(field)]
	}
	c := Claims{
		TaskToken: token,
		Action: approval.Action{
			Name:  str(f[1]),
			Label: str(f[2]),
			Type:  approval.ActionType(str(f[3])),
			Error: str(f[5]),
			Cause: str(f[6]),
		},
		Recipient:    str(f[7]),
		RedirectURL:  str(f[8]),
		ExpiresAt:    time.Unix(int64(exp), 0).UTC(),
		MinApprovals: minApprovals,
		RequestedBy:  str(requestedBy),
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
// to exactly s; only then can the decoded form stand in for the token.
func canonicalBase64(s string) ([]byte, bool) {
	l, ok := canonicalBase64Len(s)
	if !ok {
		return nil, false
	}
	b, err := strictStd.AppendDecode(make([]byte, 0, l), readOnlyBytes(s))
	if err != nil {
		return nil, false
	}
	return b, true
}

// canonicalBase64Len is how many bytes s decodes to if it may be canonical
// standard base64: the strict decoder accepts only that form, but for line
// breaks, which it skips, so they are refused here, which spares encoding
// the token again to compare.
func canonicalBase64Len(s string) (int, bool) {
	// Two byte searches: ContainsAny looks at a token's 2 KB a byte at a time.
	if len(s) < 4 || len(s)%4 != 0 || strings.IndexByte(s, '\r') >= 0 || strings.IndexByte(s, '\n') >= 0 {
		return 0, false
	}
	l := len(s) / 4 * 3
	if s[len(s)-1] == '=' {
		l--
		if s[len(s)-2] == '=' {
			l--
		}
	}
	return l, true
}

var strictStd = base64.StdEncoding.Strict()

// readOnlyBytes views s as bytes without copying it, for functions that
// only read their input (the base64 decoders): a task token or a link is
// a couple of KB.
func readOnlyBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
