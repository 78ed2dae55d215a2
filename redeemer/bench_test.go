package redeemer

import (
	"net/http"
	"testing"
	"time"

	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/identity/albtest"
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

// BenchmarkConfirmPageSignedIn is BenchmarkConfirmPage with
// APPROVALS_IDENTITY=alb: the sign-in header verified (its key cached after
// the first request) and matched to the recipient on every GET.
func BenchmarkConfirmPageSignedIn(b *testing.B) {
	alb := albtest.New(b)
	bb := setup(b, func(c *Config) {
		c.RateLimit = RateLimitOff
		c.Identity = IdentityALB
		c.ALB = identity.Config{ALBARN: alb.ARN, KeysURL: alb.KeysURL()}
	})
	alb.SetNow(func() time.Time { return bb.now })
	p := bb.path(b, approve)
	h := http.Header{identity.Header: {alb.Header("u-ben", "ben@example.com")}}
	b.ReportAllocs()
	for b.Loop() {
		if w := bb.do(req{method: http.MethodGet, path: p, header: h}); w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
	if n := alb.Fetches(alb.Kid()); n != 1 {
		b.Errorf("%d key fetches, want 1 (the cache)", n)
	}
}
