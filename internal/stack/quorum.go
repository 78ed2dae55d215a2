package stack

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
)

// QuorumApprovers get a 2-of-3 request (QuorumInput); QuorumRequester asks
// for it and so gets no links.
var QuorumApprovers = []string{"alice@example.com", "bob@example.com", "carol@example.com"}

const QuorumRequester = "requester@example.com"

// quorumSubject marks the emails of 2-of-3 requests, for the inbox.
const quorumSubject = "(2 of 3 approvals)"

// createVotesTable creates the votes table; both services are given its name.
func (s *Stack) createVotesTable(ctx context.Context) error {
	name := fmt.Sprintf("approvals-votes-%d", time.Now().UnixNano()%1e9)
	if err := kumo.CreateVotesTable(ctx, dynamodb.NewFromConfig(s.Config), name); err != nil {
		return err
	}
	s.VotesTable = name
	return nil
}

// QuorumDefinition is the example state machine with the approver policy
// taken from the execution input (minApprovals, requestedBy) instead of the
// example's fixed one approval.
func QuorumDefinition(def string) (string, error) {
	return editMessageBody(def, func(body map[string]any) {
		delete(body, "minApprovals")
		body["minApprovals.$"] = "$.minApprovals"
		body["requestedBy.$"] = "$.requestedBy"
	})
}

// QuorumInput is DefaultInput for QuorumApprovers, two of whom must approve;
// the requester is among the addresses and is left out by the worker.
func QuorumInput(n int64) map[string]any {
	in := DefaultInput(n)
	in["approvers"] = append([]string{QuorumRequester}, QuorumApprovers...)
	in["minApprovals"] = 2
	in["requestedBy"] = QuorumRequester
	in["subject"] = fmt.Sprintf("Approve deployment #%d of web-frontend to production %s", n, quorumSubject)
	return in
}

// StartQuorumExecution starts the quorum state machine with input.
func (s *Stack) StartQuorumExecution(ctx context.Context, input any) (string, error) {
	return s.startExecution(ctx, s.QuorumStateMachineARN, input)
}

// quorumColumn is one approver's latest 2-of-3 email, for the inbox to show
// beside the others'.
type quorumColumn struct {
	Approver  string
	MessageID string // "" before any email
	Subject   string
}

// quorumColumns finds, for each of QuorumApprovers, the email of the newest
// 2-of-3 request.
func quorumColumns(emails []kumo.SentEmail) []quorumColumn {
	out := make([]quorumColumn, len(QuorumApprovers))
	for i, a := range QuorumApprovers {
		out[i].Approver = a
	}
	newest := ""
	for _, e := range slices.Backward(emails) { // emails is oldest first
		if strings.Contains(e.Subject, quorumSubject) {
			newest = e.Subject
			break
		}
	}
	if newest == "" {
		return out
	}
	for _, e := range emails {
		if e.Subject != newest {
			continue
		}
		for i, a := range QuorumApprovers {
			if slices.ContainsFunc(e.Destination.ToAddresses, func(to string) bool { return strings.Contains(to, a) }) {
				out[i].MessageID, out[i].Subject = e.MessageID, e.Subject
			}
		}
	}
	return out
}

func (s *Stack) quorumRoutes(mux *http.ServeMux, started *atomic.Int64) {
	mux.HandleFunc("POST /start/quorum", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.StartQuorumExecution(r.Context(), QuorumInput(started.Add(1))); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, "/#quorum", http.StatusSeeOther)
	})
}

func init() {
	template.Must(inboxPage.New("quorum").Parse(quorumTemplate))
}

const quorumTemplate = `{{define "quorum"}}
<h2 id="quorum">2 of 3 approvals</h2>
<p class="muted">A request {{.Requester}} makes that two of three approvers must approve (any rejection decides at once). The requester gets no email; each column is one approver's: approve in two of them and watch the execution below succeed with both in <code>decisions</code>.</p>
<form method="post" action="/start/quorum"><button type="submit">Start a 2-of-3 approval</button></form>
<div class="quorum">{{range .Columns}}<div class="quorum-col"><h3>{{.Approver}}</h3>
{{if .MessageID}}<iframe title="email to {{.Approver}}" src="/email/{{.MessageID}}?newtab"></iframe>{{else}}<p class="muted">No email yet.</p>{{end}}</div>{{end}}</div>
<style>.quorum{display:flex;gap:1rem}.quorum-col{flex:1;min-width:0}.quorum-col h3{font-size:1rem;margin:.5rem 0}.quorum iframe{width:100%;height:34rem;border:1px solid #d0d7de;border-radius:6px}</style>
{{end}}`

// withNewTabLinks makes every link of an email's HTML open a new tab.
func withNewTabLinks(html string) string {
	const base = `<base target="_blank">`
	if i := strings.Index(strings.ToLower(html), "<head>"); i >= 0 {
		return html[:i+len("<head>")] + base + html[i+len("<head>"):]
	}
	return base + html
}
