package identity

import "errors"

// Reason says why a sign-in header was refused, in a word fit for a metric
// label: the set is fixed (Reasons lists it) and never carries request data.
type Reason string

// The reasons a header is refused.
const (
	// ReasonMissing: no x-amzn-oidc-data header (the request did not come
	// through the ALB's authenticate rule).
	ReasonMissing Reason = "missing"
	// ReasonMalformed: not three base64url segments of JSON, an oversized
	// header, a kid that is not a UUID, or required claims (sub, exp) absent.
	ReasonMalformed Reason = "malformed"
	// ReasonAlg: the header's alg is not ES256 (none, HS*, RS*, ...).
	ReasonAlg Reason = "alg"
	// ReasonSigner: the header's signer is not the configured load balancer.
	ReasonSigner Reason = "signer"
	// ReasonKidUnknown: the key server has no key under the header's kid.
	ReasonKidUnknown Reason = "kid_unknown"
	// ReasonSignature: the signature does not verify under that key.
	ReasonSignature Reason = "signature"
	// ReasonExpired: exp has passed (beyond the clock skew allowance), or
	// nbf is still ahead.
	ReasonExpired Reason = "expired"
	// ReasonEmailUnverified: the identity provider says the email claim is
	// not verified (email_verified false), so it proves nothing.
	ReasonEmailUnverified Reason = "email_unverified"
	// ReasonKeysUnavailable: the key server could not be asked (down,
	// timing out, answering 5xx or garbage). Not the user's fault: the
	// caller should answer 503, not 401.
	ReasonKeysUnavailable Reason = "keys_unavailable"
)

// Reasons lists every Reason, so a metric can create its labels up front.
func Reasons() []Reason {
	return []Reason{
		ReasonMissing, ReasonMalformed, ReasonAlg, ReasonSigner, ReasonKidUnknown,
		ReasonSignature, ReasonExpired, ReasonEmailUnverified, ReasonKeysUnavailable,
	}
}

// Error is every error Verify returns. Its text is built only from the
// reason, fixed words and, for ReasonKeysUnavailable, the key fetch error
// (whose URL holds a validated kid): never from the JWT or its claims, so it
// is safe to log.
type Error struct {
	Reason Reason
	detail string
	err    error
}

func (e *Error) Error() string {
	s := "sign-in " + string(e.Reason)
	if e.detail != "" {
		s += ": " + e.detail
	}
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.err }

// Unavailable reports whether the sign-in could not be checked for want of
// the key server, as opposed to being invalid.
func (e *Error) Unavailable() bool { return e.Reason == ReasonKeysUnavailable }

// ReasonOf returns the Reason of an error from Verify, and false for nil or
// any other error.
func ReasonOf(err error) (Reason, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason, true
	}
	return "", false
}

// IsUnavailable reports whether err means the key server could not be
// asked: the request may succeed later, so the answer is 503.
func IsUnavailable(err error) bool {
	r, ok := ReasonOf(err)
	return ok && r == ReasonKeysUnavailable
}

func fail(r Reason, detail string) *Error { return &Error{Reason: r, detail: detail} }
