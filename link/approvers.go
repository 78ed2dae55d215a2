package link

import (
	"crypto/sha256"
	"slices"
)

// ApproverSet is who may decide through a channel's link under sign-in:
// the request's approvers (to and cc, without requestedBy), each as a
// Digest. A channel's link is seen by everyone in the channel, so with
// identity alb the redeemer admits a signed-in user only if their email
// is in the set (when it has any members).
//
// Digests keep a link short (8 bytes an address, where addresses run to
// 254) and need no key: the link is encrypted and authenticated, so no
// one can read the set to guess at it, nor change it.
type ApproverSet []Digest

// Digest stands for one address in an ApproverSet: the first 8 bytes of
// the SHA-256 of the address with ASCII letters in lower case, the folding
// identity.SameEmail uses. 64 bits make an accidental match between two
// real addresses out of reach (about 1 in 10^17 for a set of 50).
type Digest [8]byte

// MaxApprovers bounds an ApproverSet in a link: far above any request's
// number of approvers (the worker allows 50).
const MaxApprovers = 1000

// DigestOf is the Digest of addr (a bare address).
func DigestOf(addr string) Digest {
	b := []byte(addr)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	sum := sha256.Sum256(b)
	return Digest(sum[:8])
}

// NewApproverSet is the set of addrs (bare addresses), nil when there are
// none.
func NewApproverSet(addrs ...string) ApproverSet {
	if len(addrs) == 0 {
		return nil
	}
	s := make(ApproverSet, len(addrs))
	for i, a := range addrs {
		s[i] = DigestOf(a)
	}
	return s
}

// Has reports whether addr is in the set, ignoring ASCII case. An empty
// address is in no set.
func (s ApproverSet) Has(addr string) bool {
	return addr != "" && slices.Contains(s, DigestOf(addr))
}
