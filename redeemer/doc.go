// Package redeemer is the HTTP service behind the links in approval emails.
// It turns an approver's confirmed click into SendTaskSuccess,
// SendTaskFailure or SendTaskHeartbeat on the waiting Step Functions task.
//
// # Scanner safety
//
// Mail security scanners and link previewers fetch every link in a message,
// often before a person sees it. So GET and HEAD of a link only verify it
// and show a confirmation page; they never call Step Functions. The decision
// is made by the POST of the form on that page, which scanners do not
// submit, and no script on the page submits anything.
//
// # Delivery semantics
//
// The redeemer keeps no state: the link carries the task token, the action,
// the recipient and the expiry, sealed with a key from the keyring. Step
// Functions is the only record of whether a task has been answered, so the
// first POST to reach it wins; any later one (from the same link, another
// action or another recipient) gets TaskTimedOut or TaskDoesNotExist, shown
// as "already answered or timed out" (410).
//
// A POST retries throttling, 5xx and network errors with exponential
// backoff for about 20 s, under a context detached from the request, so an
// approver who closes the tab does not abandon a decision half-sent. When the
// retries run out the answer is 503 and the link still works. An attempt
// whose answer was lost (a timeout after Step Functions accepted it) is
// retried too; the retry then finds the task answered and reports 410,
// although the decision recorded is this one: delivery is at least once and
// the outcome page can err towards "already answered", never the reverse.
//
// # With a votes table
//
// With Config.VotesTable (APPROVALS_VOTES_TABLE) the redeemer keeps state
// after all, in DynamoDB through package votes: every POST is a vote
// (vote.go). An approver counts once, a request needing minApprovals is
// completed by exactly one call when the last needed approval arrives (or
// at once on a veto), and Step Functions is called with the same retries
// as above, within the decision's lease. A repeated POST of a vote that is
// part of the decision gets the decision again; a request decided by others
// is gone, naming who decided and when; a POST while another call is giving
// Step Functions the answer is busy (503, Retry-After).
package redeemer
