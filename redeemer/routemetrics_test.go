package redeemer

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The pre-built headers are what Header.Set stores, and sharing their
// values between responses is safe: a handler's Add or Set on one of them
// leaves the shared value alone.
func TestPrebuiltHeaders(t *testing.T) {
	got, want := http.Header{}, http.Header{}
	setSecurityHeaders(got)
	got[hstsHeader.key] = hstsHeader.value
	got[htmlTypeHeader.key] = htmlTypeHeader.value
	want.Set("content-security-policy", csp(""))
	want.Set("referrer-policy", "no-referrer")
	want.Set("cache-control", "no-store")
	want.Set("x-frame-options", "DENY")
	want.Set("x-content-type-options", "nosniff")
	want.Set("strict-transport-security", hstsValue)
	want.Set("content-type", "text/html; charset=utf-8")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("headers\n%v\nwant\n%v", got, want)
	}
	got.Add("Content-Security-Policy", "other")
	got.Set("Cache-Control", "other")
	again := http.Header{}
	setSecurityHeaders(again)
	if v := again.Values("Content-Security-Policy"); len(v) != 1 || v[0] != csp("") {
		t.Errorf("shared value changed by Add: %q", v)
	}
	if v := again.Get("Cache-Control"); v != "no-store" {
		t.Errorf("shared value changed by Set: %q", v)
	}
}

// The resolved children are WithLabelValues's, and only the codes
// answered become series, as before.
func TestRouteMetrics(t *testing.T) {
	b := setup(t, func(c *Config) { c.RateLimit = RateLimitOff })
	p := b.path(t, approve)
	for range 3 {
		b.do(req{method: http.MethodGet, path: p})
	}
	b.do(req{method: http.MethodGet, path: "/a/not-a-link"})
	b.do(req{method: http.MethodGet, path: "/nowhere"})
	b.do(req{method: http.MethodPut, path: p})
	for _, tc := range []struct {
		route, code string
		want        float64
	}{
		{routeLinkGet, "200", 3}, {routeLinkGet, "400", 1}, {routeOther, "404", 1}, {routeLinkGet, "405", 1},
	} {
		if got := testutil.ToFloat64(b.srv.m.HTTPRequests.WithLabelValues(tc.route, tc.code)); got != tc.want {
			t.Errorf("http_requests_total{route=%q,code=%q} = %v, want %v", tc.route, tc.code, got, tc.want)
		}
	}
	if got := testutil.CollectAndCount(b.srv.m.HTTPRequests); got != 4 {
		t.Errorf("%d http_requests_total series, want the 4 answered", got)
	}
	if got := testutil.CollectAndCount(b.srv.m.HTTPDuration); got != 3 {
		t.Errorf("%d http_request_duration_seconds series, want one per route", got)
	}
	// Codes outside the cached range still count.
	b.srv.routes.requests(routeOther, 99).Inc()
	b.srv.routes.requests("elsewhere", 200).Inc()
	if got := testutil.ToFloat64(b.srv.m.HTTPRequests.WithLabelValues(routeOther, "99")); got != 1 {
		t.Errorf("code 99 counted %v times", got)
	}
	if got := testutil.ToFloat64(b.srv.m.HTTPRequests.WithLabelValues("elsewhere", "200")); got != 1 {
		t.Errorf("unknown route counted %v times", got)
	}
}
