package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfn-approvals/sfn-approvals/internal/testio"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// nested returns a JSON value of n nested arrays.
func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// Each hostile request that carries a token fails its execution at once
// with a cause that names the problem; none sends an email, none is lost.
// Bodies that cannot even be read are left for the dead-letter queue.
func TestHostileRequests(t *testing.T) {
	many := make([]string, 5000)
	for i := range many {
		many[i] = fmt.Sprintf("user%d@example.com", i)
	}
	manyJSON, _ := json.Marshal(many)
	tok := `"taskToken":"` + testToken + `"`
	tests := []struct {
		name      string
		body      string
		want      string // in the failure cause; "" for a malformed body
		malformed bool
	}{
		{"oversized body", `{` + tok + `,"to":["a@example.com"],"subject":"s","data":{"x":"` + strings.Repeat("x", MaxBodyBytes) + `"}}`,
			fmt.Sprintf("bytes, at most %d", MaxBodyBytes), false},
		{"thousands of recipients", `{` + tok + `,"to":` + string(manyJSON) + `,"subject":"s"}`,
			"to, cc: 5000 recipients, at most 50", false},
		{"deeply nested data", `{` + tok + `,"to":["a@example.com"],"subject":"s","data":{"x":` + nested(MaxDataDepth) + `}}`,
			"data: nested deeper than 32 levels", false},
		{"invalid UTF-8", `{` + tok + `,"to":["a@example.com"],"subject":"caf` + "\xc3\x28" + `"}`,
			"body: not valid UTF-8", false},
		{"CR/LF in subject", `{` + tok + `,"to":["a@example.com"],"subject":"hi\r\nBcc: victim@example.com"}`,
			"subject: line break in subject", false},
		{"CR/LF in an address", `{` + tok + `,"to":["a@example.com\r\nBcc: victim@example.com"],"subject":"s"}`,
			"to[0]: line break in address", false},
		{"CR/LF in a reply-to", `{` + tok + `,"to":["a@example.com"],"replyTo":["r@example.com\nBcc: v@example.com"],"subject":"s"}`,
			"replyTo[0]: line break in address", false},
		{"nesting past the JSON decoder's limit", `{` + tok + `,"to":["a@example.com"],"subject":"s","data":{"x":` + nested(20000) + `}}`,
			"", true},
		{"NUL bytes", "\x00\x00{", "", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, 1)
			logs := &testio.SyncBuffer{}
			b.pool.Log = slog.New(slog.NewJSONHandler(logs, nil))
			b.start(t)
			id := fmt.Sprint(i)
			b.q.add(id, tt.body, 1)
			b.waitFinished(t, 1)
			b.stop(t)

			deleted, vis, _, _ := b.q.snapshot()
			fails := b.sfn.failures()
			if n := len(b.ses.emails()); n != 0 {
				t.Errorf("%d emails sent for a hostile request", n)
			}
			if tt.malformed {
				if len(deleted) != 0 || len(fails) != 0 || len(vis) != 1 {
					t.Fatalf("malformed body: deleted %v, failures %d, visibility %v; want it kept for the DLQ", deleted, len(fails), vis)
				}
				if got := testutil.ToFloat64(b.metrics.Handled.WithLabelValues(metrics.HandledMalformed)); got != 1 {
					t.Errorf("handled{malformed} = %v", got)
				}
				return
			}
			if len(fails) != 1 || aws.ToString(fails[0].Error) != ErrInvalidRequest {
				t.Fatalf("failures = %d, want one %s", len(fails), ErrInvalidRequest)
			}
			cause := aws.ToString(fails[0].Cause)
			if !strings.Contains(cause, tt.want) {
				t.Errorf("cause %q does not name %q", cause, tt.want)
			}
			if !json.Valid([]byte(cause)) || len(cause) > maxCauseLen {
				t.Errorf("cause is not JSON within the limit (%d bytes)", len(cause))
			}
			if len(deleted) != 1 {
				t.Errorf("deleted = %v, want the message deleted", deleted)
			}
			if strings.Contains(logs.String(), testToken) {
				t.Errorf("logs contain the task token:\n%s", logs)
			}
		})
	}
}

// HTML and script in a request's subject and data reach the HTML part of
// the email as text, never as markup, through the whole pipeline.
func TestEmailEscapesHostileText(t *testing.T) {
	const xss = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	b := setup(t, 1)
	b.start(t)
	body, _ := json.Marshal(map[string]any{"taskToken": testToken, "to": []string{"Eve <eve@example.com>"},
		"subject": "Deploy " + xss, "data": map[string]any{xss: xss, "nested": map[string]any{"k": xss}}})
	b.q.add("1", string(body), 1)
	b.waitFinished(t, 1)
	sent := b.ses.emails()
	if len(sent) != 1 {
		t.Fatalf("%d emails, want 1", len(sent))
	}
	html := aws.ToString(sent[0].Content.Simple.Body.Html.Data)
	for _, raw := range []string{"<script", "<img", "onerror=alert(2)>"} {
		if strings.Contains(html, raw) {
			t.Errorf("HTML part contains raw %q", raw)
		}
	}
	if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("hostile text not shown escaped:\n%s", html)
	}
	// The subject is a header SES encodes; it is passed on as it is.
	if got := aws.ToString(sent[0].Content.Simple.Subject.Data); got != "Deploy "+xss {
		t.Errorf("subject = %q", got)
	}
}

// The worker logs neither its keys, nor task tokens, nor the links it
// mints, on any path: start-up, sends, failures.
func TestWorkerNeverLogsSecrets(t *testing.T) {
	logs := &testio.SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kr, err := link.ParseKeyring(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // start, log, and stop at once
	err = Run(ctx, Config{
		QueueURL: "https://sqs.example/q", Sender: "approvals@example.com", BaseURL: testBaseURL, Keyring: kr,
		Logger: log,
		AWS: &aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
			BaseEndpoint: aws.String("http://127.0.0.1:1")},
	})
	if err != nil {
		t.Fatal(err)
	}

	b := setup(t, 2)
	b.pool.Log = log
	b.pool.Handler.Log = log
	b.sfn.err = apiError("SFN", "SendTaskFailure", "ThrottlingException", 0)
	b.start(t)
	b.q.add("ok", approvalBody(testToken, "a@example.com", "b@example.com"), 1)
	b.q.add("bad", `{"taskToken":"`+testToken+`","to":["nobody"],"subject":"s"}`, 1)
	b.q.add("junk", `{"taskToken":`, 1)
	b.waitFinished(t, 3)
	b.stop(t)

	out := logs.String()
	if !strings.Contains(out, "worker started") || !strings.Contains(out, `"key_ids":["k1"]`) {
		t.Fatalf("start-up not logged as expected:\n%s", out)
	}
	secrets := []string{testToken, strings.SplitN(testKeys, ":", 2)[1], testBaseURL + link.PathPrefix}
	for _, e := range b.ses.emails() {
		for _, m := range hrefRE.FindAllStringSubmatch(aws.ToString(e.Content.Simple.Body.Html.Data), -1) {
			secrets = append(secrets, m[1])
		}
	}
	if len(secrets) < 5 {
		t.Fatalf("only %d secrets collected; the test would prove nothing", len(secrets))
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("logs contain a secret %.20q...:\n%s", s, out)
		}
	}
}
