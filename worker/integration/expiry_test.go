package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/internal/testio"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

// A message received twice mints links with one expiry, its SentTimestamp
// plus expiresIn. The first worker's send to the second recipient hangs, its
// shutdown releases the message after the grace period, and a second worker,
// at least that much later, sends it again.
func TestRedeliveredMessageMintsSameExpiry(t *testing.T) {
	ctx := context.Background()
	awsCfg := kumotest.Config()
	sq := sqs.NewFromConfig(awsCfg)
	queueURL, _ := kumotest.Queue(t, sq, 5)
	keys, err := link.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := link.ParseKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}

	// Every call goes through a proxy that, while hold is set, keeps each
	// SendEmail to b@example.com unanswered until its caller gives up.
	target, err := url.Parse(aws.ToString(awsCfg.BaseEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	var hold atomic.Bool
	hold.Store(true)
	held := make(chan struct{}, 10)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() && strings.HasPrefix(r.URL.Path, "/v2/email/outbound-emails") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			if bytes.Contains(body, []byte("b@example.com")) {
				held <- struct{}{}
				<-r.Context().Done()
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		forward.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	viaProxy := awsCfg.Copy()
	viaProxy.BaseEndpoint = aws.String(proxy.URL)

	subject := kumotest.Name("Expiry")
	body := fmt.Sprintf(`{"taskToken":"AAAAKgAAAAIAAAAAAAAAAf8=","to":["a@example.com","b@example.com"],"subject":%q,"expiresIn":"1h"}`, subject)
	if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}); err != nil {
		t.Fatal(err)
	}
	sent := sentTimestamp(t, sq, queueURL)

	logs := &testio.SyncBuffer{}
	run := func() (stop func()) {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- worker.Run(runCtx, worker.Config{
				QueueURL:      queueURL,
				Sender:        "approvals@example.com",
				BaseURL:       baseURL,
				Keyring:       kr,
				Concurrency:   2,
				ShutdownGrace: 1500 * time.Millisecond,
				ReceiveWait:   time.Second,
				Logger:        slog.New(slog.NewJSONHandler(logs, nil)),
				AWS:           &viaProxy,
			})
		}()
		return func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v, want nil after shutdown", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("Run did not return after shutdown")
			}
		}
	}

	stop := run()
	waitEmails(t, "a@example.com", subject, 1)
	select {
	case <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("the send to b@example.com never started")
	}
	stop() // the held send is cancelled after the grace period; the message is released
	hold.Store(false)
	stop = run()
	defer stop()
	first := waitEmails(t, "a@example.com", subject, 2)
	waitEmails(t, "b@example.com", subject, 1)
	waitQueueEmpty(t, sq, queueURL)
	if !strings.Contains(logs.String(), `"msg":"message released, visible now"`) {
		t.Errorf("no log line for the release:\n%s", logs)
	}

	want := sent.Add(time.Hour).Truncate(time.Second).UTC()
	var got []time.Time
	for _, e := range first {
		l := hrefRE.FindStringSubmatch(e.HTMLBody)
		if l == nil {
			t.Fatal("email without a link")
		}
		c, err := kr.Open(strings.TrimPrefix(l[1], baseURL+link.PathPrefix), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.ExpiresAt)
	}
	if diff := cmp.Diff([]time.Time{want, want}, got); diff != "" {
		t.Errorf("link expiries of the two emails to a@example.com (-want +got):\n%s", diff)
	}
}

// sentTimestamp receives the one message on the queue, reads its
// SentTimestamp, and makes it visible again at once.
func sentTimestamp(t *testing.T, sq *sqs.Client, queueURL string) time.Time {
	t.Helper()
	out, err := sq.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 1, WaitTimeSeconds: 5,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameSentTimestamp},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("%d messages on the queue, want 1", len(out.Messages))
	}
	m := out.Messages[0]
	ms, err := strconv.ParseInt(m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64)
	if err != nil {
		t.Fatalf("SentTimestamp %q: %v (attributes %v)", m.Attributes["SentTimestamp"], err, m.Attributes)
	}
	if _, err := sq.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	return time.UnixMilli(ms)
}

// waitEmails waits until n emails to addr with the subject are in the
// outbox and returns them; more than n is an error.
func waitEmails(t *testing.T, addr, subject string, n int) []kumotest.SentEmail {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if got := kumotest.EmailsTo(t, addr, subject); len(got) >= n {
			if len(got) > n {
				t.Errorf("%d emails to %s, want %d", len(got), addr, n)
			}
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("fewer than %d emails to %s with subject %q", n, addr, subject)
	return nil
}
