// Package identity verifies who signed in at an Application Load Balancer:
// the x-amzn-oidc-data header that an ALB listener rule with
// authenticate-oidc or authenticate-cognito adds to every request it
// forwards.
//
// # Checks
//
// The header is a JWT signed by the load balancer, not by the identity
// provider. It is accepted when, in this order:
//
//   - it is three base64url segments of JSON, padded or not (the ALB pads
//     with "=", which RFC 7515 forbids);
//   - alg is ES256, nothing else (none, HS*, RS* are refused before any key
//     is looked at);
//   - signer, in the JOSE header, is the configured load balancer's ARN;
//   - kid is a UUID and KeysURL/{kid} serves a PEM P-256 public key (kept in
//     a bounded cache);
//   - the signature verifies over the segments exactly as received;
//   - exp, in the claims and, when present, in the JOSE header, has not
//     passed by more than the clock skew allowance, and nbf is not ahead;
//   - sub is present, and email_verified, when present, is not false.
//
// # Keys
//
// A kid names one key for good, so keys are cached (DefaultCacheSize most
// recently used, each for DefaultCacheTTL). Concurrent misses for one kid
// share one fetch; a fetch is bounded by FetchTimeout and detached from the
// request that started it, so a user who gives up does not fail the others
// waiting. Failed fetches are not cached: the next request asks again.
//
// # Errors
//
// Each refusal carries a Reason for metrics. ReasonKeysUnavailable is apart:
// the key server could not be asked, so the caller should answer 503 and let
// the user retry, rather than 401.
//
// Trust: whoever can reach the service without passing the ALB can send any
// header. Verification makes that harmless, but each unknown kid costs one
// key fetch, so the service should be reachable only through the ALB (or be
// rate limited, as the redeemer is).
//
// # Library
//
// Parsing and the signature check are github.com/golang-jwt/jwt/v5, with
// WithPaddingAllowed (added for producers like the ALB) and
// WithValidMethods("ES256"). It verifies the signature over the segments as
// received, so padding survives, and it exposes the JOSE header to the key
// lookup, where signer and kid are checked. github.com/go-jose/go-jose/v4
// was the other candidate; it decodes segments as strict unpadded base64url
// and rebuilds the signing input re-encoded without padding, so it rejects
// every header the ALB sends.
package identity
