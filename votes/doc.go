// Package votes keeps the votes table: who voted on an approval request, and
// the one record that says the request was decided. It lets several approvers
// decide one Step Functions task (M of N, a veto, a requester who may not
// decide) while the task is still completed exactly once.
//
// # Layout
//
// All items of one request share a partition key derived from its task token
// (a SHA-256 of it; the token itself is never stored), so one strongly
// consistent Query reads the request's whole state:
//
//	pk = "req#" + base64url(sha256(taskToken))
//	sk = "vote#" + lower(approver)   one per approving vote below quorum
//	sk = "completion"                the decision: IN_PROGRESS, then COMPLETED
//
// Every item carries ttl (Unix seconds), 7 days after the links expire.
//
// # Delivery semantics
//
// A vote is a conditional put (attribute_not_exists), so an approver counts
// once however often they click. The vote that decides (the one reaching
// minApprovals, or any failure action: a veto) does not write a vote item: it
// puts the completion record instead, also conditionally, so exactly one caller
// claims the decision. The record holds everything Step Functions must be told
// (output, or error and cause) and a lease. Its owner calls Step Functions and
// then moves it to COMPLETED, noting Step Functions' refusal (TaskTimedOut) if
// there was one.
//
// A caller that dies in between leaves an IN_PROGRESS record whose lease
// runs out; the next vote on any of the request's links takes the lease over
// and sends the same answer, so a crash neither loses nor repeats a decision.
// Votes that reach quorum together with no completion record (their callers
// died before claiming) are finished the same way by the next caller.
//
// Each write touches one item, which DynamoDB already makes atomic: no
// transactions, which would double the write units a vote costs.
package votes
