package worker

import (
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// sesRejections are the only SES error codes that are a verdict on the
// email itself: asking again will not change the answer, so the execution
// is failed with Approvals.EmailRejected rather than left waiting.
var sesRejections = map[string]bool{
	"MessageRejected":     true, // content or recipient refused
	"BadRequestException": true, // a malformed address, an invalid parameter
}

// sesOperatorCodes are SES errors about the deployment, not the message: the
// account, the sender identity or the configuration set. Every email would
// get the same answer until an operator acts, so failing executions for
// them would fail every approval of the moment for nothing.
var sesOperatorCodes = map[string]bool{
	"SendingPausedException":             true, // sending paused for the account or configuration set
	"AccountSuspendedException":          true, // the account may not send at all
	"MailFromDomainNotVerifiedException": true, // the sender's MAIL FROM domain not verified
	"NotFoundException":                  true, // the configuration set does not exist (a typo)
}

// sendVerdict says what a SendEmail error means for the message.
type sendVerdict int

const (
	sendRetry    sendVerdict = iota // transient: try the whole message again later
	sendOperator                    // the deployment's fault: retried, counted, in the end dead-lettered
	sendRejected                    // the message's fault: fail the execution
)

func (v sendVerdict) String() string {
	return [...]string{"retry", "operator", "rejected"}[v]
}

// classifySend sorts a SendEmail error, and for an operator error names it
// as metrics.OperatorErrors counts it. An API error that is neither a
// rejection, nor transient, nor known is counted as metrics.OperatorOther
// and retried too: the message waits for a fix and ends in the dead-letter
// queue if the fault outlasts its receives, instead of failing executions
// for something the operator may be able to fix.
func classifySend(err error) (sendVerdict, string) {
	code := awsx.ErrorCode(err)
	switch {
	case sesRejections[code]:
		return sendRejected, ""
	case sesOperatorCodes[code]:
		return sendOperator, code
	}
	if c, ok := operatorError(err); ok {
		return sendOperator, c
	}
	if code != "" && !awsx.Retryable(err) {
		return sendOperator, metrics.OperatorOther
	}
	return sendRetry, ""
}

// operatorError reports whether err, from any AWS call the worker makes, is
// one an operator must fix (permissions, credentials, SES's account state)
// and names it by code.
func operatorError(err error) (string, bool) {
	if code := awsx.ErrorCode(err); sesOperatorCodes[code] {
		return code, true
	}
	return awsx.DeploymentError(err)
}
