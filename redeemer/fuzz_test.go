package redeemer

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sfn-approvals/sfn-approvals/link"
)

// FuzzLinkRoute sends arbitrary methods, paths, bodies and headers to the
// link routes. Whatever arrives, the server must answer with one of its own
// pages and the security headers, never panic, and only a POST of a link
// that verifies may reach Step Functions. Seeds are in
// testdata/fuzz/FuzzLinkRoute; `make fuzz` runs it for a bounded time.
//
// A path holding linkMark gets a link that verifies in its place. The link
// is 2 KB; as a fuzz input it stalled the fuzzer: every input that finds new
// coverage is minimized, which tries removing each span of each string
// (quadratic in its length), for up to a minute per input. The mark keeps
// inputs short while the fuzzer still puts a valid link anywhere in a path,
// cuts it, or surrounds it with anything.
func FuzzLinkRoute(f *testing.F) {
	b := setup(f, func(c *Config) { c.RateLimit = RateLimitOff })
	valid := strings.TrimPrefix(b.path(f, approve), link.PathPrefix)
	const linkMark = "{link}"
	f.Add("GET", "/a/"+linkMark, "", "", "")
	f.Add("POST", "/a/"+linkMark, "comment=looks+good", "application/x-www-form-urlencoded", "")
	f.Add("POST", "/a/"+linkMark, "comment=%ff", "application/x-www-form-urlencoded", "application/json")
	f.Add("POST", "/a/"+linkMark+"/x", "comment=x", "", "")
	f.Add("HEAD", "/a/", "", "", "")
	f.Add("POST", "/a/AAAA", "comment=x", "multipart/form-data; boundary=x", "")

	known := map[int]bool{200: true, 303: true, 400: true, 404: true, 405: true, 410: true, 500: true, 503: true}
	f.Fuzz(func(t *testing.T, method, path, body, contentType, accept string) {
		if !validMethod(method) {
			return // not a request any client can send
		}
		path = strings.Replace(path, linkMark, valid, 1)
		target := "https://approvals.example.com/a/" + strings.TrimPrefix(path, "/a/")
		u, err := url.Parse(target)
		if err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/", strings.NewReader(body))
		r.Method, r.URL, r.RequestURI = method, u, u.RequestURI()
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Accept", accept)
		before := b.sfn.callCount()
		w := httptest.NewRecorder()
		b.srv.ServeHTTP(w, r)

		if !known[w.Code] {
			t.Fatalf("%s %q: status %d", method, path, w.Code)
		}
		for _, h := range []string{"Content-Security-Policy", "Referrer-Policy", "Cache-Control", "X-Frame-Options"} {
			if w.Header().Get(h) == "" {
				t.Fatalf("%s %q: no %s header", method, path, h)
			}
		}
		if b.sfn.callCount() == before {
			return
		}
		// Seeds minted by another process carry other nonces, so a link is
		// judged by opening it, not by comparing it with valid.
		_, err = b.kr.Open(strings.TrimPrefix(u.Path, "/a/"), b.now)
		if method != http.MethodPost || err != nil {
			t.Fatalf("%s %q reached Step Functions (link error: %v)", method, path, err)
		}
	})
}

// FuzzReadComment checks the form parsing alone: an accepted comment is
// valid UTF-8 within the limit, and a refusal always says why.
func FuzzReadComment(f *testing.F) {
	f.Add("comment=hello", "application/x-www-form-urlencoded")
	f.Add("comment=a%0D%0Ab", "application/x-www-form-urlencoded")
	f.Add("comment=%e2%82", "application/x-www-form-urlencoded")
	f.Add("comment="+strings.Repeat("%F0%9F%98%80", MaxCommentRunes+1), "application/x-www-form-urlencoded")
	f.Add("--x\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhi\r\n--x--\r\n", "multipart/form-data; boundary=x")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/a/x", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, maxBody)
		comment, problem := readComment(r)
		if problem != "" {
			return
		}
		if !utf8.ValidString(comment) || utf8.RuneCountInString(comment) > MaxCommentRunes {
			t.Fatalf("accepted comment of %d runes, valid UTF-8: %t", utf8.RuneCountInString(comment), utf8.ValidString(comment))
		}
		if strings.Contains(comment, "\r\n") || comment != strings.TrimSpace(comment) {
			t.Fatalf("comment not normalised: %q", comment)
		}
	})
}

// validMethod reports whether m is an HTTP token, as net/http requires.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c > 0x7e || c <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}
