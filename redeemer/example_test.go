package redeemer_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/redeemer"
)

// The output of SendTaskSuccess: the action's output at top level, the
// decision beside it, and every approving vote (here the one) in decisions.
func ExampleSuccessOutput() {
	a := approval.Action{Name: "approve", Type: approval.Success, Output: json.RawMessage(`{"approved": true}`)}
	d := approval.Decision{Action: "approve", Approver: "ben@example.com",
		DecidedAt: time.Date(2026, 11, 25, 9, 30, 15, 0, time.UTC), Comment: "ship it"}
	out, _ := redeemer.SuccessOutput(a, d)
	fmt.Println(out)
	// Output:
	// {"approved":true,"decision":{"action":"approve","approver":"ben@example.com","decidedAt":"2026-11-25T09:30:15Z","comment":"ship it"},"decisions":[{"action":"approve","approver":"ben@example.com","decidedAt":"2026-11-25T09:30:15Z","comment":"ship it"}]}
}

// The cause of SendTaskFailure (its error is the action's, here "Rejected"):
// the action's cause as "message", the decision, and the approvals before it
// (none, without a quorum).
func ExampleFailureCause() {
	a := approval.DefaultActions()[1]
	d := approval.Decision{Action: a.Name, Approver: "ben@example.com",
		DecidedAt: time.Date(2026, 11, 25, 9, 30, 15, 0, time.UTC)}
	cause, _ := redeemer.FailureCause(a, d)
	fmt.Println(a.Error, cause)
	// Output:
	// Rejected {"message":"Rejected by approver","decision":{"action":"reject","approver":"ben@example.com","decidedAt":"2026-11-25T09:30:15Z"},"decisions":[]}
}
