package stack

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

// The quorum state machine is the example with the policy read from the
// input, and its request is one the worker accepts with a votes table, and
// refuses without.
func TestQuorumDefinition(t *testing.T) {
	diff := variantDiff(t, QuorumDefinition, func(body map[string]any) {
		delete(body, "minApprovals")
		body["minApprovals.$"] = "$.minApprovals"
		body["requestedBy.$"] = "$.requestedBy"
	})
	if diff != "" {
		t.Errorf("quorum definition (-want +got):\n%s", diff)
	}

	// The message the state machine would send for QuorumInput.
	in := QuorumInput(7)
	msg, _ := json.Marshal(map[string]any{"taskToken": "T0KEN", "to": in["approvers"], "subject": in["subject"],
		"data": in["details"], "minApprovals": in["minApprovals"], "requestedBy": in["requestedBy"]})
	r, err := worker.DecodeRequest(msg, worker.DecodeOptions{VotesTable: true})
	if err != nil {
		t.Fatalf("the worker refuses the 2-of-3 request: %v", err)
	}
	var to []string
	for _, a := range r.To {
		to = append(to, a.Address)
	}
	if diff := cmp.Diff(QuorumApprovers, to); diff != "" || r.MinApprovals != 2 {
		t.Errorf("approvers (-want +got):\n%s\nminApprovals %d", diff, r.MinApprovals)
	}
	if _, err := worker.DecodeRequest(msg, worker.DecodeOptions{}); err == nil || !strings.Contains(err.Error(), "APPROVALS_VOTES_TABLE") {
		t.Errorf("without a votes table: %v, want the request refused naming APPROVALS_VOTES_TABLE", err)
	}
}

func TestQuorumColumns(t *testing.T) {
	email := func(id, to, subject string) kumo.SentEmail {
		var e kumo.SentEmail
		e.MessageID, e.Subject = id, subject
		e.Destination.ToAddresses = []string{to}
		return e
	}
	old, newer := "Approve #1 "+quorumSubject, "Approve #2 "+quorumSubject
	emails := []kumo.SentEmail{ // oldest first, as kumo lists them
		email("1", "alice@example.com", old), email("2", "bob@example.com", old),
		email("3", "approver@example.com", "Approve #3"),
		email("4", "carol@example.com", newer), email("5", "alice@example.com", newer),
	}
	want := []quorumColumn{
		{Approver: "alice@example.com", MessageID: "5", Subject: newer},
		{Approver: "bob@example.com"},
		{Approver: "carol@example.com", MessageID: "4", Subject: newer},
	}
	if diff := cmp.Diff(want, quorumColumns(emails), cmp.AllowUnexported(quorumColumn{})); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
}

func TestWithNewTabLinks(t *testing.T) {
	for in, want := range map[string]string{
		`<!doctype html><html><HEAD><title>x</title></HEAD><body><a href="u">a</a></body></html>`: `<!doctype html><html><HEAD><base target="_blank"><title>x</title></HEAD><body><a href="u">a</a></body></html>`,
		`<p><a href="u">a</a></p>`: `<base target="_blank"><p><a href="u">a</a></p>`,
	} {
		if got := withNewTabLinks(in); got != want {
			t.Errorf("withNewTabLinks(%q) = %q, want %q", in, got, want)
		}
	}
}
