package redeemer

import (
	"net/http"
	"testing"
)

// BenchmarkConfirmPage is one GET of a link: open it, render the page, set
// the headers. A 1,024-byte task token, as in approvals bench.
func BenchmarkConfirmPage(b *testing.B) {
	// One client asking over and over: the rate limit would answer 429.
	bb := setup(b, func(c *Config) { c.RateLimit = RateLimitOff })
	p := bb.path(b, approve)
	b.ReportAllocs()
	for b.Loop() {
		if w := bb.do(req{method: http.MethodGet, path: p}); w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
