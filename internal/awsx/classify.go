// Package awsx holds what every AWS caller in the project shares: the one
// classifier that says whether an error is worth retrying, the one retry
// helper, and the SDK configuration.
package awsx

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// retryableCodes are error codes that mean "try again later": throttling and
// the service's own trouble. Everything else an AWS API answers is a verdict
// on the request and will not change by asking again.
var retryableCodes = map[string]bool{
	"Throttling":                                true,
	"ThrottlingException":                       true,
	"ThrottledException":                        true,
	"TooManyRequestsException":                  true,
	"RequestThrottled":                          true,
	"RequestThrottledException":                 true,
	"RequestLimitExceeded":                      true,
	"SlowDown":                                  true,
	"ProvisionedThroughputExceededException":    true,
	"LimitExceededException":                    true,
	"ServiceUnavailable":                        true,
	"ServiceUnavailableException":               true,
	"InternalFailure":                           true,
	"InternalError":                             true,
	"InternalServerError":                       true,
	"InternalServiceError":                      true,
	"InternalServiceErrorException":             true,
	"RequestTimeout":                            true,
	"RequestTimeoutException":                   true,
	"EC2ThrottledException":                     true,
	"KMSThrottlingException":                    true,
	"AWS.SimpleQueueService.ServiceUnavailable": true,
}

// ErrorCode returns the AWS error code of err, or "" when err is not an API
// error (a network failure, a cancelled context).
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Retryable reports whether err is transient: throttling, a 5xx answer, or a
// network failure. A cancelled or expired context is not retryable: the
// caller has given up.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re *smithyhttp.ResponseError
	// A ResponseError with no status never got an answer: that is a network
	// failure, classified below.
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		if re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == http.StatusTooManyRequests {
			return true
		}
		if ErrorCode(err) == "" {
			return false
		}
	}
	if code := ErrorCode(err); code != "" {
		if retryableCodes[code] {
			return true
		}
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorFault() == smithy.FaultServer {
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	// An error with no API code that is not one of the above came from the
	// transport or the SDK's own machinery (for example its retry quota):
	// the request may well succeed later.
	var oe *smithy.OperationError
	return errors.As(err, &oe)
}

// deploymentCodes are errors about who the caller is or what it may do:
// permissions and credentials. They say nothing about the request, and no
// retry will change them until an operator fixes the deployment (a policy,
// the task role, a key).
var deploymentCodes = map[string]bool{
	"AccessDenied":                true,
	"AccessDeniedException":       true,
	"UnauthorizedOperation":       true,
	"UnrecognizedClientException": true,
	"InvalidClientTokenId":        true,
	"InvalidAccessKeyId":          true,
	"InvalidSignatureException":   true,
	"SignatureDoesNotMatch":       true,
	"IncompleteSignature":         true,
	"MissingAuthenticationToken":  true,
	"ExpiredToken":                true,
	"ExpiredTokenException":       true,
	"KMSAccessDeniedException":    true,
}

// DeploymentCodes lists the codes DeploymentError knows, and CodeCredentials.
func DeploymentCodes() []string {
	out := make([]string, 0, len(deploymentCodes)+1)
	for c := range deploymentCodes {
		out = append(out, c)
	}
	return append(out, CodeCredentials)
}

// CodeCredentials names the failure to obtain credentials at all (no task
// role, a credential endpoint that refuses), which has no AWS error code.
const CodeCredentials = "Credentials"

// DeploymentError reports whether err is about the deployment rather than
// the request (access denied, invalid or expired credentials, none to be
// had) and names it: its AWS error code, or CodeCredentials.
func DeploymentError(err error) (code string, ok bool) {
	if err == nil {
		return "", false
	}
	if c := ErrorCode(err); c != "" {
		return c, deploymentCodes[c]
	}
	// The SDK reports a failed credential lookup as "get identity: ..."
	// (or, from its signer, as a SigningError), with no code of its own.
	var se *v4.SigningError
	if errors.As(err, &se) || strings.Contains(err.Error(), "get identity: ") {
		return CodeCredentials, true
	}
	return "", false
}
