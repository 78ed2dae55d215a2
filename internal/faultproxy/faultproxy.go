// Package faultproxy sits between the services and the AWS endpoint (kumo
// locally) and makes AWS behave badly on purpose: added latency per service,
// latency spikes, throttling and 5xx answers shaped as each service's real
// errors, and connections reset without an answer. Benchmarks use the
// latency; reliability tests use the faults.
//
// It works at the HTTP level, not TCP (as Toxiproxy does), because it has to
// tell SendEmail from ReceiveMessage and answer with errors the SDK parses
// as TooManyRequestsException or ThrottlingException; latency and resets are
// then a few lines more in the same place.
package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sfn-approvals/sfn-approvals/internal/httpx"
)

// Service names the AWS service a request is for.
type Service string

const (
	SQS   Service = "sqs"
	SFN   Service = "sfn"
	SESv2 Service = "sesv2"
	Other Service = "other"
)

// Services lists the services faults can be set for.
var Services = []Service{SQS, SFN, SESv2}

// Fault says how to mistreat one service's requests. Rates are fractions of
// requests in [0, 1]; they are drawn independently per request, in the
// order stall, reset, throttle, server error, API error.
type Fault struct {
	Latency         time.Duration // added to every request
	Jitter          time.Duration // plus a uniform random part in [0, Jitter)
	SpikeRate       float64       // fraction that also wait Spike
	Spike           time.Duration //
	ThrottleRate    float64       // answered with the service's throttling error
	ServerErrorRate float64       // answered with a 500 or 503
	ResetRate       float64       // connection closed with no answer
	// StallRate is the fraction accepted and never answered, as a
	// half-open connection behaves: the request is read, then nothing is
	// written until the client hangs up.
	StallRate float64
	// APIErrorRate is the fraction answered with APIError, an error of the
	// service's own shape (an operator's mistake such as SES's
	// SendingPausedException).
	APIErrorRate float64
	APIError     APIError
	// Operations limits the errors (not the latency) to these operations,
	// e.g. SendTaskSuccess; empty means all.
	Operations []string
}

// APIError is an error answer as the service writes it, which the SDK
// parses into Code.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// SendingPaused is SES's answer while sending is paused for the account or
// the configuration set: the operator's to fix, not the message's fault.
var SendingPaused = APIError{Status: http.StatusBadRequest, Code: "SendingPausedException",
	Message: "Sending is paused for this account."}

// Stats counts what the proxy did to one service.
type Stats struct {
	Requests, Throttled, ServerErrors, Resets int64
	// Stalls counts requests stalled; StallsOpen those whose client has
	// not yet given up on them.
	Stalls, StallsOpen int64
	APIErrors          int64 // answered with Fault.APIError
}

type counters struct {
	requests, throttled, serverErrors, resets atomic.Int64
	stalls, stallsOpen, apiErrors             atomic.Int64
}

// Proxy is an http.Handler that forwards to the target.
type Proxy struct {
	rp     *httputil.ReverseProxy
	mu     sync.RWMutex
	faults map[Service]Fault
	stats  map[Service]*counters
	rngMu  sync.Mutex
	rng    *rand.Rand

	opsMu sync.Mutex
	ops   map[opKey]*OpStats
}

type opKey struct {
	svc Service
	op  string
}

// OpStats is what the proxy saw of one operation: benchmarks read
// throughput windows and latencies off it without touching the services.
type OpStats struct {
	Service Service
	Op      string
	Count   int64     // requests answered, by the target or by an injected fault
	Errors  int64     // of which with a status of 400 or more, or reset
	First   time.Time // arrival of the first request
	Last    time.Time // end of the last answer
	// Durations holds each request's time from arrival to the end of its
	// answer, injected latency included, in order of completion.
	Durations []time.Duration
}

// New returns a proxy to target (e.g. http://127.0.0.1:4566). seed makes
// the random draws repeatable.
func New(target string, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("fault proxy target: %w", err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	// Many concurrent clients: keep enough idle connections to kumo.
	rp.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}
	// A client that hangs up (a worker stopping mid long poll) is routine
	// here, not worth a log line; other failures still answer 502.
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() == nil {
			log.Printf("fault proxy: %s %s: %v", r.Method, r.URL.Path, err)
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	p := &Proxy{rp: rp, faults: map[Service]Fault{}, stats: map[Service]*counters{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ops: map[opKey]*OpStats{}}
	for _, s := range append(Services, Other) {
		p.stats[s] = &counters{}
	}
	return p, nil
}

// Listen serves h (a proxy, or a handler in front of one) on a free port of
// 127.0.0.1, and returns its URL, for the services' AWS_ENDPOINT_URL, and
// what stops it.
func Listen(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// Set replaces the fault for a service; the zero Fault forwards untouched.
func (p *Proxy) Set(s Service, f Fault) {
	p.mu.Lock()
	p.faults[s] = f
	p.mu.Unlock()
}

// Stats returns what has been done to a service so far.
func (p *Proxy) Stats(s Service) Stats {
	c := p.stats[s]
	return Stats{Requests: c.requests.Load(), Throttled: c.throttled.Load(), ServerErrors: c.serverErrors.Load(), Resets: c.resets.Load(),
		Stalls: c.stalls.Load(), StallsOpen: c.stallsOpen.Load(), APIErrors: c.apiErrors.Load()}
}

// Classify says which service and operation a request is for, from the
// X-Amz-Target header of the JSON protocols (SQS, Step Functions) or the
// REST path of SES v2.
func Classify(r *http.Request) (Service, string) {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		prefix, op, _ := strings.Cut(t, ".")
		switch prefix {
		case "AmazonSQS":
			return SQS, op
		case "AWSStepFunctions":
			return SFN, op
		}
		return Other, op
	}
	if strings.HasPrefix(r.URL.Path, "/v2/email/") {
		if r.Method == http.MethodPost && r.URL.Path == "/v2/email/outbound-emails" {
			return SESv2, "SendEmail"
		}
		return SESv2, r.Method + " " + r.URL.Path
	}
	return Other, ""
}

// Op returns what the proxy saw of one operation since the last ResetOps.
func (p *Proxy) Op(s Service, op string) OpStats {
	p.opsMu.Lock()
	defer p.opsMu.Unlock()
	o, ok := p.ops[opKey{s, op}]
	if !ok {
		return OpStats{Service: s, Op: op}
	}
	c := *o
	c.Durations = append([]time.Duration(nil), o.Durations...)
	return c
}

// ResetOps forgets the per-operation records (not the Stats counters), so a
// benchmark phase starts from nothing; they grow by one duration per
// request until then.
func (p *Proxy) ResetOps() {
	p.opsMu.Lock()
	p.ops = map[opKey]*OpStats{}
	p.opsMu.Unlock()
}

func (p *Proxy) record(svc Service, op string, start time.Time, status int) {
	end := time.Now()
	p.opsMu.Lock()
	defer p.opsMu.Unlock()
	o, ok := p.ops[opKey{svc, op}]
	if !ok {
		o = &OpStats{Service: svc, Op: op, First: start}
		p.ops[opKey{svc, op}] = o
	}
	o.Count++
	if status == 0 || status >= 400 {
		o.Errors++
	}
	if start.Before(o.First) {
		o.First = start
	}
	if end.After(o.Last) {
		o.Last = end
	}
	o.Durations = append(o.Durations, end.Sub(start))
}

func (p *Proxy) float() float64 {
	p.rngMu.Lock()
	defer p.rngMu.Unlock()
	return p.rng.Float64()
}

func (p *Proxy) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	svc, op := Classify(r)
	// Code stays 0 when the connection is reset without a status.
	w := &httpx.StatusRecorder{ResponseWriter: rw}
	defer func() { p.record(svc, op, start, w.Code) }()
	c := p.stats[svc]
	c.requests.Add(1)
	p.mu.RLock()
	f := p.faults[svc]
	p.mu.RUnlock()

	delay := f.Latency
	if f.Jitter > 0 {
		delay += time.Duration(p.float() * float64(f.Jitter))
	}
	if f.SpikeRate > 0 && p.float() < f.SpikeRate {
		delay += f.Spike
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	if applies(f.Operations, op) {
		switch {
		case f.StallRate > 0 && p.float() < f.StallRate:
			c.stalls.Add(1)
			c.stallsOpen.Add(1)
			stall(r)
			c.stallsOpen.Add(-1)
			return
		case f.ResetRate > 0 && p.float() < f.ResetRate:
			c.resets.Add(1)
			reset(rw)
			return
		case f.ThrottleRate > 0 && p.float() < f.ThrottleRate:
			c.throttled.Add(1)
			writeError(w, svc, throttle)
			return
		case f.ServerErrorRate > 0 && p.float() < f.ServerErrorRate:
			c.serverErrors.Add(1)
			writeError(w, svc, serverError)
			return
		case f.APIErrorRate > 0 && p.float() < f.APIErrorRate:
			c.apiErrors.Add(1)
			writeAPIError(w, svc, f.APIError)
			return
		}
	}
	// Forward a copy of the body: the server closes r.Body as soon as this
	// handler starts answering, and the transport, which streams r.Body to
	// the target, reads it once more after its last byte. Losing that race
	// made it drop the connection to the target under the answer being
	// copied, and the client got it cut short.
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	p.rp.ServeHTTP(w, r)
}

func applies(ops []string, op string) bool {
	if len(ops) == 0 {
		return true
	}
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// reset closes the client's connection without an answer, as a load
// balancer or a crashed endpoint would.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// stall reads the request and answers nothing until the client hangs up
// (or the proxy's server closes). Reading the body first matters: only then
// does net/http watch the connection and end the request's context when
// the client goes away.
func stall(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

type errKind int

const (
	throttle errKind = iota
	serverError
)

// writeError answers as the service itself does, so the SDK's deserializer
// yields the real error code: JSON protocols put it in "__type" with a 400
// (throttling) or 500; SES v2 (REST JSON) in the X-Amzn-ErrorType header
// with a 429 or 500.
func writeError(w http.ResponseWriter, svc Service, kind errKind) {
	writeAPIError(w, svc, errorFor(svc, kind))
}

func errorFor(svc Service, kind errKind) APIError {
	var status int
	var code, msg string
	switch {
	case svc == SESv2 && kind == throttle:
		status, code, msg = http.StatusTooManyRequests, "TooManyRequestsException", "Maximum sending rate exceeded."
	case kind == throttle:
		status, code, msg = http.StatusBadRequest, "ThrottlingException", "Rate exceeded"
	case svc == SQS:
		status, code, msg = http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."
	case svc == SESv2:
		status, code, msg = http.StatusInternalServerError, "InternalServiceErrorException", "Internal service error."
	default:
		status, code, msg = http.StatusInternalServerError, "ServiceUnavailable", "Service unavailable."
	}
	return APIError{Status: status, Code: code, Message: msg}
}

// writeAPIError writes e as svc writes its errors.
func writeAPIError(w http.ResponseWriter, svc Service, e APIError) {
	status, code, msg := e.Status, e.Code, e.Message
	h := w.Header()
	h.Set("X-Amzn-ErrorType", code)
	h.Set("X-Amzn-RequestId", "fault-proxy")
	if svc == SESv2 {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":%q}`, msg)
		return
	}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	if svc == SQS {
		// SQS's JSON protocol also reports the query-compatible code.
		h.Set("x-amzn-query-error", code+";Sender")
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"__type":%q,"message":%q}`, code, msg)
}
