package worker_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/sfn-approvals/sfn-approvals/worker"
)

// DecodeRequest lists every problem of a request at once; a state machine
// receives the same list in the cause of Approvals.InvalidRequest.
func ExampleDecodeRequest() {
	body := []byte(`{"taskToken": "AAAAKgAAAAIAAAAAAAAAAQ==", "to": ["ben@"], "subjct": "Deploy 42", "expiresIn": "3 days"}`)
	_, err := worker.DecodeRequest(body, worker.DecodeOptions{})
	var ve *worker.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// unknown field "subjct"
	// to[0]: "ben@" is not an email address (mail: missing '@' or angle-addr)
	// subject: required
	// expiresIn: "3 days" is not a duration (like "72h" or "30m")
}

// A valid request gets its defaults: the approve and reject actions, the
// approval template and an expiry 72 hours on.
func ExampleDecodeRequest_defaults() {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	r, err := worker.DecodeRequest([]byte(`{"taskToken": "t", "to": ["Ben <ben@example.com>"], "subject": "Deploy 42"}`),
		worker.DecodeOptions{Now: now})
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Template, r.Actions[0].Name, r.Actions[1].Name, r.ExpiresAt.Format(time.RFC3339), r.To[0].Address)
	// Output:
	// approval approve reject 2026-03-04T09:00:00Z ben@example.com
}
