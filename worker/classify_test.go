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
)

func TestClassifySend(t *testing.T) {
	ses := func(code string, fault smithy.ErrorFault) error { return apiError("SESv2", "SendEmail", code, fault) }
	tests := []struct {
		name string
		err  error
		want sendVerdict
	}{
		{"message rejected", ses("MessageRejected", smithy.FaultClient), sendRejected},
		{"sender not verified", ses("MailFromDomainNotVerifiedException", smithy.FaultClient), sendRejected},
		{"bad address", ses("BadRequestException", smithy.FaultClient), sendRejected},
		{"configuration set missing", ses("NotFoundException", smithy.FaultClient), sendRejected},
		{"account suspended", ses("AccountSuspendedException", smithy.FaultClient), sendRejected},
		{"sending paused", ses("SendingPausedException", smithy.FaultClient), sendRejected},
		{"wrapped rejection", fmt.Errorf("send email: %w", ses("MessageRejected", smithy.FaultClient)), sendRejected},
		{"throttled", ses("TooManyRequestsException", smithy.FaultClient), sendRetry},
		{"quota", ses("LimitExceededException", smithy.FaultClient), sendRetry},
		{"SES fault", ses("InternalServiceErrorException", smithy.FaultServer), sendRetry},
		{"http 503", &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail",
			Err: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}}, Err: errors.New("unavailable")}}, sendRetry},
		{"network", &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail", Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, sendRetry},
		// The worker's own setup: retried, so the message waits for a fix.
		{"access denied", ses("AccessDeniedException", smithy.FaultClient), sendRetry},
		{"deadline", context.DeadlineExceeded, sendRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifySend(tt.err); got != tt.want {
				t.Errorf("classifySend = %v, want %v", got, tt.want)
			}
		})
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
