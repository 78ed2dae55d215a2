package redeemer

import (
	"container/list"
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
	// maxClients bounds the limiter's memory. Past it, the client seen
	// least recently is forgotten to make room: a flood from many
	// addresses then costs the forgotten ones a fresh bucket, but every
	// client is still limited, and one that keeps sending is never the one
	// forgotten.
	maxClients = 100_000
)

// limiter is a token bucket per client: each holds up to burst tokens,
// refilled at rate per second; a request takes one or is refused. Buckets
// are kept in order of last use, so the ones that have refilled (as good as
// new) and, when the table is full, the least recently used one are found
// at the back without a scan.
type limiter struct {
	rate    float64
	burst   float64
	full    time.Duration // time to refill an empty bucket
	now     func() time.Time
	max     int    // clients tracked at most (maxClients)
	evicted func() // called for each client forgotten before its bucket refilled; may be nil

	mu      sync.Mutex
	buckets map[netip.Prefix]*list.Element // of *bucket
	lru     list.List                      // front: used last
}

type bucket struct {
	client netip.Prefix
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	b := float64(max(burst, 1))
	return &limiter{rate: rate, burst: b, full: time.Duration(b / rate * float64(time.Second)), now: now,
		max: maxClients, buckets: map[netip.Prefix]*list.Element{}}
}

// allow takes a token for client, or says how long until one is free.
func (l *limiter) allow(client netip.Prefix) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetRefilled(now)
	var b *bucket
	if e, found := l.buckets[client]; found {
		b = e.Value.(*bucket)
		l.lru.MoveToFront(e)
	} else {
		if len(l.buckets) >= l.max {
			l.forget(l.lru.Back())
			if l.evicted != nil {
				l.evicted()
			}
		}
		b = &bucket{client: client, tokens: l.burst, at: now}
		l.buckets[client] = l.lru.PushFront(b)
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

// forgetRefilled drops, from the back, the clients idle long enough for
// their buckets to have refilled: a new bucket is the same.
func (l *limiter) forgetRefilled(now time.Time) {
	for e := l.lru.Back(); e != nil && now.Sub(e.Value.(*bucket).at) >= l.full; e = l.lru.Back() {
		l.forget(e)
	}
}

func (l *limiter) forget(e *list.Element) {
	delete(l.buckets, e.Value.(*bucket).client)
	l.lru.Remove(e)
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
// client's own say and are ignored. When that entry is missing or not an
// address, the peer (the proxy) is the client: a request that garbles the
// header shares the proxy's bucket rather than escaping the limit. It
// reports false only when the peer address cannot be read either.
func clientOf(r *http.Request, trustProxy bool) (netip.Prefix, bool) {
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if addr, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
				return clientPrefix(addr), true
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}, false
	}
	return clientPrefix(addr), true
}

func clientPrefix(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// rateLimited answers with 429 when r's client has used up its requests;
// it reports whether it did.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request) bool {
	if s.limiter == nil {
		return false
	}
	client, ok := clientOf(r, s.cfg.TrustProxyHeaders)
	if !ok {
		// No peer address: net/http always sets one, so only a request
		// built by hand gets here.
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
