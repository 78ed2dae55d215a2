package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

func TestClassifySend(t *testing.T) {
	ses := func(code string, fault smithy.ErrorFault) error { return apiError("SESv2", "SendEmail", code, fault) }
	tests := []struct {
		name     string
		err      error
		want     sendVerdict
		wantCode string
	}{
		// The message's own fault: fail fast.
		{"message rejected", ses("MessageRejected", smithy.FaultClient), sendRejected, ""},
		{"bad address", ses("BadRequestException", smithy.FaultClient), sendRejected, ""},
		{"wrapped rejection", fmt.Errorf("send email: %w", ses("MessageRejected", smithy.FaultClient)), sendRejected, ""},
		// The deployment's: retried, counted by code, never failed.
		{"sending paused", ses("SendingPausedException", smithy.FaultClient), sendOperator, "SendingPausedException"},
		{"account suspended", ses("AccountSuspendedException", smithy.FaultClient), sendOperator, "AccountSuspendedException"},
		{"MAIL FROM not verified", ses("MailFromDomainNotVerifiedException", smithy.FaultClient), sendOperator, "MailFromDomainNotVerifiedException"},
		{"configuration set missing", ses("NotFoundException", smithy.FaultClient), sendOperator, "NotFoundException"},
		{"access denied", ses("AccessDeniedException", smithy.FaultClient), sendOperator, "AccessDeniedException"},
		{"access denied, query style", ses("AccessDenied", smithy.FaultClient), sendOperator, "AccessDenied"},
		{"unknown key", ses("UnrecognizedClientException", smithy.FaultClient), sendOperator, "UnrecognizedClientException"},
		{"bad signature", ses("InvalidSignatureException", smithy.FaultClient), sendOperator, "InvalidSignatureException"},
		{"expired token", ses("ExpiredTokenException", smithy.FaultClient), sendOperator, "ExpiredTokenException"},
		{"no credentials", &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail",
			Err: fmt.Errorf("get identity: %w", errors.New("failed to refresh cached credentials, no EC2 IMDS role found"))}, sendOperator, "Credentials"},
		{"unknown permanent code", ses("SomethingNewException", smithy.FaultClient), sendOperator, "other"},
		// Transient: retried, not counted.
		{"throttled", ses("TooManyRequestsException", smithy.FaultClient), sendRetry, ""},
		{"quota", ses("LimitExceededException", smithy.FaultClient), sendRetry, ""},
		{"SES fault", ses("InternalServiceErrorException", smithy.FaultServer), sendRetry, ""},
		{"http 503", &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail",
			Err: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}}, Err: errors.New("unavailable")}}, sendRetry, ""},
		{"network", &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail", Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, sendRetry, ""},
		{"attempt timeout", &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail",
			Err: &awsx.AttemptTimeoutError{Operation: "SendEmail", After: time.Second}}, sendRetry, ""},
		{"deadline", context.DeadlineExceeded, sendRetry, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, code := classifySend(tt.err)
			if got != tt.want || code != tt.wantCode {
				t.Errorf("classifySend = %v %q, want %v %q", got, code, tt.want, tt.wantCode)
			}
		})
	}
}

// Every code the worker may count is a label value created up front, so
// the alert and the dashboard see each series from the first scrape.
func TestOperatorCodesAreMetricLabels(t *testing.T) {
	labels := map[string]bool{}
	for _, c := range metrics.OperatorErrorCodes {
		labels[c] = true
	}
	var codes []string
	for c := range sesOperatorCodes {
		codes = append(codes, c)
	}
	codes = append(codes, awsx.DeploymentCodes()...)
	for _, c := range append(codes, metrics.OperatorOther) {
		if !labels[c] {
			t.Errorf("code %q is not in metrics.OperatorErrorCodes", c)
		}
	}
}

// A SendTaskFailure refused for the deployment's sake is counted too.
func TestOperatorErrorOfStepFunctions(t *testing.T) {
	code, ok := operatorError(apiError("SFN", "SendTaskFailure", "AccessDeniedException", smithy.FaultClient))
	if !ok || code != "AccessDeniedException" {
		t.Errorf("operatorError = %q %t", code, ok)
	}
	if _, ok := operatorError(apiError("SFN", "SendTaskFailure", "ThrottlingException", smithy.FaultClient)); ok {
		t.Error("throttling counted as an operator error")
	}
}

func TestTaskGone(t *testing.T) {
	for code, want := range map[string]bool{
		"TaskTimedOut": true, "TaskDoesNotExist": true, "InvalidToken": true,
		"ThrottlingException": false, "AccessDeniedException": false, "ValidationException": false,
	} {
		if got := taskGone(apiError("SFN", "SendTaskFailure", code, smithy.FaultClient)); got != want {
			t.Errorf("taskGone(%s) = %t, want %t", code, got, want)
		}
	}
	if taskGone(errors.New("connection reset")) {
		t.Error("a network error is not a gone task")
	}
}

func TestFailureCause(t *testing.T) {
	if got := failureCause([]string{`a "quoted" <problem>`, "b"}); got != `{"problems":["a \"quoted\" <problem>","b"]}` {
		t.Errorf("cause = %s", got)
	}
	// Too many problems for the Step Functions limit: cut, with a count.
	var many []string
	for i := range 2000 {
		many = append(many, fmt.Sprintf("problem %d: %s", i, strings.Repeat("x", 40)))
	}
	got := failureCause(many)
	if len(got) > maxCauseLen {
		t.Fatalf("cause is %d bytes, limit %d", len(got), maxCauseLen)
	}
	var c struct{ Problems []string }
	if err := json.Unmarshal([]byte(got), &c); err != nil {
		t.Fatal(err)
	}
	last := c.Problems[len(c.Problems)-1]
	if want := fmt.Sprintf("... and %d more problems", 2000-(len(c.Problems)-1)); last != want {
		t.Errorf("last entry %q, want %q", last, want)
	}
	if c.Problems[0] != many[0] {
		t.Errorf("first entry %q", c.Problems[0])
	}
}

func TestRetryDelay(t *testing.T) {
	p := &Pool{}
	p.defaults()
	tests := []struct {
		receives int
		want     time.Duration
	}{
		{0, 10 * time.Second}, {1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second},
		{7, 640 * time.Second}, {8, 15 * time.Minute}, {40, 15 * time.Minute}, {1 << 30, 15 * time.Minute},
	}
	for _, tt := range tests {
		if got := p.retryDelay(tt.receives); got != tt.want {
			t.Errorf("retryDelay(%d) = %s, want %s", tt.receives, got, tt.want)
		}
	}
	for d, want := range map[time.Duration]int32{0: 0, time.Millisecond: 1, 1500 * time.Millisecond: 2, 24 * time.Hour: 43200} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%s) = %d, want %d", d, got, want)
		}
	}
}
