package worker

import (
	"context"
	"encoding/json"
	"errors"
	htmltemplate "html/template"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/sfn-approvals/sfn-approvals/internal/testio"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

const (
	testBaseURL = "https://approvals.example.com"
	testKeys    = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testToken   = "AAAAKgAAAAIAAAAAAAAAAf8=" // canonical base64, like a Step Functions token
	// extensionSecs is the visibility the pool sets when it extends; tests
	// whose messages finish quickly never see it.
	extensionSecs = 3600
)

type bundle struct {
	ev      *events
	logs    *testio.SyncBuffer
	q       *fakeQueue
	ses     *fakeSES
	sfn     *fakeSFN
	keyring *link.Keyring
	metrics *metrics.Worker
	pool    *Pool
	cancel  context.CancelFunc
	done    chan error
}

func setup(t *testing.T, concurrency int) *bundle {
	t.Helper()
	kr, err := link.ParseKeyring(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	m := metrics.NewWorker(prometheus.NewRegistry())
	b := &bundle{
		ev:      ev,
		logs:    &testio.SyncBuffer{},
		q:       newFakeQueue(ev, concurrency, extensionSecs),
		ses:     &fakeSES{ev: ev},
		sfn:     &fakeSFN{ev: ev},
		keyring: kr,
		metrics: m,
	}
	b.pool = &Pool{
		Queue:    b.q,
		QueueURL: "https://sqs.example/q",
		Handler: &Handler{
			Keyring:   kr,
			BaseURL:   testBaseURL,
			Sender:    "approvals@example.com",
			Templates: loadTemplates(t, ""),
			Email:     b.ses,
			Tasks:     b.sfn,
			Metrics:   m,
		},
		Metrics:           m,
		Log:               slog.New(slog.NewJSONHandler(b.logs, nil)),
		Concurrency:       concurrency,
		VisibilityTimeout: extensionSecs * time.Second,
		ShutdownGrace:     time.Minute,
	}
	return b
}

// start runs the pool; stop (registered as cleanup too) ends it and checks
// that Run returned nil and left no goroutine behind. Stopping runs out the
// wait of the long poll in progress, which shutdown lets finish.
func (b *bundle) start(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.done = make(chan error, 1)
	go func() { b.done <- b.pool.Run(ctx) }()
	t.Cleanup(func() {
		b.stop(t)
		goleak.VerifyNone(t, ignore)
	})
}

func (b *bundle) stop(t *testing.T) {
	t.Helper()
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.cancel = nil
	b.q.endPolls()
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// waitFinished waits until n messages have been deleted or given back.
func (b *bundle) waitFinished(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case h := <-b.q.finished:
			got = append(got, h)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d messages finished; events: %v", len(got), n, b.ev.list())
		}
	}
	return got
}

func approvalBody(token string, to ...string) string {
	b, _ := json.Marshal(map[string]any{"taskToken": token, "to": to, "subject": "Deploy 42", "data": map[string]any{"service": "payments"}})
	return string(b)
}

var hrefRE = regexp.MustCompile(`href="([^"]+)"`)

func TestPoolSendsThenDeletes(t *testing.T) {
	b := setup(t, 4)
	release := make(chan struct{})
	blocked := make(chan struct{}, 2)
	b.ses.send = func(context.Context, *sesv2.SendEmailInput) error {
		blocked <- struct{}{}
		<-release
		return nil
	}
	b.q.add("1", approvalBody(testToken, "Ben <ben@example.com>", "ann@example.com"), 1)
	b.start(t)

	<-blocked // the first email is being sent
	if deleted, _, _, _ := b.q.snapshot(); len(deleted) != 0 {
		t.Fatalf("deleted %v while the email was still being sent", deleted)
	}
	close(release)
	b.waitFinished(t, 1)

	want := []string{"receive rh-1", "send \"Ben\" <ben@example.com>", "send ann@example.com", "delete rh-1"}
	if diff := cmp.Diff(want, b.ev.list()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// Each recipient has their own links, one per default action.
	for i, e := range b.ses.emails() {
		recipient := []string{"ben@example.com", "ann@example.com"}[i]
		if aws.ToString(e.FromEmailAddress) != "approvals@example.com" {
			t.Errorf("From = %q", aws.ToString(e.FromEmailAddress))
		}
		html := aws.ToString(e.Content.Simple.Body.Html.Data)
		text := aws.ToString(e.Content.Simple.Body.Text.Data)
		links := hrefRE.FindAllStringSubmatch(html, -1)
		if len(links) != 2 {
			t.Fatalf("email %d: %d links, want 2", i, len(links))
		}
		for j, l := range links {
			if !strings.Contains(text, l[1]) {
				t.Errorf("email %d: text part lacks link %d", i, j)
			}
			c, err := b.keyring.Open(strings.TrimPrefix(l[1], testBaseURL+link.PathPrefix), time.Now())
			if err != nil {
				t.Fatalf("email %d link %d: %v", i, j, err)
			}
			wantAction := []string{"approve", "reject"}[j]
			if c.TaskToken != testToken || c.Recipient != recipient || c.Action.Name != wantAction {
				t.Errorf("email %d link %d: token ok=%t recipient=%q action=%q", i, j, c.TaskToken == testToken, c.Recipient, c.Action.Name)
			}
		}
	}
	if got := testutil.ToFloat64(b.metrics.Handled.WithLabelValues(metrics.HandledSent)); got != 1 {
		t.Errorf("handled sent = %v", got)
	}
	if got := testutil.ToFloat64(b.metrics.EmailsSent); got != 2 {
		t.Errorf("emails sent = %v", got)
	}
	if got := testutil.ToFloat64(b.metrics.Received); got != 1 {
		t.Errorf("received = %v", got)
	}
	if n := testutil.CollectAndCount(b.metrics.MessageAge); n != 1 {
		t.Errorf("message age series = %d", n)
	}
}

func TestPoolOutcomes(t *testing.T) {
	throttled := apiError("SESv2", "SendEmail", "ThrottlingException", smithy.FaultClient)
	rejected := apiError("SESv2", "SendEmail", "MessageRejected", smithy.FaultClient)
	tests := []struct {
		name     string
		body     string
		receives int
		sesErr   func(to string) error
		sfnErr   error
		want     []string // events after the receive
		outcome  string
		failures []string // SendTaskFailure error names
		cause    string   // substring of the first cause
		operator string   // the code counted in operator_errors_total
	}{
		{
			name: "transient SES error: retry later, no delete", body: approvalBody(testToken, "a@example.com"), receives: 3,
			sesErr:  func(string) error { return throttled },
			want:    []string{"send-error a@example.com", "visibility rh-1 40"},
			outcome: metrics.HandledRetried,
		},
		{
			name: "later recipient fails transiently: whole message retried", body: approvalBody(testToken, "a@example.com", "b@example.com"), receives: 1,
			sesErr: func(to string) error {
				if strings.Contains(to, "b@") {
					return errors.New("connection reset")
				}
				return nil
			},
			want:    []string{"send a@example.com", "send-error b@example.com", "visibility rh-1 10"},
			outcome: metrics.HandledRetried,
		},
		{
			name: "SES rejects: fail the task, then delete", body: approvalBody(testToken, "a@example.com"), receives: 1,
			sesErr:  func(string) error { return rejected },
			want:    []string{"send-error a@example.com", "fail-task Approvals.EmailRejected", "delete rh-1"},
			outcome: metrics.HandledRejected, failures: []string{ErrEmailRejected},
			cause: `email to a@example.com rejected by SES: MessageRejected: MessageRejected message`,
		},
		{
			name: "SES sending paused: the operator's to fix, retried, never failed", body: approvalBody(testToken, "a@example.com"), receives: 2,
			sesErr: func(string) error {
				return apiError("SESv2", "SendEmail", "SendingPausedException", smithy.FaultClient)
			},
			want:    []string{"send-error a@example.com", "visibility rh-1 20"},
			outcome: metrics.HandledRetried, operator: "SendingPausedException",
		},
		{
			name: "configuration set missing: retried, never failed", body: approvalBody(testToken, "a@example.com"), receives: 1,
			sesErr:  func(string) error { return apiError("SESv2", "SendEmail", "NotFoundException", smithy.FaultClient) },
			want:    []string{"send-error a@example.com", "visibility rh-1 10"},
			outcome: metrics.HandledRetried, operator: "NotFoundException",
		},
		{
			name: "SES access denied: retried, never failed", body: approvalBody(testToken, "a@example.com"), receives: 1,
			sesErr:  func(string) error { return apiError("SESv2", "SendEmail", "AccessDeniedException", smithy.FaultClient) },
			want:    []string{"send-error a@example.com", "visibility rh-1 10"},
			outcome: metrics.HandledRetried, operator: "AccessDeniedException",
		},
		{
			name: "fail-fast denied: keep the message, count it", body: `{"taskToken":"` + testToken + `"}`, receives: 1,
			sfnErr:  apiError("SFN", "SendTaskFailure", "AccessDeniedException", smithy.FaultClient),
			want:    []string{"fail-task Approvals.InvalidRequest", "visibility rh-1 10"},
			outcome: metrics.HandledRetried, failures: []string{ErrInvalidRequest}, operator: "AccessDeniedException",
		},
		{
			name: "invalid request: fail the task, then delete", body: `{"taskToken":"` + testToken + `","to":["nope"],"subject":"","colour":1}`, receives: 1,
			want:    []string{"fail-task Approvals.InvalidRequest", "delete rh-1"},
			outcome: metrics.HandledInvalid, failures: []string{ErrInvalidRequest},
			cause: `{"problems":["unknown field \"colour\"","to[0]: \"nope\" is not an email address (mail: missing '@' or angle-addr)","subject: must not be empty"]}`,
		},
		{
			name: "template fails to render: fail the task", body: `{"taskToken":"` + testToken + `","to":["a@example.com"],"subject":"s","template":"strict"}`, receives: 1,
			want:    []string{"fail-task Approvals.InvalidRequest", "delete rh-1"},
			outcome: metrics.HandledInvalid, failures: []string{ErrInvalidRequest},
			cause: `map has no entry for key \"owner\"`,
		},
		{
			name: "fail-fast throttled: keep the message", body: `{"taskToken":"` + testToken + `"}`, receives: 2,
			sfnErr:  apiError("SFN", "SendTaskFailure", "ThrottlingException", smithy.FaultClient),
			want:    []string{"fail-task Approvals.InvalidRequest", "visibility rh-1 20"},
			outcome: metrics.HandledRetried, failures: []string{ErrInvalidRequest},
		},
		{
			name: "fail-fast on a timed-out task: nothing waits, delete", body: `{"taskToken":"` + testToken + `"}`, receives: 1,
			sfnErr:  apiError("SFN", "SendTaskFailure", "TaskTimedOut", smithy.FaultClient),
			want:    []string{"fail-task Approvals.InvalidRequest", "delete rh-1"},
			outcome: metrics.HandledInvalid, failures: []string{ErrInvalidRequest},
		},
		{
			name: "not JSON: left for the DLQ, pushed out", body: `subject: hi`, receives: 2,
			want:    []string{"visibility rh-1 20"},
			outcome: metrics.HandledMalformed,
		},
		{
			name: "invalid notification: no token to fail", body: `{"to":["x"],"subject":"s"}`, receives: 1,
			want:    []string{"visibility rh-1 10"},
			outcome: metrics.HandledMalformed,
		},
		{
			name: "notification sent, no links", body: `{"to":["a@example.com"],"subject":"done"}`, receives: 1,
			want:    []string{"send a@example.com", "delete rh-1"},
			outcome: metrics.HandledNotified,
		},
		{
			name: "notification rejected: deleted, nothing to fail", body: `{"to":["a@example.com"],"subject":"done"}`, receives: 1,
			sesErr:  func(string) error { return rejected },
			want:    []string{"send-error a@example.com", "delete rh-1"},
			outcome: metrics.HandledRejected,
		},
		{
			name: "retry delay is capped", body: approvalBody(testToken, "a@example.com"), receives: 12,
			sesErr:  func(string) error { return throttled },
			want:    []string{"send-error a@example.com", "visibility rh-1 900"},
			outcome: metrics.HandledRetried,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, 2)
			addStrictTemplate(t, b.pool.Handler.Templates)
			if tt.sesErr != nil {
				b.ses.send = func(_ context.Context, in *sesv2.SendEmailInput) error {
					return tt.sesErr(in.Destination.ToAddresses[0])
				}
			}
			b.sfn.err = tt.sfnErr
			b.q.add("1", tt.body, tt.receives)
			b.start(t)
			b.waitFinished(t, 1)
			b.stop(t)

			got := b.ev.list()
			if diff := cmp.Diff(append([]string{"receive rh-1"}, tt.want...), got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if v := testutil.ToFloat64(b.metrics.Handled.WithLabelValues(tt.outcome)); v != 1 {
				t.Errorf("handled{outcome=%s} = %v", tt.outcome, v)
			}
			for _, c := range metrics.OperatorErrorCodes {
				want := 0.0
				if c == tt.operator {
					want = 1
				}
				if v := testutil.ToFloat64(b.metrics.OperatorErrors.WithLabelValues(c)); v != want {
					t.Errorf("operator_errors{code=%s} = %v, want %v", c, v, want)
				}
			}
			var names []string
			for _, f := range b.sfn.failures() {
				names = append(names, aws.ToString(f.Error))
				if aws.ToString(f.TaskToken) != testToken {
					t.Errorf("SendTaskFailure for another token")
				}
				if strings.Contains(aws.ToString(f.Cause), testToken) {
					t.Errorf("cause contains the token: %s", aws.ToString(f.Cause))
				}
				var c struct{ Problems []string }
				if err := json.Unmarshal([]byte(aws.ToString(f.Cause)), &c); err != nil || len(c.Problems) == 0 {
					t.Errorf("cause %q is not {\"problems\": [...]}: %v", aws.ToString(f.Cause), err)
				}
			}
			if diff := cmp.Diff(tt.failures, names); diff != "" {
				t.Errorf("SendTaskFailure calls (-want +got):\n%s", diff)
			}
			if tt.cause != "" && !strings.Contains(aws.ToString(b.sfn.failures()[0].Cause), tt.cause) {
				t.Errorf("cause = %s, want it to contain %s", aws.ToString(b.sfn.failures()[0].Cause), tt.cause)
			}
			if len(tt.failures) > 0 {
				want := 0.0
				if tt.sfnErr == nil || taskGone(tt.sfnErr) {
					want = 1
				}
				if v := testutil.ToFloat64(b.metrics.FailFast.WithLabelValues(tt.failures[0], "ok")); v != want {
					t.Errorf("fail_fast{result=ok} = %v, want %v", v, want)
				}
			}
		})
	}
}

// addStrictTemplate adds a template "strict" that needs a data key the test
// requests do not give.
func addStrictTemplate(t *testing.T, tm *Templates) {
	t.Helper()
	h, err := htmltemplate.New("strict.html.tmpl").Option("missingkey=error").Parse(`{{.Data.owner}}`)
	if err != nil {
		t.Fatal(err)
	}
	tm.html["strict"] = h
	tm.text["strict"] = tm.text[DefaultApprovalTemplate]
}

func TestPoolPanicIsolation(t *testing.T) {
	b := setup(t, 2)
	b.ses.send = func(_ context.Context, in *sesv2.SendEmailInput) error {
		if strings.Contains(in.Destination.ToAddresses[0], "boom@") {
			panic("template helper exploded")
		}
		return nil
	}
	b.q.add("1", approvalBody(testToken, "boom@example.com"), 1)
	b.q.add("2", approvalBody(testToken, "ok@example.com"), 1)
	b.start(t)
	b.waitFinished(t, 2)
	// The pool is still receiving after the panic.
	b.q.add("3", approvalBody(testToken, "later@example.com"), 1)
	b.waitFinished(t, 1)
	b.stop(t)

	deleted, vis, _, _ := b.q.snapshot()
	slices.Sort(deleted)
	if diff := cmp.Diff([]string{"rh-2", "rh-3"}, deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]visChange{{"rh-1", 10}}, vis, cmp.AllowUnexported(visChange{})); diff != "" {
		t.Errorf("visibility (-want +got):\n%s", diff)
	}
	if v := testutil.ToFloat64(b.metrics.Panics); v != 1 {
		t.Errorf("panics = %v", v)
	}
}

func TestPoolConcurrencyLimit(t *testing.T) {
	const limit, total = 3, 25
	b := setup(t, limit)
	release := make(chan struct{})
	entered := make(chan struct{}, total)
	b.ses.send = func(context.Context, *sesv2.SendEmailInput) error {
		entered <- struct{}{}
		<-release
		return nil
	}
	for i := range total {
		b.q.add(string(rune('a'+i)), approvalBody(testToken, "a@example.com"), 1)
	}
	b.start(t)
	for range limit {
		<-entered
	}
	// With every slot busy the pool must not receive again; the fake
	// records any receive that asks for more than the free slots.
	b.q.mu.Lock()
	out := len(b.q.out)
	b.q.mu.Unlock()
	if out != limit {
		t.Errorf("%d messages out with all %d slots busy", out, limit)
	}
	close(release)
	b.waitFinished(t, total)
	b.stop(t)

	deleted, _, maxOut, overAsked := b.q.snapshot()
	if len(deleted) != total {
		t.Errorf("deleted %d, want %d", len(deleted), total)
	}
	if maxOut > limit {
		t.Errorf("up to %d messages in flight, limit %d", maxOut, limit)
	}
	if len(overAsked) > 0 {
		t.Errorf("receives asked for more than the free slots: %v", overAsked)
	}
	b.ses.mu.Lock()
	maxSend := b.ses.max
	b.ses.mu.Unlock()
	if maxSend != limit {
		t.Errorf("at most %d concurrent sends, want exactly %d", maxSend, limit)
	}
}

func TestPoolExtendsVisibility(t *testing.T) {
	b := setup(t, 1)
	// A visibility timeout far below a second: renewals come every few
	// milliseconds, each asking for the rounded-up 1 s.
	b.pool.VisibilityTimeout = 30 * time.Millisecond
	b.q.extension = 1
	b.ses.send = func(ctx context.Context, _ *sesv2.SendEmailInput) error {
		// Hold the send until the pool has renewed the message twice.
		for range 2 {
			select {
			case <-b.q.extended:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	b.q.add("1", approvalBody(testToken, "a@example.com"), 1)
	b.start(t)
	b.waitFinished(t, 1)
	b.stop(t)
	ev := b.ev.list()
	if ev[len(ev)-1] != "delete rh-1" {
		t.Errorf("last event %q, want the delete; all: %v", ev[len(ev)-1], ev)
	}
	// Nothing renews after the outcome is recorded.
	for _, e := range ev[slices.Index(ev, "delete rh-1")+1:] {
		t.Errorf("event after delete: %s", e)
	}
	if v := testutil.ToFloat64(b.metrics.VisibilityExt); v < 2 {
		t.Errorf("visibility extensions = %v, want >= 2", v)
	}
}

// SIGTERM during a long poll: the receive is let finish, and what SQS
// picked for it after the signal is released at once, unstarted. A
// cancelled receive would lose that answer and strand its messages until
// their visibility timeout.
func TestPoolShutdown(t *testing.T) {
	b := setup(t, 4)
	inSend := make(chan struct{})
	finishSend := make(chan struct{})
	b.ses.send = func(context.Context, *sesv2.SendEmailInput) error {
		close(inSend)
		<-finishSend
		return nil
	}
	b.q.add("1", approvalBody(testToken, "a@example.com"), 1)
	b.start(t)
	<-inSend
	<-b.q.polling // the next receive waits in a long poll
	b.cancel()    // SIGTERM
	// Two messages arrive while that poll is open: SQS picks them for it.
	b.q.push(newMessage("2", approvalBody(testToken, "b@example.com"), 1),
		newMessage("3", approvalBody(testToken, "c@example.com"), 1))
	released := b.waitFinished(t, 2)
	slices.Sort(released)
	if diff := cmp.Diff([]string{"rh-2", "rh-3"}, released); diff != "" {
		t.Errorf("released (-want +got):\n%s", diff)
	}
	if err := b.pool.Healthy(); err == nil {
		t.Error("healthy while draining")
	}
	// The in-flight message still finishes within the grace period.
	close(finishSend)
	if got := b.waitFinished(t, 1); got[0] != "rh-1" {
		t.Errorf("finished %v", got)
	}
	if err := <-b.done; err != nil {
		t.Errorf("Run = %v", err)
	}
	b.cancel = nil
	deleted, vis, _, _ := b.q.snapshot()
	if diff := cmp.Diff([]string{"rh-1"}, deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	for _, v := range vis {
		if v.seconds != 0 {
			t.Errorf("visibility %v, want only releases (0)", v)
		}
	}
	if n := len(b.ses.emails()); n != 1 {
		t.Errorf("%d emails sent, want 1 (released messages are not started)", n)
	}
	if left := b.q.invisible(); len(left) > 0 {
		t.Errorf("messages left invisible: %v", left)
	}
	if !strings.Contains(b.logs.String(), `"msg":"messages received during shutdown released, visible now","count":2`) {
		t.Errorf("no log line for the released messages:\n%s", b.logs)
	}
}

// Every receive has a deadline, its wait plus the slack, that shutdown
// does not shorten: a hung connection cannot hold the drain for ever.
func TestPoolReceiveDeadline(t *testing.T) {
	b := setup(t, 2)
	b.pool.ReceiveWait = 3 * time.Second
	b.q.add("1", approvalBody(testToken, "a@example.com"), 1)
	b.start(t)
	b.waitFinished(t, 1)
	<-b.q.polling // a second receive, with nothing pending
	b.stop(t)
	b.q.mu.Lock()
	defer b.q.mu.Unlock()
	if len(b.q.inputs) < 2 {
		t.Fatalf("%d receives, want at least 2", len(b.q.inputs))
	}
	for i, in := range b.q.inputs {
		if in.WaitTimeSeconds != 3 {
			t.Errorf("receive %d: WaitTimeSeconds %d, want 3", i, in.WaitTimeSeconds)
		}
		if d := b.q.deadlines[i]; d <= 0 || d > 3*time.Second+receiveSlack {
			t.Errorf("receive %d: %s left on its context, want a deadline within %s", i, d, 3*time.Second+receiveSlack)
		}
	}
}

func TestPoolShutdownGraceOver(t *testing.T) {
	b := setup(t, 2)
	b.pool.ShutdownGrace = time.Millisecond
	inSend := make(chan struct{})
	b.ses.send = func(ctx context.Context, _ *sesv2.SendEmailInput) error {
		close(inSend)
		<-ctx.Done() // a send that outlasts the grace period
		return &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail", Err: ctx.Err()}
	}
	b.q.add("1", approvalBody(testToken, "a@example.com"), 1)
	b.start(t)
	<-inSend
	b.stop(t)
	_, vis, _, _ := b.q.snapshot()
	if diff := cmp.Diff([]visChange{{"rh-1", 0}}, vis, cmp.AllowUnexported(visChange{})); diff != "" {
		t.Errorf("visibility (-want +got):\n%s", diff)
	}
	// The log says what happened: visible again now, not a retry later.
	logs := b.logs.String()
	if !strings.Contains(logs, `"msg":"message released, visible now"`) || strings.Contains(logs, "retry_in") {
		t.Errorf("log does not say the message is visible now:\n%s", logs)
	}
	if v := testutil.ToFloat64(b.metrics.Handled.WithLabelValues(metrics.HandledRetried)); v != 1 {
		t.Errorf("handled retried = %v", v)
	}
}

// A message received twice, an hour apart, mints links with one expiry:
// SentTimestamp plus expiresIn (or the default), not the handling time plus
// it. Without SentTimestamp the expiry counts from the handling.
func TestPoolExpiryCountsFromSent(t *testing.T) {
	sent := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	approval := func(extra string) string {
		return `{"taskToken":"` + testToken + `","to":["a@example.com"],"subject":"s"` + extra + `}`
	}
	tests := []struct {
		name   string
		body   string
		noSent bool
		want   func(handled []time.Time) []time.Time
	}{
		{name: "expiresIn", body: approval(`,"expiresIn":"2h"`),
			want: func([]time.Time) []time.Time { return []time.Time{sent.Add(2 * time.Hour), sent.Add(2 * time.Hour)} }},
		{name: "default expiry", body: approval(""),
			want: func([]time.Time) []time.Time { return []time.Time{sent.Add(DefaultExpiry), sent.Add(DefaultExpiry)} }},
		{name: "no SentTimestamp: from the handling", body: approval(`,"expiresIn":"2h"`), noSent: true,
			want: func(h []time.Time) []time.Time { return []time.Time{h[0].Add(2 * time.Hour), h[1].Add(2 * time.Hour)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, 1)
			// Each handling is 30 minutes later than the one before.
			var mu sync.Mutex
			var handled []time.Time
			b.pool.Handler.Now = func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				handled = append(handled, sent.Add(time.Duration(len(handled)+1)*30*time.Minute))
				return handled[len(handled)-1]
			}
			msg := func(handle string, receives int) sqstypes.Message {
				m := newMessage("1", tt.body, receives)
				m.ReceiptHandle = aws.String(handle)
				m.Attributes["SentTimestamp"] = strconv.FormatInt(sent.UnixMilli(), 10)
				if tt.noSent {
					delete(m.Attributes, "SentTimestamp")
				}
				return m
			}
			b.q.push(msg("rh-first", 1))
			b.start(t)
			b.waitFinished(t, 1)
			b.q.push(msg("rh-again", 2)) // back again, say after a lost delete
			b.waitFinished(t, 1)
			b.stop(t)

			var got []time.Time
			for _, e := range b.ses.emails() {
				l := hrefRE.FindStringSubmatch(aws.ToString(e.Content.Simple.Body.Html.Data))
				if l == nil {
					t.Fatal("email without a link")
				}
				c, err := b.keyring.Open(strings.TrimPrefix(l[1], testBaseURL+link.PathPrefix), time.Now())
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, c.ExpiresAt)
			}
			mu.Lock()
			want := tt.want(handled)
			mu.Unlock()
			for i := range want {
				want[i] = want[i].Truncate(time.Second).UTC()
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("expiries of the two emails (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPoolReceiveErrors(t *testing.T) {
	b := setup(t, 2)
	b.q.receiveErrs = []error{apiError("SQS", "ReceiveMessage", "AWS.SimpleQueueService.NonExistentQueue", smithy.FaultClient)}
	b.q.add("1", approvalBody(testToken, "a@example.com"), 1)
	b.start(t)
	b.waitFinished(t, 1) // received after the failed call, a second later
	b.stop(t)
	if v := testutil.ToFloat64(b.metrics.SQSErrors.WithLabelValues("ReceiveMessage")); v != 1 {
		t.Errorf("sqs errors = %v", v)
	}
}
