package validate

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
)

// Reasons an address is refused; match them with errors.Is. Quoted local
// parts, comments and groups are valid RFC 5322, but net/mail hands back
// the address without the syntax that made it one address, and a service
// reading that string again (SES) may see several: "a@x, b"@y becomes
// a@x, b@y.
var (
	ErrNotAddress   = errors.New("is not an email address")
	ErrLineBreak    = errors.New("has a line break")
	ErrQuotedLocal  = errors.New("has a quoted local part")
	ErrComment      = errors.New("has a comment (...)")
	ErrGroup        = errors.New("uses group syntax (name: ...;)")
	ErrNotPlain     = errors.New("is not written as addr or Name <addr>")
	ErrNameControls = errors.New("has a control character in its display name")
)

// Address checks s as one recipient: "addr" or "Name <addr>", where addr
// is a plain local-part@domain with no quoting and no comments, and there
// is no group syntax. The returned Address is exactly what was written:
// its Address field equals the addr in s, byte for byte, and Name is the
// display name decoded (RFC 2047 words included). A non-address error
// wraps net/mail's reason.
func Address(s string) (mail.Address, error) {
	if plainAddrSpec(s) {
		// What net/mail and the checks below make of it, without their
		// allocations: a request names a few of these.
		return mail.Address{Address: s}, nil
	}
	if strings.ContainsAny(s, "\r\n") {
		return mail.Address{}, ErrLineBreak
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return mail.Address{}, fmt.Errorf("%w (%v)", ErrNotAddress, err)
	}
	t := strings.TrimSpace(s)
	spec := t
	if strings.HasSuffix(t, ">") {
		if i := strings.LastIndexByte(t, '<'); i >= 0 {
			spec = t[i+1 : len(t)-1]
		}
	}
	switch {
	case strings.Contains(spec, `"`):
		return mail.Address{}, ErrQuotedLocal
	case outsideQuotes(t, "()"):
		return mail.Address{}, ErrComment
	case outsideQuotes(t, ":;"):
		return mail.Address{}, ErrGroup
	case spec != a.Address:
		return mail.Address{}, ErrNotPlain
	case strings.IndexFunc(a.Name, unicode.IsControl) >= 0:
		// An encoded word can carry CR LF; SES would get it re-encoded,
		// but nothing needs one and logs would not.
		return mail.Address{}, ErrNameControls
	}
	return *a, nil
}

// outsideQuotes reports whether s has one of chars outside a quoted string
// and outside a domain literal ([...], whose IPv6 form has colons).
func outsideQuotes(s, chars string) bool {
	inQuote, escaped, inLiteral := false, false, false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case inQuote && r == '\\':
			escaped = true
		case r == '"' && !inLiteral:
			inQuote = !inQuote
		case inQuote:
		case r == '[':
			inLiteral = true
		case r == ']':
			inLiteral = false
		case !inLiteral && strings.ContainsRune(chars, r):
			return true
		}
	}
	return false
}

// plainAddrSpec reports whether s is local@domain, each a dot-atom of
// ASCII atext (RFC 5322 3.2.3: no leading, trailing or double dot), with
// nothing around it: net/mail parses such an s to itself, with no name.
func plainAddrSpec(s string) bool {
	at := strings.IndexByte(s, '@')
	return at >= 0 && dotAtom(s[:at]) && dotAtom(s[at+1:])
}

func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if s[i+1] == '.' {
				return false
			}
		case c < '!' || c > '~' || strings.IndexByte(`()<>[]:;@\,"`, c) >= 0:
			return false
		}
	}
	return true
}
