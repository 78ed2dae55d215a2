package bench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
)

// ceilingEmailBytes is about the size of the worker's approval email (HTML
// and text parts, two links of ~1.4 KB each, in both).
const ceilingEmailBytes = 10 << 10

// ceiling is the baseline measured in the same run as the worker: c
// goroutines doing nothing but SendEmail, through the same fault proxy (so
// the same injected latency) to the same emulator. No worker can send
// faster than this on this machine; the gap between it and C/L is the
// emulator's, not the worker's.
func (r *run) ceiling(ctx context.Context, n, c int) (float64, error) {
	cfg := kumo.Config()
	cfg.BaseEndpoint = aws.String(r.proxyURL)
	client := sesv2.NewFromConfig(cfg, func(o *sesv2.Options) {
		// The same idle pool the services use, so connections are reused.
		o.HTTPClient = servicesHTTPClient()
	})
	half := strings.Repeat("x", ceilingEmailBytes/2)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				_, err := client.SendEmail(ctx, &sesv2.SendEmailInput{
					FromEmailAddress: aws.String("approvals@example.com"),
					Destination:      &sestypes.Destination{ToAddresses: []string{"ceiling@example.com"}},
					Content: &sestypes.EmailContent{Simple: &sestypes.Message{
						Subject: &sestypes.Content{Data: aws.String("ceiling")},
						Body:    &sestypes.Body{Text: &sestypes.Content{Data: aws.String(half)}, Html: &sestypes.Content{Data: aws.String(half)}},
					}},
				})
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("ceiling: %d of %d SendEmail calls failed", f, n)
	}
	return float64(n) / el.Seconds(), nil
}

// servicesHTTPClient is the HTTP client the services build (awsx), for the
// bench's own AWS clients: the same idle pool, and no answer dropped.
func servicesHTTPClient() aws.HTTPClient {
	return awsx.HTTPClient{SDK: awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 2 * awsx.MaxIdleConnsPerHost
		t.MaxIdleConnsPerHost = awsx.MaxIdleConnsPerHost
	})}
}
