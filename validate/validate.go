// Package validate holds the checks that the worker and the redeemer both
// apply, so that what one service accepts the other honours: the URLs links
// are minted under and redirect to, and the email addresses links are
// minted for.
//
// Errors read as the end of a sentence that starts with the value
// ("%q %v"), and never contain the value, so callers decide how much of a
// caller-supplied string reaches a message.
package validate

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
)

// Reasons a URL is refused; match them with errors.Is.
var (
	ErrNotHTTP      = errors.New("is not an absolute http(s) URL")
	ErrSpace        = errors.New("has a space or control character")
	ErrUserinfo     = errors.New("has user info (user@host)")
	ErrFragment     = errors.New("has a fragment (#...)")
	ErrNonASCIIHost = errors.New("has a non-ASCII host (write it in punycode, xn--...)")
	ErrHost         = errors.New("has a host that is not a DNS name or IP address")
	ErrQuery        = errors.New("has a query (?...)")
)

// URL checks s as a URL the redeemer may send a browser to: absolute http
// or https, a host of ASCII letters, digits, dots and hyphens (so
// internationalised names are written in punycode) or an IP address, no
// user info and no fragment. The host is safe to put into a header as it
// is (the redeemer's Content-Security-Policy names the redirect's origin).
// It returns the parsed URL.
func URL(s string) (*url.URL, error) {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return nil, ErrSpace
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" {
		return nil, ErrNotHTTP
	}
	if u.User != nil {
		return nil, ErrUserinfo
	}
	// url.Parse drops an empty fragment ("x#"), so look at the text.
	if strings.Contains(s, "#") {
		return nil, ErrFragment
	}
	if err := checkHost(u); err != nil {
		return nil, err
	}
	return u, nil
}

// BaseURL checks s as the redeemer's public base URL, which links are
// appended to: a URL as URL accepts it, without a query.
func BaseURL(s string) (*url.URL, error) {
	u, err := URL(s)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, ErrQuery
	}
	return u, nil
}

func checkHost(u *url.URL) error {
	if strings.HasSuffix(u.Host, ":") { // a port separator without a port
		return ErrHost
	}
	host := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		ip, err := netip.ParseAddr(host)
		// A zone (fe80::1%eth0) names an interface of one machine only.
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return ErrHost
		}
		return nil
	}
	if host == "" {
		return ErrHost
	}
	// url.Parse has decoded any percent-escapes in the host, so this sees
	// the name a browser would look up.
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
		case r >= 0x80:
			return ErrNonASCIIHost
		default:
			return ErrHost
		}
	}
	return nil
}
