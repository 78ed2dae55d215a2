package redeemer

import (
	"net/http/httptest"
	"testing"
)

// containsFold finds what trying every offset finds, for Accept headers
// and hostile strings, in any case, with substrings ASCII or not.
func TestContainsFold(t *testing.T) {
	chrome := "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"
	inputs := append(hostileStrings(), chrome, chrome+",application/JSON", "JSON", "jsoN", "xjsonx", "js", "jjson", "JJSON",
		"\u017Fon", "j\u017Fon", "\u212A", "k", "application/problem+json", "JsOn;q=0")
	for _, s := range inputs {
		for _, sub := range []string{"json", "JSON", "j", "", "+json", "1", "\u017F", "s", "k", "\u212Ax", "ſon"} {
			if got, want := containsFold(s, sub), containsFoldAt(s, sub, 0); got != want {
				t.Errorf("containsFold(%q, %q) = %t, want %t", s, sub, got, want)
			}
		}
	}
}

// BenchmarkWantsJSON is a browser's GET: Chrome's Accept names no JSON.
func BenchmarkWantsJSON(b *testing.B) {
	r := httptest.NewRequest("GET", "/a/x", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"+
		"image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
	for b.Loop() {
		if wantsJSON(r) {
			b.Fatal("JSON wanted")
		}
	}
}
