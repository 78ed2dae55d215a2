// Package channel posts approval messages to chat and to other systems:
// Slack incoming webhooks, Microsoft Teams Workflows webhooks, and signed
// generic webhooks. A channel is only another way to deliver the links the
// worker mints; what a click does is the redeemer's business.
//
// Configuration (APPROVALS_CHANNELS) is parsed once at start by Parse. A
// webhook URL is a credential (whoever has it can post), so no error,
// String, GoString or LogValue of this package ever contains a URL or a
// secret.
//
// Messages are typed values (SlackMessage, TeamsMessage, WebhookMessage)
// built from one Message. Each builder stays inside the service's
// documented limits, truncating data with a visible "…and N more" rather
// than failing; only what cannot be shortened without losing a working link
// (an action URL longer than a Slack button takes, actions that do not fit
// a Teams card) fails, with ErrTooLarge.
//
// Delivery (Poster.Post) is one HTTP POST with its own deadline and no retry
// of its own: the worker retries the whole SQS message, as it does for
// email. A 2xx answer is delivered. 429, 5xx, network errors and timeouts are
// transient. Any other answer is a verdict on the message or the channel's
// configuration: Rejected reports it, and the worker fails the approval with
// Approvals.ChannelRejected.
//
// Generic webhooks are signed: X-Approvals-Timestamp carries Unix seconds and
// X-Approvals-Signature "sha256=" and the hex HMAC-SHA256 of
// TIMESTAMP + "." + BODY under the channel's secret. Verify is the
// receiver's side of it.
package channel
