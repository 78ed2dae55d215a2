package worker

import (
	"context"
	"encoding/json"
	"errors"
	"net/mail"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

func TestDecodeRequestPolicy(t *testing.T) {
	const head = `{"taskToken":"T0KEN","subject":"s",`
	tests := []struct {
		name       string
		body       string
		votesTable bool
		wantMin    int
		wantBy     string
		wantTo     []string
		wantCc     []string
	}{
		{"default is one approval", head + `"to":["a@example.com"]}`, false, 1, "", []string{"a@example.com"}, nil},
		{"two of three with a table", head + `"to":["a@example.com","b@example.com"],"cc":["c@example.com"],"minApprovals":2}`, true,
			2, "", []string{"a@example.com", "b@example.com"}, []string{"c@example.com"}},
		{"one approval needs no table", head + `"to":["a@example.com"],"minApprovals":1}`, false, 1, "", []string{"a@example.com"}, nil},
		{"requester dropped from to and cc, any case", head + `"to":["Ann <ANN@example.com>","b@example.com"],"cc":["c@example.com"],"requestedBy":"ann@Example.com"}`,
			false, 1, "ann@Example.com", []string{"b@example.com"}, []string{"c@example.com"}},
		{"requester dropped from cc", head + `"to":["b@example.com"],"cc":["ann@example.com","c@example.com"],"requestedBy":"ann@example.com"}`,
			false, 1, "ann@example.com", []string{"b@example.com"}, []string{"c@example.com"}},
		{"requester not among recipients", head + `"to":["b@example.com"],"requestedBy":"Ann <ann@example.com>"}`,
			false, 1, "ann@example.com", []string{"b@example.com"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(tt.body), DecodeOptions{Now: testNow, VotesTable: tt.votesTable})
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			var by string
			if r.RequestedBy != nil {
				by = r.RequestedBy.Address
			}
			got := []any{r.MinApprovals, by, addresses(r.To), addresses(r.Cc)}
			want := []any{tt.wantMin, tt.wantBy, tt.wantTo, tt.wantCc}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("minApprovals, requestedBy, to, cc (-want +got):\n%s", diff)
			}
		})
	}
}

func addresses(list []mail.Address) []string {
	var out []string
	for _, a := range list {
		out = append(out, a.Address)
	}
	return out
}

func TestDecodeRequestPolicyProblems(t *testing.T) {
	const head = `{"taskToken":"T0KEN","subject":"s",`
	tests := []struct {
		name       string
		body       string
		votesTable bool
		want       []string
	}{
		{"quorum without a table", head + `"to":["a@example.com","b@example.com"],"minApprovals":2}`, false,
			[]string{"minApprovals: 2 needs the votes table, and this service has none (APPROVALS_VOTES_TABLE)"}},
		{"quorum above the approvers", head + `"to":["a@example.com","b@example.com"],"minApprovals":3}`, true,
			[]string{"minApprovals: 3, but only 2 eligible approvers (to, cc and channels, without requestedBy)"}},
		{"the requester does not count", head + `"to":["a@example.com","b@example.com"],"requestedBy":"b@example.com","minApprovals":2}`, true,
			[]string{"minApprovals: 2, but only 1 eligible approvers (to, cc and channels, without requestedBy)"}},
		{"only the requester", head + `"to":["ann@example.com"],"requestedBy":"ann@example.com"}`, true,
			[]string{`to, cc: no approver left once requestedBy "ann@example.com" is left out (the requester cannot decide)`}},
		{"every problem at once", head + `"to":["a@example.com"],"requestedBy":"not an address","minApprovals":0,"actions":[{"name":"ok","type":"success","output":{"decisions":[]}}]}`, false,
			[]string{
				`actions[0] ("ok"): output may not use the key "decisions" (the approving votes go there)`,
				`requestedBy: "not an address" is not an email address (mail: no angle-addr)`,
				"minApprovals: must be at least 1",
			}},
		{"not a number", head + `"to":["a@example.com"],"minApprovals":"2"}`, true, []string{"minApprovals: must be a whole number"}},
		{"a fraction", head + `"to":["a@example.com"],"minApprovals":1.5}`, true, []string{"minApprovals: must be a whole number"}},
		{"far too many", head + `"to":["a@example.com"],"minApprovals":51}`, true, []string{"minApprovals: 51, at most 50 (the most recipients a request has)"}},
		{"requester not a string", head + `"to":["a@example.com"],"requestedBy":["a@example.com"]}`, true,
			[]string{"requestedBy: must be an email address (a string)"}},
		{"requester with a line break", head + `"to":["a@example.com"],"requestedBy":"a@example.com\r\nBcc: e@evil.example"}`, true,
			[]string{"requestedBy: line break in address"}},
		{"notification", `{"subject":"s","to":["a@example.com"],"requestedBy":"b@example.com","minApprovals":1}`, true,
			[]string{"minApprovals: a notification (no taskToken) has no approvers", "requestedBy: a notification (no taskToken) has no approvers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.body), DecodeOptions{Now: testNow, VotesTable: tt.votesTable})
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("DecodeRequest: %v, want a *ValidationError", err)
			}
			if diff := cmp.Diff(tt.want, ve.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// The requester gets no email; every approver's links carry the quorum and
// the requester, for the redeemer.
func TestHandlePolicyInLinks(t *testing.T) {
	b := newHandler(t, nil)
	b.h.VotesTable = true
	body, _ := json.Marshal(map[string]any{"taskToken": testToken, "subject": "s", "minApprovals": 2,
		"to": []string{"ann@example.com", "ben@example.com"}, "cc": []string{"cy@example.com"}, "requestedBy": "Ann@example.com"})
	if r := b.h.Handle(context.Background(), body); r.outcome != metrics.HandledSent || r.emails != 2 {
		t.Fatalf("Handle = %+v (%v), want 2 emails sent", r, r.reason)
	}
	linkRE := regexp.MustCompile(regexp.QuoteMeta(testBaseURL+link.PathPrefix) + `[A-Za-z0-9_-]+`)
	var got []string
	for _, in := range b.ses.emails() {
		got = append(got, in.Destination.ToAddresses[0])
		text := aws.ToString(in.Content.Simple.Body.Text.Data)
		if !strings.Contains(text, "It needs 2 approvals") || !strings.Contains(text, "Requested by Ann@example.com") {
			t.Errorf("email to %s does not tell the policy:\n%s", got[len(got)-1], text)
		}
		urls := linkRE.FindAllString(text, -1)
		if len(urls) == 0 {
			t.Fatalf("no links in the email to %s", got[len(got)-1])
		}
		for _, u := range urls {
			c, err := b.h.Keyring.Open(strings.TrimPrefix(u, testBaseURL+link.PathPrefix), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if c.MinApprovals != 2 || c.RequestedBy != "Ann@example.com" {
				t.Errorf("link claims MinApprovals %d, RequestedBy %q; want 2, Ann@example.com", c.MinApprovals, c.RequestedBy)
			}
		}
	}
	if diff := cmp.Diff([]string{"ben@example.com", "cy@example.com"}, got); diff != "" {
		t.Errorf("emails to (-want +got):\n%s", diff)
	}

	// Without a table, the same request fails its execution at once.
	b = newHandler(t, nil)
	if r := b.h.Handle(context.Background(), body); r.outcome != metrics.HandledInvalid || len(b.ses.emails()) != 0 {
		t.Fatalf("Handle without a table = %+v, want invalid and nothing sent", r)
	}
	if fails := b.sfn.failures(); len(fails) != 1 || aws.ToString(fails[0].Error) != ErrInvalidRequest {
		t.Errorf("failures = %+v, want one %s", fails, ErrInvalidRequest)
	}
}
