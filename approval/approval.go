// Package approval holds the vocabulary that the worker, the redeemer and the
// link format share: actions, their types, and the decision record that
// reaches the state machine.
package approval

import (
	"encoding/json"
	"time"
)

// ActionType says which Step Functions call an action makes when redeemed.
type ActionType string

const (
	// Success completes the task with SendTaskSuccess.
	Success ActionType = "success"
	// Failure completes the task with SendTaskFailure.
	Failure ActionType = "failure"
	// Heartbeat only extends the task with SendTaskHeartbeat.
	Heartbeat ActionType = "heartbeat"
)

// Valid reports whether t is one of the known action types.
func (t ActionType) Valid() bool {
	switch t {
	case Success, Failure, Heartbeat:
		return true
	}
	return false
}

// Action is one button in an approval email. Output is used by success
// actions, Error and Cause by failure actions.
type Action struct {
	Name   string          `json:"name"`
	Label  string          `json:"label,omitempty"`
	Type   ActionType      `json:"type"`
	Output json.RawMessage `json:"output,omitempty"`
	Error  string          `json:"error,omitempty"`
	Cause  string          `json:"cause,omitempty"`
}

// DisplayLabel is the label shown to people, falling back to the name.
func (a Action) DisplayLabel() string {
	if a.Label != "" {
		return a.Label
	}
	return a.Name
}

// DefaultActions are used when a request names none: approve and reject.
func DefaultActions() []Action {
	return []Action{
		{Name: "approve", Label: "Approve", Type: Success},
		{Name: "reject", Label: "Reject", Type: Failure, Error: "Rejected", Cause: "Rejected by approver"},
	}
}

// DecisionKey is the key under which a success output carries the decision.
// Action outputs may not use it.
const DecisionKey = "decision"

// Decision records who decided what, and when. It reaches the state machine
// under "decision" in a success output, and inside the JSON cause of a
// failure.
type Decision struct {
	Action    string    `json:"action"`
	Approver  string    `json:"approver"`
	DecidedAt time.Time `json:"decidedAt"`
	Comment   string    `json:"comment,omitempty"`
	// Payload is the JSON object a JSON callback sent with the decision
	// (a bot's or a CI system's own data); absent from forms.
	Payload RawJSON `json:"payload,omitempty"`
	// Identity is who was signed in when the redeemer verifies sign-ins
	// (APPROVALS_IDENTITY=alb); absent when the link alone decides.
	Identity *Identity `json:"identity,omitempty"`
}

// Identity is a signed-in approver, as the identity provider names them.
type Identity struct {
	// Sub is the provider's stable user id.
	Sub string `json:"sub"`
	// Email is the email claim; empty when the provider sent none.
	Email string `json:"email"`
	// Issuer is the provider.
	Issuer string `json:"issuer"`
}

// RawJSON is a JSON value kept as its text and encoded as it is, like
// json.RawMessage; a string, so that a Decision stays comparable with ==.
// The empty RawJSON is absent (omitempty) or null.
type RawJSON string

// MarshalJSON writes r as it is.
func (r RawJSON) MarshalJSON() ([]byte, error) {
	if r == "" {
		return []byte("null"), nil
	}
	return []byte(r), nil
}

// UnmarshalJSON keeps the value's text; null is empty.
func (r *RawJSON) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = ""
		return nil
	}
	*r = RawJSON(b)
	return nil
}

// FailureCause is the JSON document sent as the cause of SendTaskFailure.
type FailureCause struct {
	Message  string   `json:"message,omitempty"`
	Decision Decision `json:"decision"`
}
