package redeemer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/votes"
)

// fakeStore answers each Vote with the next of results (and err), and
// every Tally with tally; it records what it was asked.
type fakeStore struct {
	mu       sync.Mutex
	results  []votes.Result
	err      error
	tally    votes.Tally
	tallyErr error
	checkErr error
	votes    []votes.Vote
	tallies  int
}

var _ voteStore = (*fakeStore)(nil)

func (f *fakeStore) Vote(_ context.Context, v votes.Vote) (votes.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.votes = append(f.votes, v)
	if f.err != nil {
		return votes.Result{}, f.err
	}
	if len(f.results) == 0 {
		return votes.Result{}, errors.New("fakeStore: no result left")
	}
	r := f.results[0]
	f.results = f.results[1:]
	return r, nil
}

func (f *fakeStore) Tally(_ context.Context, token, approver string, min int) (votes.Tally, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tallies++
	return f.tally, f.tallyErr
}

func (f *fakeStore) Check(context.Context) error { return f.checkErr }

func setupVotes(t *testing.T, fs *fakeStore) *bundle {
	t.Helper()
	b := setup(t)
	b.srv.votes = fs
	return b
}

func quorum(n int) func(*link.Claims) {
	return func(c *link.Claims) { c.MinApprovals, c.RequestedBy = n, "ann@example.com" }
}

var (
	decidedAt  = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	cyApproved = approval.Decision{Action: "approve", Approver: "cy@example.com", DecidedAt: decidedAt}
)

func TestVoteOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		action     approval.Action
		result     votes.Result
		err        error
		wantStatus int
		wantJSON   map[string]any // keys checked in the JSON answer
		wantPage   []string       // strings in the HTML answer
		wantRetry  string
		wantVotes  string // votes_total result counted
	}{
		{name: "below quorum", action: approve,
			result:     votes.Result{Outcome: votes.VoteRecorded, Approvals: 1, Required: 2},
			wantStatus: http.StatusOK,
			wantJSON:   map[string]any{"outcome": "vote_recorded", "approvals": 1.0, "required": 2.0},
			wantPage:   []string{"Approval recorded", "1 of 2 approvals"},
			wantVotes:  "vote_recorded"},
		{name: "already voted", action: approve,
			result:     votes.Result{Outcome: votes.AlreadyVoted, Approvals: 1, Required: 2, Earlier: &approval.Decision{Action: "approve", Approver: "ben@example.com", DecidedAt: decidedAt}},
			wantStatus: http.StatusOK,
			wantJSON:   map[string]any{"outcome": "already_voted", "approvals": 1.0, "required": 2.0, "decidedAt": "2026-11-25T08:00:00Z"},
			wantPage:   []string{"You already voted", "your earlier vote stands", "1 of 2 approvals", `datetime="2026-11-25T08:00:00Z"`},
			wantVotes:  "already_voted"},
		{name: "quorum reached", action: approve,
			result:     votes.Result{Outcome: votes.Decided, Type: approval.Success, Completed: true, Decisions: []approval.Decision{cyApproved, {}}},
			wantStatus: http.StatusOK,
			wantJSON:   map[string]any{"outcome": "recorded", "approvals": 2.0, "required": 2.0},
			wantPage:   []string{"Decision recorded"},
			wantVotes:  "decided"},
		{name: "decided by another", action: approve,
			result:     votes.Result{Outcome: votes.Gone, Type: approval.Success, Decision: &cyApproved},
			wantStatus: http.StatusGone,
			wantJSON:   map[string]any{"outcome": "gone", "decidedBy": "cy@example.com", "decidedAction": "approve", "decidedAt": "2026-11-25T08:00:00Z"},
			wantPage:   []string{"Already answered", "Decided by", "cy@example.com", `datetime="2026-11-25T08:00:00Z"`},
			wantVotes:  "gone"},
		{name: "task timed out", action: reject,
			result:     votes.Result{Outcome: votes.Gone, Reason: "TaskTimedOut"},
			wantStatus: http.StatusGone,
			wantJSON:   map[string]any{"outcome": "gone"},
			wantPage:   []string{"Already answered"},
			wantVotes:  "gone"},
		{name: "heartbeat", action: extend,
			result:     votes.Result{Outcome: votes.Extended},
			wantStatus: http.StatusOK,
			wantJSON:   map[string]any{"outcome": "extended"},
			wantPage:   []string{"Request extended"},
			wantVotes:  "extended"},
		{name: "being decided", action: approve,
			result:     votes.Result{Outcome: votes.Busy, RetryAfter: 1200 * time.Millisecond},
			wantStatus: http.StatusServiceUnavailable,
			wantJSON:   map[string]any{"outcome": "busy"},
			wantPage:   []string{"Being decided", "try again in a few seconds"},
			wantRetry:  "2",
			wantVotes:  "busy"},
		{name: "table throttled", action: approve,
			err:        &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")},
			wantStatus: http.StatusServiceUnavailable,
			wantJSON:   map[string]any{"outcome": "unavailable"},
			wantPage:   []string{"Try again shortly"},
			wantRetry:  "60",
			wantVotes:  "unavailable"},
		{name: "table missing", action: approve,
			err:        fmt.Errorf("query: votes table %q: %w: %w", "t", votes.ErrNoTable, &types.ResourceNotFoundException{Message: aws.String("no table")}),
			wantStatus: http.StatusInternalServerError,
			wantJSON:   map[string]any{"outcome": "error"},
			wantPage:   []string{"Not recorded"},
			wantVotes:  "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, asJSON := range []bool{true, false} {
				fs := &fakeStore{results: []votes.Result{tt.result}, err: tt.err}
				b := setupVotes(t, fs)
				r := post(b.path(t, tt.action, quorum(2)), "fine by me")
				r.json = asJSON
				w := b.do(r)
				if w.Code != tt.wantStatus {
					t.Fatalf("json=%v: POST = %d, want %d\n%s", asJSON, w.Code, tt.wantStatus, w.Body)
				}
				if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
					t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
				}
				if asJSON {
					var got map[string]any
					if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
						t.Fatal(err)
					}
					for k, want := range tt.wantJSON {
						if got[k] != want {
							t.Errorf("JSON %s = %v, want %v: %s", k, got[k], want, w.Body)
						}
					}
				} else {
					for _, want := range tt.wantPage {
						if !strings.Contains(w.Body.String(), want) {
							t.Errorf("page lacks %q:\n%s", want, w.Body)
						}
					}
				}
				if got := testutil.ToFloat64(b.srv.m.Votes.WithLabelValues(tt.wantVotes)); got != 1 {
					t.Errorf("votes_total{result=%s} = %v, want 1", tt.wantVotes, got)
				}
				if len(b.sfn.successes)+len(b.sfn.failures)+len(b.sfn.heartbeats) != 0 {
					t.Errorf("the redeemer called Step Functions itself, beside the store")
				}
				// The store got the link's vote.
				want := votes.Vote{TaskToken: taskToken, Action: tt.action, MinApprovals: 2, ExpiresAt: b.now.Add(72 * time.Hour),
					Decision: approval.Decision{Action: tt.action.Name, Approver: "ben@example.com", DecidedAt: b.now, Comment: "fine by me"}}
				if len(fs.votes) != 1 {
					t.Fatalf("store got %d votes, want 1", len(fs.votes))
				}
				if diff := cmp.Diff(want, fs.votes[0]); diff != "" {
					t.Errorf("vote (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// A completion through the votes table is counted by type, and a decided
// request redirects as a decision without the table does.
func TestVoteDecidedRedirects(t *testing.T) {
	fs := &fakeStore{results: []votes.Result{{Outcome: votes.Decided, Type: approval.Success, Completed: true}}}
	b := setupVotes(t, fs)
	w := b.do(post(b.path(t, approve, func(c *link.Claims) { c.RedirectURL = "https://example.com/done" }), ""))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "https://example.com/done" {
		t.Fatalf("POST = %d, Location %q; want 303 to the redirect URL", w.Code, w.Header().Get("Location"))
	}
	if got := testutil.ToFloat64(b.srv.m.QuorumCompletions.WithLabelValues("success")); got != 1 {
		t.Errorf("quorum_completions_total{type=success} = %v, want 1", got)
	}
	// Below quorum nothing is decided yet: no redirect.
	fs.results = []votes.Result{{Outcome: votes.VoteRecorded, Approvals: 1, Required: 2}}
	w = b.do(post(b.path(t, approve, quorum(2), func(c *link.Claims) { c.RedirectURL = "https://example.com/done" }), ""))
	if w.Code != http.StatusOK || w.Header().Get("Location") != "" {
		t.Fatalf("POST below quorum = %d, Location %q; want 200 and no redirect", w.Code, w.Header().Get("Location"))
	}
}

func TestConfirmPageTally(t *testing.T) {
	tests := []struct {
		name       string
		tally      votes.Tally
		tallyErr   error
		wantStatus int
		wantPage   []string
		wantJSON   map[string]any
		wantForm   bool
	}{
		{name: "open", tally: votes.Tally{Approvals: 1, Required: 2}, wantStatus: http.StatusOK, wantForm: true,
			wantPage: []string{"This request needs 2 approvals and has 1."},
			wantJSON: map[string]any{"outcome": "confirm", "approvals": 1.0, "required": 2.0}},
		{name: "decided", tally: votes.Tally{Approvals: 2, Required: 2, Decided: true, Type: approval.Success, Decision: &cyApproved},
			wantStatus: http.StatusGone, wantPage: []string{"Decided by", "cy@example.com"},
			wantJSON: map[string]any{"outcome": "gone", "decidedBy": "cy@example.com", "decidedAction": "approve"}},
		{name: "voted already", tally: votes.Tally{Approvals: 1, Required: 2, Mine: &approval.Decision{Action: "approve", Approver: "ben@example.com", DecidedAt: decidedAt}},
			wantStatus: http.StatusOK, wantPage: []string{"You already voted", "1 of 2 approvals"},
			wantJSON: map[string]any{"outcome": "already_voted", "approvals": 1.0}},
		{name: "table unreadable", tallyErr: errors.New("boom"), wantStatus: http.StatusOK, wantForm: true,
			wantPage: []string{"Confirm your decision"}, wantJSON: map[string]any{"outcome": "confirm", "approvals": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &fakeStore{tally: tt.tally, tallyErr: tt.tallyErr}
			b := setupVotes(t, fs)
			p := b.path(t, approve, quorum(2))
			w := b.do(req{method: http.MethodGet, path: p})
			if w.Code != tt.wantStatus {
				t.Fatalf("GET = %d, want %d\n%s", w.Code, tt.wantStatus, w.Body)
			}
			for _, want := range tt.wantPage {
				if !strings.Contains(w.Body.String(), want) {
					t.Errorf("page lacks %q:\n%s", want, w.Body)
				}
			}
			if got := strings.Contains(w.Body.String(), "<form"); got != tt.wantForm {
				t.Errorf("page has a form: %v, want %v", got, tt.wantForm)
			}
			w = b.do(req{method: http.MethodGet, path: p, json: true})
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.wantJSON {
				if got[k] != want {
					t.Errorf("JSON %s = %v, want %v: %s", k, got[k], want, w.Body)
				}
			}
			if len(fs.votes) != 0 || b.sfn.callCount() != 0 {
				t.Errorf("a GET voted (%d) or called Step Functions (%d)", len(fs.votes), b.sfn.callCount())
			}
		})
	}
}

// The store reaches Step Functions through the POST's retries.
func TestRetryingTask(t *testing.T) {
	b := setup(t)
	b.sfn.errs = []error{throttled, throttled}
	task := retryingTask{b.srv}
	if err := task.Succeed(context.Background(), taskToken, `{"ok":true}`); err != nil {
		t.Fatalf("Succeed after two throttles: %v", err)
	}
	if n := b.sfn.callCount(); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
	b.sfn.errs = []error{apiErr("TaskTimedOut", smithy.FaultClient)}
	if err := task.Fail(context.Background(), taskToken, "Rejected", "{}"); votes.GoneCode(err) != "TaskTimedOut" {
		t.Errorf("Fail on an ended task = %v, want TaskTimedOut at once", err)
	}
	if n := b.sfn.callCount(); n != 4 {
		t.Errorf("%d calls, want 4 (no retry of TaskTimedOut)", n)
	}
}

func TestVotesTableNeedsClient(t *testing.T) {
	kr, err := link.ParseKeyring(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{BaseURL: "https://approvals.example.com", Keyring: kr, VotesTable: "votes"}, &fakeSFN{}, nil, nil)
	if err == nil {
		t.Fatal("New with a votes table and no DynamoDB client succeeded")
	}
}
