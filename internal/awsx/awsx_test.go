package awsx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

func apiErr(code string, fault smithy.ErrorFault) error {
	return &smithy.OperationError{ServiceID: "SFN", OperationName: "SendTaskSuccess",
		Err: &smithy.GenericAPIError{Code: code, Message: "m", Fault: fault}}
}

func httpErr(status int) error {
	return &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail",
		Err: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("boom")}}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"throttling", apiErr("ThrottlingException", smithy.FaultClient), true},
		{"too many requests", apiErr("TooManyRequestsException", smithy.FaultClient), true},
		{"server fault, unknown code", apiErr("Weird", smithy.FaultServer), true},
		{"http 503", httpErr(503), true},
		{"http 400", httpErr(400), false},
		{"no answer at all", httpErr(0), true},
		{"message rejected", apiErr("MessageRejected", smithy.FaultClient), false},
		{"task timed out", apiErr("TaskTimedOut", smithy.FaultClient), false},
		{"invalid token", apiErr("InvalidToken", smithy.FaultClient), false},
		{"connection reset", &smithy.OperationError{Err: fmt.Errorf("send: %w", syscall.ECONNRESET)}, true},
		{"net error", &net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"deadline", context.DeadlineExceeded, false},
		{"plain error", errors.New("template: bad"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Retryable(tt.err); got != tt.want {
				t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if got := ErrorCode(apiErr("InvalidToken", smithy.FaultClient)); got != "InvalidToken" {
		t.Errorf("ErrorCode = %q", got)
	}
}

var fast = RetryPolicy{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxElapsed: time.Second}

func TestRetry(t *testing.T) {
	t.Run("transient then success", func(t *testing.T) {
		calls, retries := 0, 0
		err := Retry(context.Background(), fast, func(context.Context) error {
			calls++
			if calls < 3 {
				return apiErr("ThrottlingException", smithy.FaultClient)
			}
			return nil
		}, func(error, time.Duration) { retries++ })
		if err != nil || calls != 3 || retries != 2 {
			t.Fatalf("err=%v calls=%d retries=%d, want nil 3 2", err, calls, retries)
		}
	})
	t.Run("permanent stops at once", func(t *testing.T) {
		calls := 0
		want := apiErr("TaskTimedOut", smithy.FaultClient)
		err := Retry(context.Background(), fast, func(context.Context) error { calls++; return want }, nil)
		if calls != 1 || !errors.Is(err, want) {
			t.Fatalf("calls=%d err=%v", calls, err)
		}
		if ErrorCode(err) != "TaskTimedOut" {
			t.Errorf("code lost through Retry: %v", err)
		}
	})
	t.Run("attempts exhausted returns last error", func(t *testing.T) {
		calls := 0
		p := fast
		p.MaxAttempts = 4
		err := Retry(context.Background(), p, func(context.Context) error {
			calls++
			return apiErr("ThrottlingException", smithy.FaultClient)
		}, nil)
		if calls != 4 || ErrorCode(err) != "ThrottlingException" {
			t.Fatalf("calls=%d err=%v", calls, err)
		}
	})
	t.Run("context ends the retries", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := Retry(ctx, RetryPolicy{Initial: time.Hour, Max: time.Hour, MaxElapsed: time.Hour}, func(context.Context) error {
			calls++
			cancel()
			return apiErr("ThrottlingException", smithy.FaultClient)
		}, nil)
		if calls != 1 || err == nil {
			t.Fatalf("calls=%d err=%v", calls, err)
		}
	})
}

// The worker sends dozens of requests at once to one endpoint; the SDK's
// default idle pool (10 per host) made it redial most of them.
func TestLoadConfigKeepsEnoughIdleConnections(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	cfg, err := LoadConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hc, ok := cfg.HTTPClient.(HTTPClient)
	if !ok {
		t.Fatalf("HTTP client is %T, want awsx.HTTPClient", cfg.HTTPClient)
	}
	bc, ok := hc.SDK.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("SDK's HTTP client is %T", hc.SDK)
	}
	if got := bc.GetTransport().MaxIdleConnsPerHost; got != MaxIdleConnsPerHost {
		t.Errorf("MaxIdleConnsPerHost = %d, want %d", got, MaxIdleConnsPerHost)
	}
}

// Errors about the deployment are named by code; a failed credential
// lookup, as the real SDK reports it, has none and is named Credentials.
func TestDeploymentError(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode string
		want     bool
	}{
		{"access denied", apiErr("AccessDeniedException", smithy.FaultClient), "AccessDeniedException", true},
		{"unknown key", apiErr("UnrecognizedClientException", smithy.FaultClient), "UnrecognizedClientException", true},
		{"expired token", apiErr("ExpiredTokenException", smithy.FaultClient), "ExpiredTokenException", true},
		{"throttling", apiErr("ThrottlingException", smithy.FaultClient), "ThrottlingException", false},
		{"network", &net.OpError{Op: "dial", Err: errors.New("refused")}, "", false},
		{"nil", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ok := DeploymentError(tt.err)
			if code != tt.wantCode || ok != tt.want {
				t.Errorf("DeploymentError = %q %t, want %q %t", code, ok, tt.wantCode, tt.want)
			}
		})
	}

	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"), RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no EC2 IMDS role found")
		})}
	_, err := sfn.NewFromConfig(cfg).SendTaskHeartbeat(context.Background(), &sfn.SendTaskHeartbeatInput{TaskToken: aws.String("t")})
	if code, ok := DeploymentError(err); !ok || code != CodeCredentials {
		t.Errorf("DeploymentError(%v) = %q %t, want %q", err, code, ok, CodeCredentials)
	}
}
