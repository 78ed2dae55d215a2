package votes_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/votes"
)

// The output a 2-of-3 request's state machine receives at quorum: the
// action's output, the vote that reached quorum, and every approval in order.
func ExampleSuccessOutput() {
	at := time.Date(2026, 11, 25, 9, 30, 15, 0, time.UTC)
	ann := approval.Decision{Action: "approve", Approver: "ann@example.com", DecidedAt: at}
	ben := approval.Decision{Action: "approve", Approver: "ben@example.com", DecidedAt: at.Add(time.Minute), Comment: "ship it"}
	out, err := votes.SuccessOutput(json.RawMessage(`{"approved": true}`), ben, []approval.Decision{ann, ben})
	if err != nil {
		panic(err)
	}
	fmt.Println(out)
	// Output:
	// {"approved":true,"decision":{"action":"approve","approver":"ben@example.com","decidedAt":"2026-11-25T09:31:15Z","comment":"ship it"},"decisions":[{"action":"approve","approver":"ann@example.com","decidedAt":"2026-11-25T09:30:15Z"},{"action":"approve","approver":"ben@example.com","decidedAt":"2026-11-25T09:31:15Z","comment":"ship it"}]}
}

// The cause of a veto after one approval.
func ExampleFailureCause() {
	at := time.Date(2026, 11, 25, 9, 30, 15, 0, time.UTC)
	ann := approval.Decision{Action: "approve", Approver: "ann@example.com", DecidedAt: at}
	cat := approval.Decision{Action: "reject", Approver: "cat@example.com", DecidedAt: at, Comment: "not this week"}
	cause, err := votes.FailureCause("Rejected by approver", cat, []approval.Decision{ann})
	if err != nil {
		panic(err)
	}
	fmt.Println(cause)
	// Output:
	// {"message":"Rejected by approver","decision":{"action":"reject","approver":"cat@example.com","decidedAt":"2026-11-25T09:30:15Z","comment":"not this week"},"decisions":[{"action":"approve","approver":"ann@example.com","decidedAt":"2026-11-25T09:30:15Z"}]}
}

// A request's partition key: a hash of its task token, never the token.
func ExampleRequestKey() {
	fmt.Println(votes.RequestKey("AAAAKgAAAAIAAAAAAAAAAQ-example-token"))
	// Output:
	// req#ILPNPk3jQ36IcGKilsHgAVCzlM6ha6kjJUAlCC0Hop4
}
