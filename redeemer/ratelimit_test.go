package redeemer

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRateLimit(t *testing.T) {
	b := setup(t, func(c *Config) { c.RateLimit, c.RateBurst = 2, 3 })
	p := b.path(t, approve)

	get := func(remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "https://approvals.example.com"+p, nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		b.srv.ServeHTTP(w, r)
		return w
	}
	for i := range 3 {
		if w := get("198.51.100.7:1000"); w.Code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i+1, w.Code)
		}
	}
	w := get("198.51.100.7:1001")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("request past the burst: %d, want 429", w.Code)
	}
	// Half a token is missing at rate 2/s: 0.5 s, rounded up to 1.
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	for _, h := range []string{"Content-Security-Policy", "Referrer-Policy", "Cache-Control", "X-Frame-Options"} {
		if w.Header().Get(h) == "" {
			t.Errorf("429 without %s", h)
		}
	}
	if body := w.Body.String(); !strings.Contains(body, "Too many requests") || !strings.Contains(body, "Nothing was changed") {
		t.Errorf("429 page:\n%s", body)
	}
	if got := testutil.ToFloat64(b.srv.m.RateLimited); got != 1 {
		t.Errorf("rate_limited_total = %v, want 1", got)
	}
	// Refused before the link is opened.
	if got := b.linkChecks("ok"); got != 3 {
		t.Errorf("links opened = %v, want 3", got)
	}

	// Another client has its own bucket; POST counts too.
	r := httptest.NewRequest(http.MethodPost, "https://approvals.example.com"+p, nil)
	r.RemoteAddr = "198.51.100.8:1000"
	r.Header.Set("Accept", "application/json")
	pw := httptest.NewRecorder()
	b.srv.ServeHTTP(pw, r)
	if pw.Code != http.StatusOK {
		t.Fatalf("POST from another client: %d\n%s", pw.Code, pw.Body)
	}

	// Time refills the bucket.
	b.now = b.now.Add(time.Second)
	if w := get("198.51.100.7:1002"); w.Code != http.StatusOK {
		t.Fatalf("after a second: %d", w.Code)
	}

	// Routes other than links are never limited.
	for range 5 {
		r := httptest.NewRequest(http.MethodGet, "https://approvals.example.com/healthz", nil)
		r.RemoteAddr = "198.51.100.7:1003"
		w := httptest.NewRecorder()
		b.srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("/healthz: %d", w.Code)
		}
	}
}

func TestRateLimitJSON(t *testing.T) {
	b := setup(t, func(c *Config) { c.RateLimit, c.RateBurst = 1, 1 })
	p := b.path(t, approve)
	b.do(req{method: http.MethodGet, path: p, json: true})
	w := b.do(req{method: http.MethodGet, path: p, json: true})
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), `"outcome":"rate_limited"`) {
		t.Fatalf("second GET = %d %s, want 429 rate_limited", w.Code, w.Body)
	}
}

func TestRateLimitOff(t *testing.T) {
	b := setup(t, func(c *Config) { c.RateLimit, c.RateBurst = -1, 1 })
	p := b.path(t, approve)
	for i := range 20 {
		if w := b.do(req{method: http.MethodGet, path: p}); w.Code != http.StatusOK {
			t.Fatalf("request %d with the limit off: %d", i+1, w.Code)
		}
	}
}

func TestClientOf(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		xff    []string
		trust  bool
		want   string // "" for none
	}{
		{"IPv4 peer", "203.0.113.5:4242", nil, false, "203.0.113.5/32"},
		{"IPv6 peer by /64", "[2001:db8:1:2:3:4:5:6]:443", nil, false, "2001:db8:1:2::/64"},
		{"IPv4-mapped IPv6", "[::ffff:203.0.113.5]:1", nil, false, "203.0.113.5/32"},
		{"header ignored unless trusted", "10.0.0.9:1", []string{"203.0.113.5"}, false, "10.0.0.9/32"},
		{"trusted: last entry", "10.0.0.9:1", []string{"1.2.3.4, 203.0.113.5"}, true, "203.0.113.5/32"},
		{"trusted: last header line", "10.0.0.9:1", []string{"1.2.3.4", "203.0.113.6"}, true, "203.0.113.6/32"},
		{"trusted without header: peer", "10.0.0.9:1", nil, true, "10.0.0.9/32"},
		// A garbled last entry is the proxy's own bucket, never no limit.
		{"trusted, garbage appended", "10.0.0.9:1", []string{"203.0.113.5, not-an-ip"}, true, "10.0.0.9/32"},
		{"trusted, empty last entry", "10.0.0.9:1", []string{"203.0.113.5,"}, true, "10.0.0.9/32"},
		{"trusted, empty header", "10.0.0.9:1", []string{""}, true, "10.0.0.9/32"},
		{"trusted, IPv6 entry by /64", "10.0.0.9:1", []string{"2001:db8:1:2:3:4:5:6"}, true, "2001:db8:1:2::/64"},
		{"no address", "", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, ok := clientOf(r, tt.trust)
			if tt.want == "" {
				if ok {
					t.Fatalf("clientOf = %v, want none", got)
				}
				return
			}
			if !ok || got != netip.MustParsePrefix(tt.want) {
				t.Fatalf("clientOf = %v, %t; want %s", got, ok, tt.want)
			}
		})
	}
}

func TestLimiterForgetsIdleClients(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(10, 10, func() time.Time { return now })
	for i := range 50 {
		l.allow(netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32))
	}
	if n := l.clients(); n != 50 {
		t.Fatalf("%d clients tracked, want 50", n)
	}
	now = now.Add(2 * time.Second) // a full refill is 1 s
	l.allow(netip.MustParsePrefix("198.51.100.1/32"))
	if n := l.clients(); n != 1 {
		t.Fatalf("%d clients tracked after they went idle, want 1", n)
	}
}

// Everything under the link prefix is one route: a link cut down to
// nothing is rate limited and counted as a link, as a whole one is.
func TestOneLinkRoute(t *testing.T) {
	b := setup(t, func(c *Config) { c.RateLimit, c.RateBurst = 1, 1 })
	good := b.path(t, approve)
	tests := []struct {
		name      string
		method    string
		path      string
		route     string
		firstCode int
	}{
		{"whole link", http.MethodGet, good, "link_get", http.StatusOK},
		{"cut to nothing", http.MethodGet, "/a/", "link_get", http.StatusBadRequest},
		{"cut, posted", http.MethodPost, "/a/", "link_post", http.StatusBadRequest},
		{"cut short", http.MethodHead, "/a/AAAA", "link_get", http.StatusBadRequest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get := func() int {
				r := httptest.NewRequest(tt.method, "https://approvals.example.com"+tt.path, nil)
				r.RemoteAddr = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String() + ":1000"
				w := httptest.NewRecorder()
				b.srv.ServeHTTP(w, r)
				return w.Code
			}
			if code := get(); code != tt.firstCode {
				t.Fatalf("first request: %d, want %d", code, tt.firstCode)
			}
			if code := get(); code != http.StatusTooManyRequests {
				t.Fatalf("second request within the second: %d, want 429", code)
			}
			for code, want := range map[string]float64{strconv.Itoa(tt.firstCode): 1, "429": 1} {
				if got := testutil.ToFloat64(b.srv.m.HTTPRequests.WithLabelValues(tt.route, code)); got < want {
					t.Errorf("http_requests_total{route=%q,code=%q} = %v, want at least %v", tt.route, code, got, want)
				}
			}
		})
	}
	if got := testutil.ToFloat64(b.srv.m.HTTPRequests.WithLabelValues("other", "400")); got != 0 {
		t.Errorf("cut links counted as route other: %v", got)
	}
}

// Zero is the default, as everywhere in Config; only RateLimitOff is off.
func TestRateLimitConfig(t *testing.T) {
	for _, tt := range []struct {
		name  string
		limit float64
		want  float64 // 0: no limiter
	}{
		{"zero is the default", 0, DefaultRateLimit},
		{"set", 3, 3},
		{"off", RateLimitOff, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, func(c *Config) { c.RateLimit = tt.limit })
			switch l := b.srv.limiter; {
			case tt.want == 0 && l != nil:
				t.Errorf("limiter at %v/s, want none", l.rate)
			case tt.want != 0 && (l == nil || l.rate != tt.want):
				t.Errorf("limiter %+v, want %v/s", l, tt.want)
			}
		})
	}
}

// Behind a trusted proxy, a client that garbles X-Forwarded-For is limited
// with the proxy's address rather than not at all.
func TestRateLimitGarbledForwardedFor(t *testing.T) {
	b := setup(t, func(c *Config) { c.RateLimit, c.RateBurst, c.TrustProxyHeaders = 1, 2, true })
	p := b.path(t, approve)
	codes := []int{}
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "https://approvals.example.com"+p, nil)
		r.RemoteAddr = "10.0.0.9:4000"
		r.Header.Set("X-Forwarded-For", "203.0.113.5, <script>")
		w := httptest.NewRecorder()
		b.srv.ServeHTTP(w, r)
		codes = append(codes, w.Code)
	}
	if diff := cmp.Diff([]int{200, 200, 429}, codes); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
}

// A full client table makes room by forgetting the client seen least
// recently: a new client is limited from its first request, and one that
// keeps sending keeps its (empty) bucket.
func TestLimiterFullTableEvicts(t *testing.T) {
	now := time.Unix(0, 0)
	evicted := 0
	l := newLimiter(1, 2, func() time.Time { return now })
	l.max, l.evicted = 3, func() { evicted++ }
	addr := func(i byte) netip.Prefix { return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, i}), 32) }

	heavy := addr(0)
	for range 2 {
		l.allow(heavy)
	}
	if ok, _ := l.allow(heavy); ok {
		t.Fatal("heavy client allowed past its burst")
	}
	// A flood of new addresses, the heavy client still sending in between.
	for i := byte(1); i <= 10; i++ {
		if ok, _ := l.allow(addr(i)); !ok {
			t.Fatalf("new client %d refused its first request", i)
		}
		if ok, _ := l.allow(heavy); ok {
			t.Fatalf("heavy client allowed after new client %d: its bucket was forgotten", i)
		}
	}
	if n := l.clients(); n != 3 {
		t.Errorf("%d clients tracked, want at most 3", n)
	}
	if evicted != 8 {
		t.Errorf("%d evictions, want 8 (10 new clients, 2 free places)", evicted)
	}
	// A new client is limited like any other, full table or not.
	fresh := addr(200)
	l.allow(fresh)
	l.allow(fresh)
	if ok, _ := l.allow(fresh); ok {
		t.Error("client past its burst allowed while the table is full")
	}
}

// The server counts the clients it had to forget.
func TestRateLimitEvictionsCounted(t *testing.T) {
	b := setup(t, func(c *Config) { c.RateLimit, c.RateBurst = 1, 1 })
	b.srv.limiter.max = 1
	p := b.path(t, approve)
	for _, remote := range []string{"198.51.100.1:1", "198.51.100.2:1", "198.51.100.3:1"} {
		r := httptest.NewRequest(http.MethodGet, "https://approvals.example.com"+p, nil)
		r.RemoteAddr = remote
		b.srv.ServeHTTP(httptest.NewRecorder(), r)
	}
	if got := testutil.ToFloat64(b.srv.m.RateLimitEvictions); got != 2 {
		t.Errorf("rate_limit_evictions_total = %v, want 2", got)
	}
}
