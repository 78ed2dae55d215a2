package redeemer

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate limit defaults. A person deciding makes two requests (GET, POST);
// a mail scanner fetching every link of a message to fifty recipients makes
// a hundred at once, and many approvers may share one office address. The
// limit is there to blunt floods, not to meter people.
const (
	DefaultRateLimit = 10  // requests per second per client, sustained
	DefaultRateBurst = 100 // requests per client at once
	// RateLimitOff as Config.RateLimit turns the limit off (any negative
	// value does; zero is the default, not "no limit").
	RateLimitOff = -1
	// maxClients bounds the limiter's memory. Past it, new clients are
	// not tracked (and so not limited) until idle ones are forgotten:
	// failing open keeps approvers working while a flood from many
	// addresses is left to the load balancer's own protections.
	maxClients = 100_000
)

// limiter is a token bucket per client: each holds up to burst tokens,
// refilled at rate per second; a request takes one or is refused.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[netip.Prefix]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(max(burst, 1)), now: now, buckets: map[netip.Prefix]*bucket{}}
}

// allow takes a token for client, or says how long until one is free.
func (l *limiter) allow(client netip.Prefix) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, found := l.buckets[client]
	if !found {
		if len(l.buckets) >= maxClients {
			return true, 0
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[client] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep forgets, at most once per refill period, the clients whose buckets
// have refilled: they are as good as new.
func (l *limiter) sweep(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	if now.Sub(l.lastSweep) < max(full, time.Second) {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, k)
		}
	}
}

// clients returns how many clients are tracked (for tests).
func (l *limiter) clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// clientOf names the client a request counts against: its IPv4 address, or
// the /64 of its IPv6 address (one subscriber usually holds a whole /64).
// Behind a trusted proxy it is the address the proxy appended last to
// X-Forwarded-For (an AWS load balancer appends the peer it saw), since
// every request then comes from the proxy itself; earlier entries are the
// client's own say and are ignored. It reports false when no address can
// be found, which the caller lets through rather than lumping together.
func clientOf(r *http.Request, trustProxy bool) (netip.Prefix, bool) {
	raw := ""
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			raw = strings.TrimSpace(last)
		}
	}
	if raw == "" {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		raw = host
	}
	addr, err := netip.ParseAddr(raw)
	if err != nil {
		return netip.Prefix{}, false
	}
	addr = addr.Unmap().WithZone("")
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p, true
}

// rateLimited answers with 429 when r's client has used up its requests;
// it reports whether it did.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request) bool {
	if s.limiter == nil {
		return false
	}
	client, ok := clientOf(r, s.cfg.TrustProxyHeaders)
	if !ok {
		return false
	}
	allowed, wait := s.limiter.allow(client)
	if allowed {
		return false
	}
	s.m.RateLimited.Inc()
	// Whole seconds, rounded up, as Retry-After takes them.
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(wait.Seconds(), 1)))))
	s.respond(w, r, view{outcome: outRateLimited})
	return true
}
