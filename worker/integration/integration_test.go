// Package integration runs the worker against the kumo emulator through the
// real aws-sdk-go-v2 clients. It is its own package so that the worker's unit
// tests do not need the emulator.
package integration

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/internal/testio"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/worker"
	"github.com/sfn-approvals/sfn-approvals/worker/workertest"
)

func TestMain(m *testing.M) { kumotest.Main(m) }

const baseURL = "https://approvals.example.com"

// approvalDefinition sends a request built from the execution input, with
// the task token, and waits for it.
func approvalDefinition(queueURL string) string {
	return kumotest.TaskDefinition(queueURL, kumotest.Task{TimeoutSeconds: 120, Fields: []string{"to", "cc", "subject", "data"}})
}

// templateDefinition is approvalDefinition with the template named by the
// execution input.
func templateDefinition(queueURL string) string {
	return kumotest.TaskDefinition(queueURL, kumotest.Task{TimeoutSeconds: 120, Fields: []string{"to", "cc", "subject", "data", "template"}})
}

var hrefRE = regexp.MustCompile(`href="([^"]+)"`)

func TestWorkerAgainstKumo(t *testing.T) {
	awsCfg := kumotest.Config()
	sq, sf := sqs.NewFromConfig(awsCfg), sfn.NewFromConfig(awsCfg)
	queueURL, _ := kumotest.Queue(t, sq, 3)
	sm := kumotest.StateMachine(t, sf, approvalDefinition(queueURL))
	smTemplate := kumotest.StateMachine(t, sf, templateDefinition(queueURL))
	keys, err := link.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := link.ParseKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}

	logs := &testio.SyncBuffer{}
	defer workertest.Start(t, worker.Config{
		QueueURL:      queueURL,
		Sender:        "Approvals <approvals@example.com>",
		BaseURL:       baseURL,
		Keyring:       kr,
		Concurrency:   4,
		MetricsAddr:   "127.0.0.1:0",
		ShutdownGrace: 5 * time.Second,
		ReceiveWait:   time.Second, // the drain lets the last long poll finish
		Logger:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AWS:           &awsCfg,
	}, 15*time.Second)()

	t.Run("approval email with working links", func(t *testing.T) {
		subject := kumotest.Name("Approve deployment")
		exec := kumotest.StartExecution(t, sf, sm, map[string]any{
			"to": []string{"Ben <ben@example.com>"}, "cc": []string{"ann@example.com"},
			"subject": subject, "data": map[string]any{"service": "payments", "version": 42},
		})
		var tokens []string
		for _, recipient := range []string{"ben@example.com", "ann@example.com"} {
			e := waitEmail(t, recipient, subject)
			if len(e.Destination.ToAddresses) != 1 || len(e.Destination.CcAddresses) != 0 {
				t.Errorf("%s: destination %+v, want To: that recipient only", recipient, e.Destination)
			}
			if !strings.Contains(e.FromEmailAddress, "approvals@example.com") {
				t.Errorf("From = %q", e.FromEmailAddress)
			}
			for _, part := range []string{e.HTMLBody, e.Body} {
				if !strings.Contains(part, "payments") || !strings.Contains(part, "42") {
					t.Errorf("%s: data missing from a part", recipient)
				}
			}
			links := hrefRE.FindAllStringSubmatch(e.HTMLBody, -1)
			if len(links) != 2 {
				t.Fatalf("%s: %d links, want 2", recipient, len(links))
			}
			for i, l := range links {
				if !strings.Contains(e.Body, l[1]) {
					t.Errorf("%s: text part lacks link %d", recipient, i)
				}
				c, err := kr.Open(strings.TrimPrefix(l[1], baseURL+link.PathPrefix), time.Now())
				if err != nil {
					t.Fatalf("%s link %d: %v", recipient, i, err)
				}
				if want := []string{"approve", "reject"}[i]; c.Action.Name != want || c.Recipient != recipient {
					t.Errorf("%s link %d: action %q recipient %q, want %q %q", recipient, i, c.Action.Name, c.Recipient, want, recipient)
				}
				tokens = append(tokens, c.TaskToken)
			}
		}
		for _, tok := range tokens[1:] {
			if tok != tokens[0] {
				t.Fatal("links carry different task tokens")
			}
		}
		// The token in the links is the one the execution waits on.
		if _, err := sf.SendTaskSuccess(context.Background(), &sfn.SendTaskSuccessInput{
			TaskToken: aws.String(tokens[0]), Output: aws.String(`{"approved":true}`)}); err != nil {
			t.Fatalf("SendTaskSuccess with the link's token: %v", err)
		}
		if d := kumotest.WaitStatus(t, sf, exec, 10*time.Second); d.Status != sfntypes.ExecutionStatusSucceeded {
			t.Errorf("execution %s, want SUCCEEDED", d.Status)
		}
		l := logs.String()
		if !strings.Contains(l, `"msg":"message handled"`) || !strings.Contains(l, `"outcome":"sent"`) {
			t.Errorf("no log line for the handled message:\n%s", l)
		}
		if strings.Contains(l, tokens[0]) || strings.Contains(l, link.PathPrefix) {
			t.Errorf("logs contain the task token or a link:\n%s", l)
		}
		waitQueueEmpty(t, sq, queueURL)
	})

	t.Run("invalid request fails the execution", func(t *testing.T) {
		exec := kumotest.StartExecution(t, sf, sm, map[string]any{
			"to": []string{"not-an-address"}, "cc": []string{}, "subject": "", "data": map[string]any{},
		})
		d := kumotest.WaitStatus(t, sf, exec, 15*time.Second)
		if d.Status != sfntypes.ExecutionStatusFailed {
			t.Fatalf("execution %s, want FAILED", d.Status)
		}
		desc := failure(t, sf, exec)
		if desc.err != worker.ErrInvalidRequest {
			t.Errorf("error = %q, want %q", desc.err, worker.ErrInvalidRequest)
		}
		var cause struct{ Problems []string }
		if err := json.Unmarshal([]byte(desc.cause), &cause); err != nil {
			t.Fatalf("cause %q: %v", desc.cause, err)
		}
		if len(cause.Problems) != 2 || !strings.Contains(cause.Problems[0], `"not-an-address"`) || cause.Problems[1] != "subject: must not be empty" {
			t.Errorf("problems = %q", cause.Problems)
		}
		waitQueueEmpty(t, sq, queueURL)
	})

	t.Run("approval email without links fails the execution", func(t *testing.T) {
		subject := kumotest.Name("Approve without links")
		exec := kumotest.StartExecution(t, sf, smTemplate, map[string]any{
			"to": []string{"cam@example.com"}, "cc": []string{}, "subject": subject, "data": map[string]any{},
			"template": "notification",
		})
		d := kumotest.WaitStatus(t, sf, exec, 15*time.Second)
		if d.Status != sfntypes.ExecutionStatusFailed {
			t.Fatalf("execution %s, want FAILED", d.Status)
		}
		desc := failure(t, sf, exec)
		if desc.err != worker.ErrInvalidRequest {
			t.Errorf("error = %q, want %q", desc.err, worker.ErrInvalidRequest)
		}
		var cause struct{ Problems []string }
		if err := json.Unmarshal([]byte(desc.cause), &cause); err != nil {
			t.Fatalf("cause %q: %v", desc.cause, err)
		}
		if len(cause.Problems) != 1 || !strings.Contains(cause.Problems[0], `template "notification": the email to cam@example.com lacks the link of "approve"`) {
			t.Errorf("problems = %q, want one naming the template", cause.Problems)
		}
		// The worker fails the execution only after composing every email
		// and before sending any, so the outbox is final here.
		waitQueueEmpty(t, sq, queueURL)
		if got := kumotest.EmailsTo(t, "cam@example.com", subject); len(got) != 0 {
			t.Errorf("%d emails sent for an approval without links", len(got))
		}
	})
}

type execFailure struct{ err, cause string }

// failure reads the execution's error and cause, from the description or,
// failing that, from its history.
func failure(t *testing.T, sf *sfn.Client, exec string) execFailure {
	t.Helper()
	d, err := sf.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(exec)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.Error) != "" {
		return execFailure{aws.ToString(d.Error), aws.ToString(d.Cause)}
	}
	h, err := sf.GetExecutionHistory(context.Background(), &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(exec)})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h.Events {
		if f := e.ExecutionFailedEventDetails; f != nil {
			return execFailure{aws.ToString(f.Error), aws.ToString(f.Cause)}
		}
	}
	t.Fatal("no failure recorded")
	return execFailure{}
}

func waitEmail(t *testing.T, addr, subject string) kumotest.SentEmail {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if got := kumotest.EmailsTo(t, addr, subject); len(got) > 0 {
			if len(got) > 1 {
				t.Errorf("%d emails to %s, want 1", len(got), addr)
			}
			return got[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no email to %s with subject %q", addr, subject)
	return kumotest.SentEmail{}
}

// waitQueueEmpty waits until the worker has deleted every message.
func waitQueueEmpty(t *testing.T, sq *sqs.Client, queueURL string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var attrs map[string]string
	for time.Now().Before(deadline) {
		out, err := sq.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(queueURL),
			AttributeNames: []sqstypes.QueueAttributeName{
				sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			}})
		if err != nil {
			t.Fatal(err)
		}
		attrs = out.Attributes
		if attrs["ApproximateNumberOfMessages"] == "0" && attrs["ApproximateNumberOfMessagesNotVisible"] == "0" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("queue not empty: %v", attrs)
}
