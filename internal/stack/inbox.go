package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
)

// DefaultInput is the execution input the local stack starts with: one
// approver, one requester who hears the outcome, and some details the email
// shows. n makes each execution's subject distinct.
func DefaultInput(n int64) map[string]any {
	return map[string]any{
		"approvers": []string{"approver@example.com"},
		"requester": []string{"requester@example.com"},
		"subject":   fmt.Sprintf("Approve deployment #%d of web-frontend to production", n),
		"details": map[string]any{
			"service":     "web-frontend",
			"version":     fmt.Sprintf("v1.4.%d", n),
			"environment": "production",
			"requestedBy": "requester@example.com",
			"change":      "Roll out the new checkout page to 100% of traffic",
		},
	}
}

// StartExecution starts the example state machine with input.
func (s *Stack) StartExecution(ctx context.Context, input any) (string, error) {
	return s.startExecution(ctx, s.StateMachineARN, input)
}

// startExecution starts the state machine arn, one of the stack's, with input.
func (s *Stack) startExecution(ctx context.Context, arn string, input any) (string, error) {
	b, err := json.Marshal(input)
	if err != nil {
		return "", err
	}
	out, err := s.SFN.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(arn), Input: aws.String(string(b))})
	if err != nil {
		return "", fmt.Errorf("start execution: %w", err)
	}
	return *out.ExecutionArn, nil
}

// Execution is an execution's state as the inbox shows it.
type Execution struct {
	ARN       string    `json:"arn"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	StartDate time.Time `json:"startDate"`
	Output    string    `json:"output,omitempty"`
	Error     string    `json:"error,omitempty"`
	Cause     string    `json:"cause,omitempty"`
}

// Executions lists the executions of the stack's state machines, newest
// first.
func (s *Stack) Executions(ctx context.Context) ([]Execution, error) {
	var all []sfntypes.ExecutionListItem
	for _, arn := range []string{s.StateMachineARN, s.ChannelStateMachineARN, s.QuorumStateMachineARN} {
		if arn == "" {
			continue
		}
		list, err := s.SFN.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn)})
		if err != nil {
			return nil, fmt.Errorf("list executions: %w", err)
		}
		all = append(all, list.Executions...)
	}
	out := make([]Execution, 0, len(all))
	for _, e := range all {
		d, err := s.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: e.ExecutionArn})
		if err != nil {
			return nil, fmt.Errorf("describe execution: %w", err)
		}
		out = append(out, Execution{
			ARN: aws.ToString(d.ExecutionArn), Name: aws.ToString(d.Name), Status: string(d.Status),
			StartDate: aws.ToTime(d.StartDate), Output: aws.ToString(d.Output),
			Error: aws.ToString(d.Error), Cause: aws.ToString(d.Cause),
		})
	}
	slices.SortFunc(out, func(a, b Execution) int { return b.StartDate.Compare(a.StartDate) })
	return out, nil
}

// Inbox serves the local inbox: every email kumo has accepted, rendered as
// the recipient sees it, every message the stack's channels received,
// drawn as their apps show it (channelRoutes adds their pages), and every
// execution with its status and output.
//
//	GET  /                 the inbox page
//	GET  /email/{id}       one email's HTML part, exactly as sent
//	GET  /email/{id}/text  its text part
//	POST /start            start another execution
//	POST /start/quorum     start a 2-of-3 execution (QuorumInput)
//	GET  /api/emails       the outbox as JSON
//	GET  /api/executions   the executions as JSON
func (s *Stack) Inbox() http.Handler {
	var started atomic.Int64
	started.Store(1) // the dev command starts execution #1
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		emails, err := kumo.SentEmails(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		quorum := quorumColumns(emails)
		slices.Reverse(emails)
		execs, err := s.Executions(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := inboxPage.Execute(w, map[string]any{"Emails": emails, "Executions": execs, "Redeemer": s.RedeemerURL, "Channels": s.channelViews(),
			"Quorum": map[string]any{"Requester": QuorumRequester, "Columns": quorum}}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	email := func(w http.ResponseWriter, r *http.Request) (kumo.SentEmail, bool) {
		emails, err := kumo.SentEmails(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return kumo.SentEmail{}, false
		}
		for _, e := range emails {
			if e.MessageID == r.PathValue("id") {
				return e, true
			}
		}
		http.NotFound(w, r)
		return kumo.SentEmail{}, false
	}
	mux.HandleFunc("GET /email/{id}", func(w http.ResponseWriter, r *http.Request) {
		if e, ok := email(w, r); ok {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			body := e.HTMLBody
			if r.URL.Query().Has("newtab") {
				// Shown in a frame (the 2-of-3 columns): the redeemer's
				// pages refuse frames, so its links open a tab.
				body = withNewTabLinks(body)
			}
			fmt.Fprint(w, body)
		}
	})
	mux.HandleFunc("GET /email/{id}/text", func(w http.ResponseWriter, r *http.Request) {
		if e, ok := email(w, r); ok {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, e.Body)
		}
	})
	mux.HandleFunc("POST /start", func(w http.ResponseWriter, r *http.Request) {
		n := started.Add(1)
		if _, err := s.StartExecution(r.Context(), DefaultInput(n)); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	s.channelRoutes(mux, &started)
	s.quorumRoutes(mux, &started)
	mux.HandleFunc("GET /api/emails", func(w http.ResponseWriter, r *http.Request) {
		emails, err := kumo.SentEmails(r.Context())
		writeJSON(w, emails, err)
	})
	mux.HandleFunc("GET /api/executions", func(w http.ResponseWriter, r *http.Request) {
		execs, err := s.Executions(r.Context())
		writeJSON(w, execs, err)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

var inboxPage = template.Must(template.New("inbox").Funcs(template.FuncMap{
	"pretty": func(s string) string {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return s
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	},
	"when": func(t time.Time) string { return t.Local().Format("15:04:05") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>sfn-approvals local inbox</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:64rem;color:#1f2328;padding:0 1rem}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #d0d7de;padding:.4rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} pre{margin:0;white-space:pre-wrap;font-size:12px}
.SUCCEEDED{color:#1a7f37;font-weight:600}.FAILED,.TIMED_OUT,.ABORTED{color:#cf222e;font-weight:600}.RUNNING{color:#9a6700;font-weight:600}
button{font:inherit;padding:.4rem 1rem;border-radius:6px;border:1px solid #1f883d;background:#1f883d;color:#fff;cursor:pointer}
.muted{color:#656d76}
</style></head><body>
<h1>sfn-approvals: local inbox</h1>
<p class="muted">Emails sent through the emulated SES, newest first; open one and click a button as the approver would. The redeemer is at {{.Redeemer}}. This page refreshes every 5 seconds.</p>
<form method="post" action="/start"><button type="submit">Start another approval</button></form>
<h2>Emails ({{len .Emails}})</h2>
<table id="emails"><tr><th>sent</th><th>to</th><th>subject</th><th></th></tr>
{{range .Emails}}<tr><td>{{when .SentAt}}</td><td>{{range .Destination.ToAddresses}}{{.}} {{end}}</td>
<td><a class="email" href="/email/{{.MessageID}}">{{.Subject}}</a></td><td><a href="/email/{{.MessageID}}/text">text</a></td></tr>
{{else}}<tr><td colspan="4" class="muted">No email yet: the worker sends one within a second or two of an execution starting.</td></tr>{{end}}
</table>
{{template "quorum" .Quorum}}
{{template "channels" .Channels}}
<h2>Executions ({{len .Executions}})</h2>
<table id="executions"><tr><th>started</th><th>name</th><th>status</th><th>output or error</th></tr>
{{range .Executions}}<tr><td>{{when .StartDate}}</td><td>{{.Name}}</td><td class="{{.Status}}">{{.Status}}</td>
<td>{{if .Output}}<pre>{{pretty .Output}}</pre>{{end}}{{if .Error}}<strong>{{.Error}}</strong><pre>{{pretty .Cause}}</pre>{{end}}</td></tr>
{{end}}</table>
</body></html>`))
