// Package worker turns approval requests on an SQS queue into emails with
// signed links, one email per recipient, and into one message per channel
// (Slack, Teams, a webhook) with links minted for "channel:NAME".
//
// Delivery is at least once. A message is deleted only after every email it
// asks for was accepted by SES, or after the execution waiting on it was
// failed fast with SendTaskFailure (an invalid request, an email SES rejects
// for good). Anything transient (throttling, 5xx, network) leaves the message
// on the queue and pushes its next attempt out with ChangeMessageVisibility,
// longer at each receive; the queue's redrive policy moves it to the
// dead-letter queue after its last attempt. Because a retry sends the whole
// message again, a recipient whose email went out before a later recipient's
// failed gets it twice; their links from either email work the same.
//
// Channel posts are part of a message's work and come before its emails:
// a 2xx is delivered; 429, 5xx, network errors and the deadline retry the
// whole message, which posts again to the channels that already had it;
// any other answer fails the approval with Approvals.ChannelRejected.
//
// A body that is not JSON, or that has no task token and is invalid, has no
// execution to fail: it is counted, logged without its body, and left for
// the dead-letter queue.
package worker
