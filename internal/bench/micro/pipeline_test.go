package micro

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/sfn-approvals/sfn-approvals/worker"
)

// slowAWS answers as cannedAWS does, after a fixed latency per call: ses
// for SendEmail, sqs for every queue call.
type slowAWS struct {
	*cannedAWS
	ses, sqs time.Duration
}

func (s slowAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v2/email/outbound-emails") {
		time.Sleep(s.ses)
	} else {
		time.Sleep(s.sqs)
	}
	s.cannedAWS.ServeHTTP(w, r)
}

// sqsLatency is each SQS call's latency in BenchmarkPipelineOverBare
// (go test ... -args -sqs-latency 10ms: real SQS takes several ms).
var sqsLatency = flag.Duration("sqs-latency", time.Millisecond, "latency of each SQS call in BenchmarkPipelineOverBare")

// BenchmarkPipelineOverBare is the pipeline phase of approvals bench in
// process, where the cores are not the limit: worker.Run at C = 64 drains
// b.N requests with SendEmail taking 50 ms and each SQS call 1 ms (-sqs-latency), then a
// bare loop of SendEmail calls at the same concurrency sends as many. It
// reports both rates and the worker's share of the bare loop's, which is
// what a message's slot spends beyond SendEmail (its receive, its delete
// and the wait for company in the delete's batch) takes away.
//
//	go test -run '^$' -bench PipelineOverBare -benchtime 6400x -count 3 ./internal/bench/micro/
func BenchmarkPipelineOverBare(b *testing.B) {
	const c = 64
	canned := newCannedAWS(b.N, requestBody(b))
	srv := httptest.NewServer(slowAWS{canned, 50 * time.Millisecond, *sqsLatency})
	defer srv.Close()
	cfg := cannedConfig(srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() {
		errc <- worker.Run(ctx, worker.Config{
			QueueURL: srv.URL + "/000000000000/bench", Sender: "approvals@example.com",
			BaseURL: "https://approvals.example.com", Keyring: keyring(b), Concurrency: c,
			ReceiveWait: time.Second, AWS: &cfg, Logger: discardLogger(),
		})
	}()
	select {
	case <-canned.done:
	case err := <-errc:
		b.Fatalf("worker stopped: %v", err)
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d messages deleted", canned.deleted.Load(), b.N)
	}
	workerRate := float64(b.N) / time.Since(start).Seconds()
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}

	ses := sesv2.NewFromConfig(cfg)
	in := preRendered(b)
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	start = time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if _, err := ses.SendEmail(context.Background(), in); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	bareRate := float64(b.N) / time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(workerRate, "worker-emails/s")
	b.ReportMetric(bareRate, "bare-emails/s")
	b.ReportMetric(workerRate/bareRate, "of-bare")
}
