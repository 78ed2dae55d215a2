package redeemer

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/identity/albtest"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/votes"
)

// channelLink makes a link a channel's: recipient channel:ops, requested by
// ann, for the approvers given (none: the request listed no address).
func channelLink(approvers ...string) func(*link.Claims) {
	return func(c *link.Claims) {
		c.Recipient, c.RequestedBy = link.ChannelRecipient("ops"), "ann@example.com"
		c.Approvers = link.NewApproverSet(approvers...)
	}
}

// Under sign-in, a channel's link admits the request's approvers but the
// requester, and records the decision under the signed-in email.
func TestChannelLinkSignedIn(t *testing.T) {
	b := setupALB(t)
	p := b.path(t, approve, channelLink("ben@example.com", "cy@example.com"))

	refused := []struct {
		name, email, want string
	}{
		{"the requester", "Ann@example.com", "who requested this approval: the requester cannot decide it"},
		{"not an approver", "dee@example.com", "dee@example.com, who is not one of this request"},
		{"no email", "", "without an email address"},
	}
	for _, tt := range refused {
		h := b.signedIn("u-"+tt.name, tt.email)
		for _, r := range []req{{method: http.MethodGet, path: p, header: h}, {method: http.MethodPost, path: p, header: h, form: map[string][]string{"comment": {"me"}}}} {
			w := b.do(r)
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), tt.want) || !strings.Contains(w.Body.String(), "Nothing was changed") {
				t.Errorf("%s: %s = %d, want 403 saying %q:\n%s", tt.name, r.method, w.Code, tt.want, w.Body)
			}
		}
		w := b.do(req{method: http.MethodPost, path: p, header: h, json: true})
		got := jsonOf(t, w.Body.Bytes())
		if got["outcome"] != "forbidden" || got["approver"] != "channel:ops" {
			t.Errorf("%s: JSON = %v, want forbidden for channel:ops", tt.name, got)
		}
	}
	if n := b.sfn.callCount(); n != 0 {
		t.Fatalf("%d Step Functions calls by refused users", n)
	}
	if got := testutil.ToFloat64(b.srv.m.Forbidden); got != 9 {
		t.Errorf("forbidden_total = %v, want 9", got)
	}

	h := b.signedIn("00u1cy", "Cy@Example.com")
	w := b.do(req{method: http.MethodGet, path: p, header: h, json: true})
	if got := jsonOf(t, w.Body.Bytes()); w.Code != http.StatusOK || got["outcome"] != "confirm" || got["approver"] != "Cy@Example.com" {
		t.Errorf("GET by an approver = %d %v, want confirm naming them the approver", w.Code, got)
	}
	w = b.do(req{method: http.MethodPost, path: p, header: h, form: map[string][]string{"comment": {"from slack"}}})
	if w.Code != http.StatusOK || len(b.sfn.successes) != 1 {
		t.Fatalf("POST by an approver = %d, %d successes\n%s", w.Code, len(b.sfn.successes), w.Body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(b.sfn.successes[0].Output)), &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"action": "approve", "approver": "Cy@Example.com", "decidedAt": "2026-11-25T09:30:15Z",
		"comment": "from slack", "identity": map[string]any{"sub": "00u1cy", "email": "Cy@Example.com", "issuer": albtest.Issuer}}
	if d := cmp.Diff(want, out["decision"]); d != "" {
		t.Errorf("decision (-want +got):\n%s", d)
	}
	if logs := b.logs.String(); !strings.Contains(logs, `"reason":"requester"`) || !strings.Contains(logs, `"reason":"not_an_approver"`) {
		t.Errorf("refusals not logged with their reason:\n%s", logs)
	}
}

// A request that listed no address has channel links without approvers:
// anyone signed in decides through them, but the requester.
func TestChannelLinkWithoutApprovers(t *testing.T) {
	b := setupALB(t)
	p := b.path(t, approve, channelLink())
	if w := b.do(post(p, "")); w.Code != http.StatusUnauthorized {
		t.Errorf("POST without a sign-in = %d, want 401", w.Code)
	}
	w := b.do(req{method: http.MethodPost, path: p, header: b.signedIn("u-ann", "ann@example.com"), form: map[string][]string{"comment": {""}}})
	if w.Code != http.StatusForbidden {
		t.Errorf("POST by the requester = %d, want 403", w.Code)
	}
	w = b.do(req{method: http.MethodPost, path: p, header: b.signedIn("u-zed", "zed@example.org"), form: map[string][]string{"comment": {""}}})
	if w.Code != http.StatusOK || len(b.sfn.successes) != 1 || !strings.Contains(aws.ToString(b.sfn.successes[0].Output), `"approver":"zed@example.org"`) {
		t.Fatalf("POST by anyone else = %d, %d successes, want zed's decision\n%s", w.Code, len(b.sfn.successes), w.Body)
	}
}

// With link identity a channel's link is one approver: whoever opens it
// decides as channel:NAME, whatever approvers it lists.
func TestChannelLinkWithoutSignIn(t *testing.T) {
	b := setup(t)
	w := b.do(post(b.path(t, approve, channelLink("ben@example.com")), "ok"))
	if w.Code != http.StatusOK || len(b.sfn.successes) != 1 || !strings.Contains(aws.ToString(b.sfn.successes[0].Output), `"approver":"channel:ops"`) {
		t.Fatalf("POST = %d, %d successes, want a decision by channel:ops\n%s", w.Code, len(b.sfn.successes), w.Body)
	}
}

// Through the votes table, each signed-in user's vote on one channel link
// is their own: the store is asked for ben's and cy's votes, under their
// signed-in emails.
func TestChannelLinkVotesPerEmail(t *testing.T) {
	fs := &fakeStore{results: []votes.Result{
		{Outcome: votes.VoteRecorded, Approvals: 1, Required: 2},
		{Outcome: votes.AlreadyVoted, Approvals: 1, Required: 2},
		{Outcome: votes.Decided, Type: approval.Success, Completed: true},
	}}
	b := setupALB(t)
	b.srv.votes = fs
	p := b.path(t, approve, channelLink("ben@example.com", "cy@example.com", "dee@example.com"), quorum(2))
	for _, tc := range []struct{ sub, email, outcome string }{
		{"u-ben", "ben@example.com", "vote_recorded"},
		{"u-ben", "ben@example.com", "already_voted"},
		{"u-cy", "cy@example.com", "recorded"},
	} {
		w := b.do(req{method: http.MethodPost, path: p, header: b.signedIn(tc.sub, tc.email), json: true})
		if got := jsonOf(t, w.Body.Bytes()); got["outcome"] != tc.outcome || got["approver"] != tc.email {
			t.Errorf("POST by %s = %v, want %s naming them", tc.email, got, tc.outcome)
		}
	}
	var got []string
	for _, v := range fs.votes {
		if v.Decision.Identity == nil || v.Decision.Identity.Email != v.Decision.Approver || v.MinApprovals != 2 {
			t.Errorf("vote %+v: want the signed-in email as approver, quorum 2", v.Decision)
		}
		got = append(got, v.Decision.Approver)
	}
	if d := cmp.Diff([]string{"ben@example.com", "ben@example.com", "cy@example.com"}, got); d != "" {
		t.Errorf("votes' approvers (-want +got):\n%s", d)
	}
}
