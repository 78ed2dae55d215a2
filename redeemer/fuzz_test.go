package redeemer

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sfn-approvals/sfn-approvals/approval"
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

// FuzzJSONCallback checks the JSON callback body alone: whatever arrives,
// parseCallback does not panic, and what it accepts is a normalised comment
// within the limit and a payload that is a compact JSON object within its
// size and depth, with no key twice, which encodes into the decision as it
// was sent. Seeds are in testdata/fuzz/FuzzJSONCallback.
func FuzzJSONCallback(f *testing.F) {
	f.Add([]byte(`{"comment": "ok", "payload": {"build": 42, "tags": ["a"]}}`))
	f.Add([]byte(`{"payload": {"a": {"b": [1, {"c": null}]}}}`))
	f.Add([]byte(`{"comment": "a", "comment": "b"}`))
	f.Add([]byte(`{"payload": {"k": 1, "k": 2}}`))
	f.Add([]byte(`{"payload": [1]}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte("{\"comment\": \"\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, bad, problem := parseCallback(body)
		if problem != "" {
			if bad.Status != http.StatusBadRequest {
				t.Fatalf("refused with %d: %s", bad.Status, problem)
			}
			return
		}
		if !utf8.ValidString(in.comment) || utf8.RuneCountInString(in.comment) > MaxCommentRunes ||
			strings.Contains(in.comment, "\r\n") || in.comment != strings.TrimSpace(in.comment) {
			t.Fatalf("accepted comment %q", in.comment)
		}
		if in.payload == nil {
			return
		}
		if len(in.payload) > MaxPayloadBytes || in.payload[0] != '{' || depth(in.payload) > MaxPayloadDepth {
			t.Fatalf("accepted payload of %d bytes, depth %d: %.80s", len(in.payload), depth(in.payload), in.payload)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, in.payload); err != nil || !bytes.Equal(compact.Bytes(), in.payload) {
			t.Fatalf("payload not compact JSON (%v): %.80s", err, in.payload)
		}
		if hasDuplicateKey(in.payload) {
			t.Fatalf("accepted a payload with a key twice: %.80s", in.payload)
		}
		out, err := SuccessOutput(approve, approval.Decision{Action: "approve", Payload: approval.RawJSON(in.payload)})
		if err != nil {
			t.Fatalf("success output: %v", err)
		}
		var got struct {
			Decision struct{ Payload json.RawMessage }
		}
		// encoding/json writes <, > and & inside strings as \u escapes: the
		// same JSON, other bytes. The payload must survive as a value.
		if err := json.Unmarshal([]byte(out), &got); err != nil || !sameJSON(got.Decision.Payload, in.payload) {
			t.Fatalf("payload did not survive the output (%v): %.80s", err, out)
		}
	})
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// depth is how deeply b nests objects and arrays, counted the slow way.
func depth(b []byte) int {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return -1
	}
	var walk func(any) int
	walk = func(v any) int {
		n := 0
		switch v := v.(type) {
		case map[string]any:
			for _, e := range v {
				n = max(n, walk(e))
			}
			return n + 1
		case []any:
			for _, e := range v {
				n = max(n, walk(e))
			}
			return n + 1
		}
		return 0
	}
	return walk(v)
}

// hasDuplicateKey reports whether any object in b names a key twice, by
// comparing its key count in the text with the decoded map's.
func hasDuplicateKey(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	var check func() bool
	check = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, _ := dec.Token()
				if seen[k.(string)] {
					return true
				}
				seen[k.(string)] = true
				if check() {
					return true
				}
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if check() {
					return true
				}
			}
			_, _ = dec.Token()
		}
		return false
	}
	return check()
}
