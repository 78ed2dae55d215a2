package bench

import (
	"context"
	"flag"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/sfn-approvals/sfn-approvals/internal/faultproxy"
	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
)

var (
	probeReceives  = flag.Int("receives", 400, "ReceiveMessage answers TestNoReceiveAnswerLost collects (RELIABILITY.md's proof: 20000)")
	probeClient    = flag.String("receive-client", "awsx", "HTTP client of TestNoReceiveAnswerLost: awsx (the services') or sdk (the SDK's own, which loses answers)")
	probeConsumers = flag.Int("receive-consumers", 64, "concurrent receivers of TestNoReceiveAnswerLost")
	probeBusy      = flag.Int("receive-busy", 0, "busy goroutines TestNoReceiveAnswerLost runs alongside, as a worker's own work")
	probeVia       = flag.String("receive-via", "kumo", "where TestNoReceiveAnswerLost sends: kumo, or proxy (the fault proxy before it, injecting nothing)")
)

// TestNoReceiveAnswerLost consumes through the real SQS client against
// kumo as the worker does, and fails on any ReceiveMessage answer that did
// not arrive and any message stranded by one.
// The flags scale it up and swap the client, for the figures in
// RELIABILITY.md.
func TestNoReceiveAnswerLost(t *testing.T) {
	cfg := kumo.Config()
	switch *probeClient {
	case "awsx": // kumo.Config's own
	case "sdk":
		cfg.HTTPClient = awshttp.NewBuildableClient()
	default:
		t.Fatalf("-receive-client %q: want awsx or sdk", *probeClient)
	}
	switch *probeVia {
	case "kumo":
	case "proxy":
		p, err := faultproxy.New(kumo.Endpoint, 1)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		cfg.BaseEndpoint = aws.String("http://" + ln.Addr().String())
	default:
		t.Fatalf("-receive-via %q: want kumo or proxy", *probeVia)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	res, err := ReceiveProbe(ctx, cfg, ReceiveOptions{Receives: *probeReceives, Consumers: *probeConsumers, Busy: *probeBusy})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client %s via %s: %s", *probeClient, *probeVia, res)
	for _, e := range res.FirstErrors {
		t.Logf("failed attempt: %s", e)
	}
	// Stalls are logged, not failed on: one with no lost answer behind it
	// is the machine's (other work holding both cores for seconds).
	if res.LostAnswers != 0 || res.Stranded != 0 || res.OtherErrors != 0 {
		t.Errorf("want no lost answer, stranded message or failed attempt: %s", res)
	}
}
