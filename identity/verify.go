package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sfn-approvals/sfn-approvals/validate"
)

// Header is the request header in which the ALB passes the signed claims.
const Header = "X-Amzn-Oidc-Data"

// Defaults of Config.
const (
	DefaultClockSkew    = 10 * time.Second
	DefaultFetchTimeout = 3 * time.Second
	DefaultCacheSize    = 16
	DefaultCacheTTL     = time.Hour
)

// maxTokenBytes bounds the header: the ALB refuses claims and access token
// over 11 KiB together, so anything longer did not come from it.
const maxTokenBytes = 16 << 10

// Config says which load balancer's sign-ins to trust.
type Config struct {
	// ALBARN is the load balancer's ARN (APPROVALS_ALB_ARN); the header's
	// signer must equal it.
	ALBARN string
	// KeysURL is where public keys are fetched, as KeysURL/{kid}
	// (APPROVALS_ALB_KEYS_URL). Empty means the regional endpoint of the
	// ARN's region, https://public-keys.auth.elb.{region}.amazonaws.com;
	// other partitions (GovCloud, China) must set it.
	KeysURL string
	// HTTPClient fetches keys; nil means a client of its own.
	HTTPClient *http.Client
	// FetchTimeout bounds one key fetch; zero means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// ClockSkew is how long after exp a header is still accepted; zero
	// means DefaultClockSkew, negative means none.
	ClockSkew time.Duration
	// CacheSize is how many keys are kept; zero means DefaultCacheSize.
	CacheSize int
	// CacheTTL is how long a key is kept; zero means DefaultCacheTTL.
	CacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Identity is who signed in, from a verified header.
type Identity struct {
	// Subject is the identity provider's sub: the stable user id.
	Subject string `json:"sub"`
	// Email is the email claim; empty when the provider sent none.
	Email string `json:"email"`
	// Issuer is the identity provider (iss).
	Issuer string `json:"issuer"`
}

// Verifier checks x-amzn-oidc-data headers. It is safe for concurrent use.
type Verifier struct {
	arn    string
	skew   time.Duration
	now    func() time.Time
	keys   *keyCache
	parser *jwt.Parser
}

// New checks cfg and returns a Verifier. It makes no network call: keys are
// fetched on first use.
func New(cfg Config) (*Verifier, error) {
	region, partition, err := parseARN(cfg.ALBARN)
	if err != nil {
		return nil, fmt.Errorf("ALB ARN: %w", err)
	}
	keysURL := cfg.KeysURL
	if keysURL == "" {
		if partition != "aws" {
			return nil, fmt.Errorf("keys URL: no default for partition %q: set it", partition)
		}
		keysURL = "https://public-keys.auth.elb." + region + ".amazonaws.com"
	}
	// Keys are fetched from keysURL/{kid}: the rules of a base URL.
	if _, err := validate.BaseURL(keysURL); err != nil {
		return nil, fmt.Errorf("keys URL %q %v", keysURL, err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	switch {
	case cfg.ClockSkew == 0:
		cfg.ClockSkew = DefaultClockSkew
	case cfg.ClockSkew < 0:
		cfg.ClockSkew = 0
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	return &Verifier{
		arn:  cfg.ALBARN,
		skew: cfg.ClockSkew,
		now:  cfg.Now,
		keys: newKeyCache(strings.TrimRight(keysURL, "/"), cfg.HTTPClient, cfg.FetchTimeout, cfg.CacheTTL, cfg.CacheSize, cfg.Now),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
			jwt.WithPaddingAllowed(),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(cfg.ClockSkew),
			jwt.WithTimeFunc(cfg.Now),
		),
	}, nil
}

// VerifyRequest verifies the request's x-amzn-oidc-data header.
func (v *Verifier) VerifyRequest(r *http.Request) (Identity, error) {
	vals := r.Header.Values(Header)
	if len(vals) > 1 {
		// The ALB sends one; more means something else added one.
		return Identity{}, fail(ReasonMalformed, "more than one "+Header+" header")
	}
	if len(vals) == 0 {
		return Identity{}, fail(ReasonMissing, "no "+Header+" header")
	}
	return v.Verify(r.Context(), vals[0])
}

// Verify checks one x-amzn-oidc-data value and returns who signed in. Every
// error is an *Error; one with ReasonKeysUnavailable means the key server
// could not be asked, so the header may well be valid.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, fail(ReasonMissing, "empty "+Header+" header")
	}
	if len(token) > maxTokenBytes {
		return Identity{}, fail(ReasonMalformed, "header too long")
	}
	var c albClaims
	tok, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		// The signer and kid are checked before any fetch, so a forged
		// header costs the key server nothing.
		if signer, _ := t.Header["signer"].(string); signer != v.arn {
			return nil, fail(ReasonSigner, "signer is not the configured load balancer")
		}
		kid, _ := t.Header["kid"].(string)
		if !kidPattern.MatchString(kid) {
			return nil, fail(ReasonMalformed, "kid is not a UUID")
		}
		return v.keys.get(ctx, kid)
	})
	if err != nil {
		return Identity{}, classify(tok, err)
	}
	// The ALB puts exp and iss in the signed JOSE header too; the earlier
	// exp wins.
	if exp, ok := tok.Header["exp"]; ok {
		f, isNum := exp.(float64)
		if !isNum {
			return Identity{}, fail(ReasonMalformed, "header exp is not a number")
		}
		// Compared as floats: a huge exp must not wrap as an integer.
		if float64(v.now().Add(-v.skew).Unix()) >= f {
			return Identity{}, fail(ReasonExpired, "header exp has passed")
		}
	}
	if c.Subject == "" {
		return Identity{}, fail(ReasonMalformed, "no sub claim")
	}
	if c.unverifiedEmail() {
		return Identity{}, fail(ReasonEmailUnverified, "email_verified is false")
	}
	iss := c.Issuer
	if iss == "" {
		iss, _ = tok.Header["iss"].(string)
	}
	return Identity{Subject: c.Subject, Email: c.Email, Issuer: iss}, nil
}

// classify turns the library's error into an *Error, keeping none of its
// text (a JSON syntax error quotes part of the input).
func classify(tok *jwt.Token, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if tok != nil && tok.Header != nil {
		if alg, _ := tok.Header["alg"].(string); alg != jwt.SigningMethodES256.Alg() {
			return fail(ReasonAlg, "alg is not ES256")
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(ReasonMalformed, "not a JWT of three base64url JSON segments")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fail(ReasonMalformed, "no exp claim")
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(ReasonExpired, "exp has passed")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return fail(ReasonExpired, "nbf is ahead")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fail(ReasonSignature, "signature does not verify")
	default:
		return fail(ReasonMalformed, "unusable claims")
	}
}

// albClaims are the claims used. Only these are decoded: a provider's other
// user-info fields, whatever their shape, cannot make a sign-in fail.
type albClaims struct {
	Subject       string           `json:"sub"`
	Email         string           `json:"email"`
	EmailVerified any              `json:"email_verified"`
	Issuer        string           `json:"iss"`
	ExpiresAt     *jwt.NumericDate `json:"exp"`
	NotBefore     *jwt.NumericDate `json:"nbf"`
}

func (c *albClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *albClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *albClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (c *albClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *albClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *albClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// unverifiedEmail reports an explicit email_verified false. Providers send
// a boolean (OIDC) or, like Cognito, the string "false"; absent means the
// provider does not say (Entra ID), which is accepted.
func (c *albClaims) unverifiedEmail() bool {
	switch v := c.EmailVerified.(type) {
	case bool:
		return !v
	case string:
		return strings.EqualFold(v, "false")
	}
	return false
}

// The ALB's kids are UUIDs; holding them to that keeps anything else out of
// the key URL.
var kidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// parseARN checks an application load balancer ARN,
// arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID,
// and returns its region and partition.
func parseARN(arn string) (region, partition string, err error) {
	p := strings.SplitN(arn, ":", 6)
	if len(p) != 6 || p[0] != "arn" || p[1] == "" || p[2] != "elasticloadbalancing" || p[4] == "" ||
		!strings.HasPrefix(p[5], "loadbalancer/app/") {
		return "", "", errors.New("want arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID")
	}
	if !regionPattern.MatchString(p[3]) {
		return "", "", fmt.Errorf("region %q is not a region", p[3])
	}
	return p[3], p[1], nil
}
