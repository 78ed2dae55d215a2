package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sfn-approvals/sfn-approvals/identity/albtest"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

// handlerTransport serves requests from a handler in process, optionally
// holding each until gate is closed; entered, if set, hears of each request
// as it arrives.
type handlerTransport struct {
	h       http.Handler
	gate    chan struct{}
	entered chan struct{}
}

func (tr *handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tr.entered != nil {
		tr.entered <- struct{}{}
	}
	if tr.gate != nil {
		select {
		case <-tr.gate:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func newTestVerifier(t testing.TB, alb *albtest.ALB, tr http.RoundTripper, cfg Config) *Verifier {
	t.Helper()
	alb.SetNow(fixedNow)
	cfg.ALBARN = alb.ARN
	cfg.KeysURL = "http://keys.invalid"
	cfg.HTTPClient = &http.Client{Transport: tr}
	cfg.Now = fixedNow
	v, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func TestConcurrentMissesFetchOnce(t *testing.T) {
	defer goleak.VerifyNone(t)
	alb := albtest.NewUnstarted(t)
	tr := &handlerTransport{h: alb, gate: make(chan struct{})}
	v := newTestVerifier(t, alb, tr, Config{})
	const n = 8
	waiting := make(chan string, n)
	v.keys.waiting = func(kid string) { waiting <- kid }

	raw := alb.Header("user-1", "ann@example.com")
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), raw)
			errs <- err
		})
	}
	// One caller fetches (held at the gate); the others must all be
	// waiting for that fetch before it is let through.
	for range n - 1 {
		<-waiting
	}
	close(tr.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got := alb.Fetches(alb.Kid()); got != 1 {
		t.Errorf("%d concurrent misses fetched the key %d times, want 1", n, got)
	}
}

// A waiter whose request ends stops waiting; the fetch goes on for others.
func TestWaiterCancelled(t *testing.T) {
	defer goleak.VerifyNone(t)
	alb := albtest.NewUnstarted(t)
	tr := &handlerTransport{h: alb, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	v := newTestVerifier(t, alb, tr, Config{})
	waiting := make(chan string, 1)
	v.keys.waiting = func(kid string) { waiting <- kid }
	raw := alb.Header("user-1", "ann@example.com")

	leader := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), raw)
		leader <- err
	}()
	<-tr.entered // the leader is fetching
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, raw)
		waiter <- err
	}()
	<-waiting
	cancel()
	if err := <-waiter; !IsUnavailable(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v, want keys_unavailable wrapping Canceled", err)
	}
	close(tr.gate)
	if err := <-leader; err != nil {
		t.Errorf("leader: %v", err)
	}
}

func TestCacheBound(t *testing.T) {
	alb := albtest.NewUnstarted(t)
	v := newTestVerifier(t, alb, &handlerTransport{h: alb}, Config{CacheSize: 3})
	for i := range 10 {
		if i > 0 {
			alb.Rotate(t)
		}
		if _, err := v.Verify(context.Background(), alb.Header("user-1", "ann@example.com")); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if got := v.keys.len(); got > 3 {
			t.Fatalf("after %d kids the cache holds %d keys, want at most 3", i+1, got)
		}
	}
	if got := v.keys.len(); got != 3 {
		t.Errorf("cache holds %d keys, want 3", got)
	}
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantURL string
		wantErr string
	}{
		{name: "default keys URL", cfg: Config{ALBARN: albtest.ARN}, wantURL: "https://public-keys.auth.elb.eu-west-1.amazonaws.com"},
		{name: "keys URL trailing slash", cfg: Config{ALBARN: albtest.ARN, KeysURL: "https://keys.example.com/alb/"}, wantURL: "https://keys.example.com/alb"},
		{name: "no ARN", cfg: Config{}, wantErr: "ALB ARN"},
		{name: "network load balancer", cfg: Config{ALBARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/x/1"}, wantErr: "ALB ARN"},
		{name: "not ELB", cfg: Config{ALBARN: "arn:aws:s3:::bucket"}, wantErr: "ALB ARN"},
		{name: "region with a slash", cfg: Config{ALBARN: "arn:aws:elasticloadbalancing:eu-west-1/x:123456789012:loadbalancer/app/a/1"}, wantErr: "region"},
		{name: "GovCloud needs a keys URL", cfg: Config{ALBARN: "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:loadbalancer/app/a/1"}, wantErr: "partition"},
		{name: "GovCloud with a keys URL", cfg: Config{
			ALBARN:  "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:loadbalancer/app/a/1",
			KeysURL: "https://s3-us-gov-west-1.amazonaws.com/aws-elb-public-keys-prod-us-gov-west-1",
		}, wantURL: "https://s3-us-gov-west-1.amazonaws.com/aws-elb-public-keys-prod-us-gov-west-1"},
		{name: "relative keys URL", cfg: Config{ALBARN: albtest.ARN, KeysURL: "/keys"}, wantErr: "keys URL"},
		{name: "keys URL with a query", cfg: Config{ALBARN: albtest.ARN, KeysURL: "https://k.example.com/?a=1"}, wantErr: "keys URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: %v, want an error about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if v.keys.base != tt.wantURL {
				t.Errorf("keys URL %q, want %q", v.keys.base, tt.wantURL)
			}
		})
	}
}

// BenchmarkVerify is one sign-in check with the key cached: the cost the
// redeemer adds to each link request in alb mode.
//
//	go test -run '^$' -bench BenchmarkVerify ./identity/
func BenchmarkVerify(b *testing.B) {
	alb := albtest.NewUnstarted(b)
	v := newTestVerifier(b, alb, &handlerTransport{h: alb}, Config{})
	raw := alb.Header("user-1", "ann@example.com")
	if _, err := v.Verify(context.Background(), raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), raw); err != nil {
			b.Fatal(err)
		}
	}
}
