package votes

import (
	"context"
	"errors"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

// Tally is where a request stands, for a page that shows it before anyone
// votes again.
type Tally struct {
	// Approvals counted so far and Required (minApprovals).
	Approvals, Required int
	// Mine is the asking approver's own vote below quorum, if they cast one.
	Mine *approval.Decision
	// Decided: the request has a decision, of Type, reached by Decision
	// with the approvals Decisions (as in Result). Result is Step
	// Functions' error code when it refused it.
	Decided   bool
	Type      approval.ActionType
	Decision  *approval.Decision
	Decisions []approval.Decision
	Result    string
}

// Tally reads the request of taskToken (one strongly consistent Query, the
// same read a vote starts with) and counts its approvals. It writes nothing
// and finishes nothing: a GET must not decide.
func (s *Store) Tally(ctx context.Context, taskToken, approver string, minApprovals int) (Tally, error) {
	if taskToken == "" {
		return Tally{}, errors.New("tally: no task token")
	}
	st, err := s.load(ctx, RequestKey(taskToken))
	if err != nil {
		return Tally{}, err
	}
	t := Tally{Approvals: len(st.votes), Required: max(minApprovals, 1)}
	if v, ok := st.votes[approverKey(approver)]; ok && approver != "" {
		d := v.Decision
		t.Mine = &d
	}
	if c := st.completion; c != nil {
		d := c.Decision
		t.Decided, t.Type, t.Decision, t.Decisions, t.Result = true, c.Type, &d, c.Decisions, c.Result
		if c.Type == approval.Success {
			t.Approvals = len(c.Decisions)
		}
	}
	return t, nil
}
