package redeemer

import (
	"net/http"

	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/validate"
)

// cspBase allows nothing but the page's own stylesheet; there is no script
// to allow. form-action is added per page (see csp).
const cspBase = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"

// setSecurityHeaders sets the headers every response carries, errors and
// JSON included. Links are secrets: no-referrer keeps them out of other
// sites' logs, no-store out of shared caches.
//
// The values are built once and assigned under their canonical keys, as
// Header.Set would store them, without Set's canonicalising and the slice
// it allocates per header and request. Sharing them is safe: net/http only
// reads a response's values, and Add or Set on such a key stores a new
// slice (each has a capacity of one, so Add cannot append in place).
func setSecurityHeaders(h http.Header) {
	for _, kv := range securityHeaders {
		h[kv.key] = kv.value
	}
}

// headerValue is one header as an http.Header holds it: a canonical key
// and a value slice of length and capacity one.
type headerValue struct {
	key   string
	value []string
}

func newHeaderValue(key, value string) headerValue {
	return headerValue{key: http.CanonicalHeaderKey(key), value: []string{value}[:1:1]}
}

var (
	securityHeaders = []headerValue{
		newHeaderValue("Content-Security-Policy", csp("")),
		newHeaderValue("Referrer-Policy", "no-referrer"),
		newHeaderValue("Cache-Control", "no-store"),
		newHeaderValue("X-Frame-Options", "DENY"),
		newHeaderValue("X-Content-Type-Options", "nosniff"),
	}
	hstsHeader     = newHeaderValue("Strict-Transport-Security", hstsValue)
	htmlTypeHeader = newHeaderValue("Content-Type", "text/html; charset=utf-8")
)

// csp returns the policy for a page whose form may end up at
// redirectOrigin. Chrome applies form-action to the redirect that follows a
// POST, so the 303 to redirectUrl would be blocked by 'self' alone.
func csp(redirectOrigin string) string {
	fa := "form-action 'self'"
	if redirectOrigin != "" {
		fa += " " + redirectOrigin
	}
	return cspBase + "; " + fa
}

// redirect answers a recorded decision from a browser with a redirect to
// the link's URL and reports that it did; a JSON client, or a link without
// a URL, is answered by the caller, with the URL put in v for it to show.
func redirect(w http.ResponseWriter, r *http.Request, c link.Claims, v *view) bool {
	target, _ := redirectTarget(c.RedirectURL)
	if target != "" && !wantsJSON(r) {
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusSeeOther)
		return true
	}
	v.redirect = target
	return false
}

// redirectTarget returns the URL to send the approver to after a decision
// and its origin, or "" for both when raw is empty or fails the check the
// worker applied before minting (validate.URL): a link cannot be altered,
// but one minted by an older worker may carry a URL that check refuses.
// validate.URL allows only host characters, so the origin cannot add a
// directive or a header line where it goes into a header.
func redirectTarget(raw string) (target, origin string) {
	if raw == "" {
		return "", ""
	}
	u, err := validate.URL(raw)
	if err != nil {
		return "", ""
	}
	return u.String(), u.Scheme + "://" + u.Host
}
