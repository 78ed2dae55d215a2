package votes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

// DecisionsKey is the key under which a success output carries every
// approving vote. Action outputs may not use it.
const DecisionsKey = "decisions"

// SuccessOutput is the SendTaskSuccess output at quorum: the action's output
// object's keys at top level, the vote that reached quorum under
// approval.DecisionKey and every approving vote, in order, under
// DecisionsKey (both replace keys of those names).
func SuccessOutput(actionOutput json.RawMessage, d approval.Decision, ds []approval.Decision) (string, error) {
	fields := map[string]json.RawMessage{}
	if raw := bytes.TrimSpace(actionOutput); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if raw[0] != '{' {
			return "", errors.New("action output is not a JSON object")
		}
		if err := json.Unmarshal(raw, &fields); err != nil {
			return "", fmt.Errorf("action output: %w", err)
		}
	}
	db, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode decision: %w", err)
	}
	dsb, err := json.Marshal(nonNil(ds))
	if err != nil {
		return "", fmt.Errorf("encode decisions: %w", err)
	}
	fields[approval.DecisionKey] = db
	fields[DecisionsKey] = dsb
	b, err := json.Marshal(fields)
	if err != nil {
		return "", fmt.Errorf("encode output: %w", err)
	}
	return string(b), nil
}

// Cause is the SendTaskFailure cause of a veto.
type Cause struct {
	Message  string            `json:"message,omitempty"`
	Decision approval.Decision `json:"decision"`
	// Decisions are the approvals cast before the veto, in order.
	Decisions []approval.Decision `json:"decisions"`
}

// FailureCause is the JSON cause of a veto: the action's cause as message,
// the veto as decision, and the approvals so far.
func FailureCause(message string, d approval.Decision, ds []approval.Decision) (string, error) {
	b, err := json.Marshal(Cause{Message: message, Decision: d, Decisions: nonNil(ds)})
	if err != nil {
		return "", fmt.Errorf("encode cause: %w", err)
	}
	return string(b), nil
}

// nonNil keeps "no approvals" an empty JSON list rather than null, so a
// state machine can read its length either way.
func nonNil(ds []approval.Decision) []approval.Decision {
	if ds == nil {
		return []approval.Decision{}
	}
	return ds
}
