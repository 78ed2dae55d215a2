// Package metrics defines every Prometheus metric the services export, in
// one place, so that dashboards, alert rules and their tests can be checked
// against one list. Each service builds its set with New* on a registerer;
// tests pass prometheus.NewRegistry().
//
// Label values are created up front, so every series exists (at zero) from
// the first scrape and rate() over a fresh process is well defined.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Label values, exported so the services use the same spelling.
const (
	LinkOK      = "ok"
	LinkInvalid = "invalid"
	LinkExpired = "expired"

	OutcomeRecorded    = "recorded"    // Step Functions accepted the decision
	OutcomeGone        = "gone"        // already answered or timed out
	OutcomeUnavailable = "unavailable" // retries exhausted
	OutcomeError       = "error"       // any other failure

	HandledSent      = "sent"      // approval emails sent
	HandledNotified  = "notified"  // notification emails sent
	HandledInvalid   = "invalid"   // failed fast: Approvals.InvalidRequest
	HandledRejected  = "rejected"  // failed fast: Approvals.EmailRejected or Approvals.ChannelRejected
	HandledRetried   = "retried"   // transient error, left for another receive
	HandledMalformed = "malformed" // no task token to fail; left for the DLQ

	PostDelivered = "delivered" // the channel answered 2xx
	PostTransient = "transient" // 429, 5xx, network error or deadline: the message is retried
	PostRejected  = "rejected"  // any other answer: the approval fails with Approvals.ChannelRejected

	// OperatorOther counts an AWS error with a code the worker does not
	// know that is not transient either: most likely the deployment's too.
	OperatorOther = "other"
)

// OperatorErrorCodes are the code label values of
// approvals_worker_operator_errors_total: AWS errors about the deployment
// rather than the message, which are retried and never fail an execution.
var OperatorErrorCodes = []string{
	// SES: the account, the sender identity, the configuration set.
	"SendingPausedException", "AccountSuspendedException", "MailFromDomainNotVerifiedException", "NotFoundException",
	// Any service: permissions and credentials.
	"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
	"InvalidClientTokenId", "InvalidAccessKeyId", "InvalidSignatureException", "SignatureDoesNotMatch",
	"IncompleteSignature", "MissingAuthenticationToken", "ExpiredToken", "ExpiredTokenException",
	"KMSAccessDeniedException", "Credentials",
	OperatorOther,
}

// LinkResults, DecisionTypes, DecisionOutcomes, SFNOperations and
// HandledOutcomes list every label value each metric takes.
var (
	LinkResults      = []string{LinkOK, LinkInvalid, LinkExpired}
	DecisionTypes    = []string{"success", "failure", "heartbeat"}
	DecisionOutcomes = []string{OutcomeRecorded, OutcomeGone, OutcomeUnavailable, OutcomeError}
	SFNOperations    = []string{"SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"}
	HandledOutcomes  = []string{HandledSent, HandledNotified, HandledInvalid, HandledRejected, HandledRetried, HandledMalformed}
	FailFastErrors   = []string{"Approvals.InvalidRequest", "Approvals.EmailRejected", "Approvals.ChannelRejected"}
	// ChannelTypes and PostResults are the labels of
	// approvals_worker_channel_posts_total.
	ChannelTypes = []string{"slack", "teams", "webhook"}
	PostResults  = []string{PostDelivered, PostTransient, PostRejected}
	CallResults  = []string{"ok", "error"}
)

// Latency buckets for calls to AWS: 5 ms to 20 s.
var awsBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20}

// Redeemer is the redeemer's metric set (namespace approvals_redeemer).
type Redeemer struct {
	LinkChecks   *prometheus.CounterVec   // result
	Decisions    *prometheus.CounterVec   // type, outcome
	SFNDuration  *prometheus.HistogramVec // operation; one observation per attempt
	SFNRetries   *prometheus.CounterVec   // operation
	HTTPRequests *prometheus.CounterVec   // route, code
	HTTPDuration *prometheus.HistogramVec // route
	RateLimited  prometheus.Counter
	// RateLimitEvictions counts clients the limiter forgot, while their
	// buckets were not yet full, to make room: a flood from many addresses.
	RateLimitEvictions prometheus.Counter
	InFlightPosts      prometheus.Gauge
	// SignInFailures counts requests refused for their ALB sign-in, by
	// reason (one of SignInReasons), under APPROVALS_IDENTITY=alb.
	SignInFailures *prometheus.CounterVec // reason
	// Forbidden counts requests by a signed-in user who is not the link's
	// recipient.
	Forbidden prometheus.Counter
	// Votes counts POSTs through the votes table by result (VoteResults),
	// and the confirmation pages whose count could not be read.
	Votes *prometheus.CounterVec // result
	// QuorumCompletions counts tasks this redeemer completed through the
	// votes table, by type: success at quorum, failure on a veto.
	QuorumCompletions *prometheus.CounterVec // type
	// VoteConflicts counts conditional writes to the votes table that lost
	// to another caller's.
	VoteConflicts prometheus.Counter
}

// SignInReasons are the reason label values of
// approvals_redeemer_sign_in_failures_total: identity.Reasons(), spelled
// here so that this package stays free of the verifier.
var SignInReasons = []string{
	"missing", "malformed", "alg", "signer", "kid_unknown", "signature", "expired",
	"email_unverified", "keys_unavailable",
}

// Vote results: the votes package's outcomes, and the errors.
const (
	VoteError       = "error"       // the table or Step Functions refused
	VoteUnavailable = "unavailable" // the table or Step Functions could not be reached
	VoteTallyError  = "tally_error" // a confirmation page could not count the votes
)

// VoteResults are the values of approvals_redeemer_votes_total's result label.
var VoteResults = []string{"vote_recorded", "already_voted", "decided", "extended", "gone", "busy",
	VoteError, VoteUnavailable, VoteTallyError}

// CompletionTypes are the values of quorum_completions_total's type label.
var CompletionTypes = []string{"success", "failure"}

// Routes are the redeemer's route labels.
var Routes = []string{"link_get", "link_post", "other"}

// NewRedeemer registers the redeemer's metrics on reg.
func NewRedeemer(reg prometheus.Registerer) *Redeemer {
	f := promauto.With(reg)
	const ns = "approvals_redeemer"
	m := &Redeemer{
		LinkChecks: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "link_checks_total",
			Help: "Links verified, by result (ok, invalid, expired)."}, []string{"result"}),
		Decisions: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "decisions_total",
			Help: "Decisions submitted (POST), by action type and outcome."}, []string{"type", "outcome"}),
		SFNDuration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "sfn_call_duration_seconds",
			Help: "Latency of each Step Functions call attempt.", Buckets: awsBuckets}, []string{"operation"}),
		SFNRetries: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "sfn_retries_total",
			Help: "Step Functions calls retried after a transient error."}, []string{"operation"}),
		HTTPRequests: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "http_requests_total",
			Help: "HTTP requests served, by route and status code."}, []string{"route", "code"}),
		HTTPDuration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "http_request_duration_seconds",
			Help: "Time to serve an HTTP request, by route.", Buckets: prometheus.DefBuckets}, []string{"route"}),
		RateLimited: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "rate_limited_total",
			Help: "Requests refused with 429 by the per-client rate limit."}),
		RateLimitEvictions: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "rate_limit_evictions_total",
			Help: "Clients the rate limiter forgot before their buckets refilled, to stay within its table size."}),
		InFlightPosts: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "decisions_in_flight",
			Help: "Decisions being sent to Step Functions now."}),
		SignInFailures: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "sign_in_failures_total",
			Help: "Link requests refused for their load balancer sign-in, by reason."}, []string{"reason"}),
		Forbidden: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "forbidden_total",
			Help: "Link requests by a signed-in user who is not the link's recipient (403)."}),
		Votes: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "votes_total",
			Help: "POSTs through the votes table, by result; tally_error counts confirmation pages without a count."}, []string{"result"}),
		QuorumCompletions: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "quorum_completions_total",
			Help: "Tasks completed through the votes table by this redeemer, by type (success at quorum, failure on a veto)."}, []string{"type"}),
		VoteConflicts: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "vote_conflicts_total",
			Help: "Conditional writes to the votes table that lost to another caller's."}),
	}
	for _, r := range SignInReasons {
		m.SignInFailures.WithLabelValues(r)
	}
	for _, r := range VoteResults {
		m.Votes.WithLabelValues(r)
	}
	for _, t := range CompletionTypes {
		m.QuorumCompletions.WithLabelValues(t)
	}
	for _, r := range LinkResults {
		m.LinkChecks.WithLabelValues(r)
	}
	for _, t := range DecisionTypes {
		for _, o := range DecisionOutcomes {
			m.Decisions.WithLabelValues(t, o)
		}
	}
	for _, op := range SFNOperations {
		m.SFNDuration.WithLabelValues(op)
		m.SFNRetries.WithLabelValues(op)
	}
	for _, r := range Routes {
		m.HTTPDuration.WithLabelValues(r)
	}
	return m
}

// Worker is the worker's metric set (namespace approvals_worker).
type Worker struct {
	Received      prometheus.Counter
	Handled       *prometheus.CounterVec // outcome
	EmailsSent    prometheus.Counter
	SESDuration   *prometheus.HistogramVec // result
	MessageAge    prometheus.Histogram
	InFlight      prometheus.Gauge
	FailFast      *prometheus.CounterVec // error, result
	Panics        prometheus.Counter
	VisibilityExt prometheus.Counter
	SQSErrors     *prometheus.CounterVec // operation
	// OperatorErrors counts AWS errors an operator must fix, by code (one
	// of OperatorErrorCodes): the message is retried, never failed.
	OperatorErrors *prometheus.CounterVec // code
	// ChannelPosts counts posts to channels by channel type and result
	// (one of PostResults); ChannelDuration times them by type.
	ChannelPosts    *prometheus.CounterVec   // type, result
	ChannelDuration *prometheus.HistogramVec // type
}

// SQSOperations are the worker's SQS call labels.
var SQSOperations = []string{"ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility"}

// NewWorker registers the worker's metrics on reg.
func NewWorker(reg prometheus.Registerer) *Worker {
	f := promauto.With(reg)
	const ns = "approvals_worker"
	m := &Worker{
		Received: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "messages_received_total",
			Help: "SQS messages received."}),
		Handled: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_handled_total",
			Help: "SQS messages handled, by outcome (sent, notified, invalid, rejected, retried, malformed)."}, []string{"outcome"}),
		EmailsSent: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "emails_sent_total",
			Help: "Emails accepted by SES (one per recipient)."}),
		SESDuration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "ses_call_duration_seconds",
			Help: "Latency of each SES SendEmail call, by result.", Buckets: awsBuckets}, []string{"result"}),
		MessageAge: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "message_age_seconds",
			Help:    "Age of a message when received (now - SentTimestamp).",
			Buckets: []float64{.1, .5, 1, 5, 15, 60, 300, 900, 3600, 14400}}),
		InFlight: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "messages_in_flight",
			Help: "Messages being handled now."}),
		FailFast: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "fail_fast_total",
			Help: "SendTaskFailure calls made to fail an execution fast, by error name and result."}, []string{"error", "result"}),
		Panics: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "panics_total",
			Help: "Panics recovered while handling a message."}),
		VisibilityExt: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "visibility_extensions_total",
			Help: "Visibility timeouts extended for messages still being handled."}),
		SQSErrors: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "sqs_errors_total",
			Help: "Failed SQS calls, by operation."}, []string{"operation"}),
		OperatorErrors: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "operator_errors_total",
			Help: "AWS errors an operator must fix (sending paused, account suspended, sender or configuration set not found, access denied, credentials), by error code; the message is retried, never failed."}, []string{"code"}),
		ChannelPosts: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "channel_posts_total",
			Help: "Messages posted to channels, by channel type (slack, teams, webhook) and result (delivered, transient, rejected)."}, []string{"type", "result"}),
		ChannelDuration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "channel_post_duration_seconds",
			Help: "Latency of each post to a channel, by channel type.", Buckets: awsBuckets}, []string{"type"}),
	}
	for _, o := range HandledOutcomes {
		m.Handled.WithLabelValues(o)
	}
	for _, t := range ChannelTypes {
		m.ChannelDuration.WithLabelValues(t)
		for _, r := range PostResults {
			m.ChannelPosts.WithLabelValues(t, r)
		}
	}
	for _, r := range CallResults {
		m.SESDuration.WithLabelValues(r)
	}
	for _, e := range FailFastErrors {
		for _, r := range CallResults {
			m.FailFast.WithLabelValues(e, r)
		}
	}
	for _, op := range SQSOperations {
		m.SQSErrors.WithLabelValues(op)
	}
	for _, c := range OperatorErrorCodes {
		m.OperatorErrors.WithLabelValues(c)
	}
	return m
}
