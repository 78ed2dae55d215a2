package redeemer

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// The built-in pages are written by plain Go below rather than by
// html/template: the template's reflection and per-character escaping of
// the ~2 KB form action were most of a GET's CPU time. The bytes are those
// html/template writes for the same data (TestCompiledConfirmPage,
// TestCompiledOutcomePage and FuzzCompiledPages compare the two), so this
// holds only for the templates they were checked against: builtinPages
// pins them, and any other page templates (an APPROVALS_TEMPLATES_DIR
// overlay of pages/) are rendered by html/template as before.

// builtinPages are the sha256 sums of the embedded page templates that
// writeConfirm and writeOutcome reproduce. When one of these files
// changes, TestBuiltinPagesPinned fails until the writer is checked against
// it (and changed to match) and its sum recorded here.
var builtinPages = map[string]string{
	"pages/confirm.html.tmpl": "86ddf3f0e2867857212945f99193db7f57ff7477239b68638e00fad1de617639",
	"pages/layout.html.tmpl":  "8eb7dc3dcb71b6a72fc73cd6352b966ff6e852f3d404eea8422360704ffbf3d2",
	"pages/outcome.html.tmpl": "34d0d932ea5109c0e71c66c4d6d289a8234d4228f93f02698030ae6e768cfd0d",
}

// isBuiltinPages reports whether fsys's page templates are exactly the
// embedded ones: the same files, none added (a file can redefine "top" or
// "bottom" for every page).
func isBuiltinPages(fsys fs.FS) bool {
	names, err := fs.Glob(fsys, "pages/*.html.tmpl")
	if err != nil || len(names) != len(builtinPages) {
		return false
	}
	for _, name := range names {
		want, ok := builtinPages[name]
		if !ok {
			return false
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return false
		}
		sum := sha256.Sum256(src)
		if hex.EncodeToString(sum[:]) != want {
			return false
		}
	}
	return true
}

// compiledPages hold the bytes of compiled pages between requests, as
// pageBuffers do for html/template's.
var compiledPages = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func putCompiledPage(b *[]byte) {
	if cap(*b) > maxPooledPage {
		return
	}
	*b = (*b)[:0]
	compiledPages.Put(b)
}

// styleHref is the stylesheet's URL as the layout's href writes it, the
// same on every page of a server.
func styleHref(styleURL string) string {
	return string(appendURLAttr(nil, styleURL))
}

// writeConfirm appends confirm.html.tmpl executed with d (and the layout's
// "top" and "bottom") to b. href is styleHref(d.StyleURL).
func writeConfirm(b []byte, d *pageData, href string) []byte {
	b = writeTop(b, d, href)
	b = append(b, "<h1>"...)
	b = appendHTML(b, d.Title)
	b = append(b, "</h1>\n<p class=\"lead\">You are about to <strong>"...)
	b = appendHTML(b, d.Label)
	b = append(b, "</strong>"...)
	if d.Type == "heartbeat" {
		b = append(b, " (ask for more time on this request)"...)
	}
	b = append(b, ".</p>\n<dl>\n<dt>Decision</dt><dd>"...)
	b = appendHTML(b, d.Label)
	b = append(b, " <span class=\"muted\">("...)
	b = appendHTML(b, d.Action)
	b = append(b, ")</span></dd>\n<dt>Recorded as</dt><dd>"...)
	b = appendHTML(b, d.Approver)
	b = append(b, "</dd>\n"...)
	if d.SignedInAs != "" {
		b = append(b, "<dt>Signed in as</dt><dd>"...)
		b = appendHTML(b, d.SignedInAs)
		b = append(b, "</dd>"...)
	}
	b = append(b, "\n<dt>Link expires</dt><dd>"...)
	b = appendTime(b, d.ExpiresAtISO, d.ExpiresAt)
	b = append(b, "</dd>\n"...)
	if d.Tallied {
		b = append(b, "<dt>Approvals</dt><dd class=\"tally\">This request needs "...)
		b = strconv.AppendInt(b, int64(d.Required), 10)
		b = append(b, " approval"...)
		if d.Required != 1 {
			b = append(b, 's')
		}
		b = append(b, " and has "...)
		b = strconv.AppendInt(b, int64(d.Approvals), 10)
		b = append(b, '.')
		if d.Required > 1 {
			b = append(b, " Any rejection decides at once."...)
		}
		b = append(b, "</dd>"...)
	}
	b = append(b, "\n</dl>\n<form method=\"post\" action=\""...)
	if d.formActionPlain {
		b = append(b, d.FormAction...)
	} else {
		b = appendURLAttr(b, d.FormAction)
	}
	b = append(b, "\">\n<label for=\"comment\">Comment <span class=\"muted\">(optional, up to "...)
	b = strconv.AppendInt(b, int64(d.MaxComment), 10)
	b = append(b, " characters)</span></label>\n"...)
	if d.CommentError != "" {
		b = append(b, "<p class=\"error\" id=\"comment-error\" role=\"alert\">"...)
		b = appendHTML(b, d.CommentError)
		b = append(b, "</p>"...)
	}
	b = append(b, "\n<textarea id=\"comment\" name=\"comment\" rows=\"4\" maxlength=\""...)
	b = strconv.AppendInt(b, int64(d.MaxComment), 10)
	b = append(b, '"')
	if d.CommentError != "" {
		b = append(b, " aria-invalid=\"true\" aria-describedby=\"comment-error\""...)
	}
	b = append(b, '>')
	b = appendHTML(b, d.Comment)
	b = append(b, "</textarea>\n<button type=\"submit\" class=\""...)
	if d.Type == "failure" {
		b = append(b, "danger"...)
	} else {
		b = append(b, "primary"...)
	}
	b = append(b, "\">"...)
	b = appendHTML(b, d.Label)
	return append(b, "</button>\n</form>\n<p class=\"muted\">Nothing is recorded until you press the button.</p>\n"+
		pageBottom...)
}

// writeTop appends the layout's "top" with d's title, after the newline
// that follows a page's opening comment.
func writeTop(b []byte, d *pageData, href string) []byte {
	b = append(b, "\n<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"+
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"+
		"<meta name=\"robots\" content=\"noindex, nofollow\">\n<title>"...)
	b = appendHTML(b, d.Title)
	b = append(b, "</title>\n<link rel=\"stylesheet\" href=\""...)
	b = append(b, href...)
	return append(b, "\">\n</head>\n<body>\n<main>\n\n"...)
}

// pageBottom is the layout's "bottom" and the newline after it.
const pageBottom = "</main>\n</body>\n</html>\n\n"

// writeOutcome appends outcome.html.tmpl executed with d (and the layout)
// to b. href is styleHref(d.StyleURL).
func writeOutcome(b []byte, d *pageData, href string) []byte {
	b = writeTop(b, d, href)
	b = append(b, "<h1 class=\""...)
	b = appendHTML(b, d.Outcome)
	b = append(b, "\">"...)
	b = appendHTML(b, d.Title)
	b = append(b, "</h1>\n<p class=\"lead\">"...)
	b = appendHTML(b, d.Message)
	b = append(b, "</p>\n"...)
	o := d.Outcome
	if d.Label != "" {
		b = append(b, "<dl>\n<dt>Decision</dt><dd>"...)
		b = appendHTML(b, d.Label)
		b = append(b, " <span class=\"muted\">("...)
		b = appendHTML(b, d.Action)
		b = append(b, ")</span></dd>\n"...)
		if d.Approver != "" {
			if o == "recorded" {
				b = append(b, "<dt>Recorded as</dt><dd>"...)
			} else {
				b = append(b, "<dt>For</dt><dd>"...)
			}
			b = appendHTML(b, d.Approver)
			b = append(b, "</dd>"...)
		}
		b = append(b, '\n')
		if d.SignedInAs != "" {
			b = append(b, "<dt>Signed in as</dt><dd>"...)
			b = appendHTML(b, d.SignedInAs)
			b = append(b, "</dd>"...)
		}
		b = append(b, '\n')
		if (o == "recorded" || o == "extended" || o == "vote_recorded") && d.DecidedAt != "" {
			b = append(b, "<dt>At</dt><dd>"...)
			b = appendTime(b, d.DecidedAtISO, d.DecidedAt)
			b = append(b, "</dd>"...)
		}
		b = append(b, '\n')
		if d.ExpiresAt != "" && o != "recorded" && o != "gone" {
			if o == "expired" {
				b = append(b, "<dt>Expired</dt><dd>"...)
			} else {
				b = append(b, "<dt>Link expires</dt><dd>"...)
			}
			b = appendTime(b, d.ExpiresAtISO, d.ExpiresAt)
			b = append(b, "</dd>"...)
		}
		b = append(b, '\n')
		if d.Tallied && (o == "vote_recorded" || o == "already_voted") {
			b = append(b, "<dt>Approvals</dt><dd class=\"tally\">"...)
			b = strconv.AppendInt(b, int64(d.Approvals), 10)
			b = append(b, " of "...)
			b = strconv.AppendInt(b, int64(d.Required), 10)
			b = append(b, " approvals</dd>"...)
		}
		b = append(b, '\n')
		if d.EarlierAction != "" {
			b = append(b, "<dt>Your vote</dt><dd>"...)
			b = appendHTML(b, d.EarlierAction)
			if d.DecidedAt != "" {
				b = append(b, ", "...)
				b = appendTime(b, d.DecidedAtISO, d.DecidedAt)
			}
			b = append(b, "</dd>"...)
		}
		b = append(b, "\n</dl>"...)
	}
	b = append(b, '\n')
	if d.DecidedBy != "" {
		b = append(b, "<dl class=\"decided\">\n<dt>Decided by</dt><dd class=\"decided-by\">"...)
		b = appendHTML(b, d.DecidedBy)
		b = append(b, "</dd>\n<dt>Decision</dt><dd class=\"decided-action\">"...)
		b = appendHTML(b, d.DecidedAction)
		b = append(b, "</dd>\n"...)
		if d.DecidedAt != "" {
			b = append(b, "<dt>At</dt><dd>"...)
			b = appendTime(b, d.DecidedAtISO, d.DecidedAt)
			b = append(b, "</dd>"...)
		}
		b = append(b, "\n</dl>"...)
	}
	b = append(b, '\n')
	if d.Hint != "" {
		b = append(b, "<p class=\"muted\">"...)
		b = appendHTML(b, d.Hint)
		b = append(b, "</p>"...)
	}
	return append(b, "\n"+pageBottom...)
}

// appendTime appends <time datetime="iso">human</time>.
func appendTime(b []byte, iso, human string) []byte {
	b = append(b, "<time datetime=\""...)
	b = appendHTML(b, iso)
	b = append(b, "\">"...)
	b = appendHTML(b, human)
	return append(b, "</time>"...)
}

// appendHTML appends s as html/template escapes a plain string in element
// text, in RCDATA (<title>, <textarea>) and in a quoted attribute: the
// escapers of all three replace the same characters when the value is not
// typed HTML. html/template steps by rune, but every character it replaces
// is ASCII, which UTF-8 never uses inside a longer sequence, and an invalid
// byte is a rune of its own, so stepping by byte replaces the same ones.
func appendHTML(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var repl string
		switch s[i] {
		case 0:
			repl = "\uFFFD"
		case '"':
			repl = "&#34;"
		case '&':
			repl = "&amp;"
		case '\'':
			repl = "&#39;"
		case '+':
			repl = "&#43;"
		case '<':
			repl = "&lt;"
		case '>':
			repl = "&gt;"
		default:
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, repl...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

// appendURLAttr appends s as html/template writes a plain string that is
// the whole of a quoted URL attribute (href, action): its URL filter (a
// scheme other than http, https or mailto becomes #ZgotmplZ), then its
// normalizer (bytes outside the unreserved and reserved sets, and a % not
// starting an escape, percent-encoded in lower case), then the attribute
// escaper, which of what is left changes only & and +.
func appendURLAttr(b []byte, s string) []byte {
	if !isSafeURL(s) {
		s = "#ZgotmplZ"
	}
	const hex = "0123456789abcdef"
	last := 0
	for i := plainPrefix(s, &urlPlain); i < len(s); i++ {
		c := s[i]
		if urlPlain[c] != 0 {
			continue
		}
		var repl string
		switch c {
		case '&':
			repl = "&amp;"
		case '+':
			repl = "&#43;"
		case '%':
			if i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]) {
				continue
			}
		}
		b = append(b, s[last:i]...)
		if repl != "" {
			b = append(b, repl...)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		}
		last = i + 1
	}
	return append(b, s[last:]...)
}

// urlPlain marks the bytes appendURLAttr copies as they are: those the
// normalizer leaves (unreserved and reserved) but & and +, which the
// attribute escaper then replaces. A table, as a link's form action is
// some 2 KB of them.
var urlPlain = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~!#$*,/:;=?@[]", byte(c)) >= 0 {
			t[c] = 1
		}
	}
	return t
}()

// plainPrefix returns the length of s's longest prefix of bytes marked
// in t, eight at a time while it can: without a branch per byte, a link's
// ~2 KB path is scanned at a few times the speed.
func plainPrefix(s string, t *[256]uint8) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		if t[w[0]]&t[w[1]]&t[w[2]]&t[w[3]]&t[w[4]]&t[w[5]]&t[w[6]]&t[w[7]] == 0 {
			break
		}
	}
	for ; i < len(s) && t[s[i]] != 0; i++ {
	}
	return i
}

// pathPlain marks the bytes URL.EscapedPath leaves as they are in a path
// without a RawPath (unreserved, and /). appendURLAttr leaves them too:
// they are urlPlain, and without a colon a URL has no scheme to filter
// (TestPathPlainIsURLPlain).
var pathPlain = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", byte(c)) >= 0 {
			t[c] = 1
		}
	}
	return t
}()

// formAction is u.EscapedPath(), the form's action, and whether it is
// plain: made of pathPlain bytes only, which appendURLAttr leaves as they
// are. A link's path is base64url, which needs no escaping: telling that
// takes a quarter of the time EscapedPath's own escaping takes to find
// nothing to do, and saves the page's writer its own look.
func formAction(u *url.URL) (action string, plain bool) {
	if u.RawPath == "" && plainPrefix(u.Path, &pathPlain) == len(u.Path) {
		return u.Path, true
	}
	return u.EscapedPath(), false
}

// isSafeURL is html/template's: a relative URL, or one whose scheme is
// http, https or mailto.
func isSafeURL(s string) bool {
	if protocol, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(protocol, "/") {
		if !strings.EqualFold(protocol, "http") && !strings.EqualFold(protocol, "https") && !strings.EqualFold(protocol, "mailto") {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
