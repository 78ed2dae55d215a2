package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sfn-approvals/sfn-approvals/internal/faultproxy"
	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
)

// Ledger is the account of a soak: every execution and every message, as
// the emulator holds them at the end.
type Ledger struct {
	Started  int // executions started
	Invalid  int // of which deliberately invalid
	Approved int // ended SUCCEEDED after the bot approved
	Rejected int // ended FAILED (Rejected) after the bot rejected
	// FailedFast ended FAILED (Approvals.RequestFailed) without waiting:
	// the worker refused their request.
	FailedFast int
	// StillRunning are executions not ended; RunningWithReason of them have
	// their request in the dead-letter queue, where an operator sees it.
	StillRunning, RunningWithReason int

	EmailsMin, EmailsMax int // approval emails per approver of a valid request
	EmailedTwice         int // approvers of valid requests emailed more than once
	Notifications        int // outcome emails to requesters
	DLQ                  int // messages in the dead-letter queue
	QueueLeft            int // messages still in the request queue

	// QuorumStarted are the valid 2-of-3 requests; QuorumDecided those
	// that ended SUCCEEDED with exactly two distinct approvers in
	// decisions.
	QuorumStarted, QuorumDecided int
	// Completions are the votes table's completion records, one per
	// decided request; CompletionsRefused of them got Step Functions'
	// refusal when a later call sent the answer again after a kill (the
	// first had been taken).
	Completions, CompletionsRefused int

	Kills                int // SIGKILLs of the worker
	RedeemerKills        int // SIGKILLs of the redeemer
	Gets, Posts          int // the bot's requests
	Limited, Unavailable int // 429s waited out; 503s retried
	DuplicateGone        int // 410s on second copies' links
	LostAnswers          int // POSTs retried whose decision had been taken (410 on retry)
	TransportErrors      int // bot requests that got no answer
	// StallWindow and OperatorWindow are how long SES stalled SendEmail and
	// then answered it with SendingPausedException.
	StallWindow, OperatorWindow time.Duration
	// OperatorFailed are valid executions failed fast for an operator's
	// error (a SendingPausedException in their cause): each is a broken
	// promise.
	OperatorFailed int
	Faults         map[string]faultproxy.Stats
	Duration       time.Duration
	Cores          int
	Date           time.Time
	Command        string // how the run was started, for the report

	failuresMu   sync.Mutex
	Failures     []string // broken promises; empty for a pass
	moreFailures int
}

func newLedger() *Ledger {
	return &Ledger{Faults: map[string]faultproxy.Stats{}, Date: time.Now().UTC()}
}

// problemf records a broken promise; the first 50 are kept word for word.
func (l *Ledger) problemf(format string, args ...any) {
	l.failuresMu.Lock()
	defer l.failuresMu.Unlock()
	if len(l.Failures) >= 50 {
		l.moreFailures++
		return
	}
	l.Failures = append(l.Failures, fmt.Sprintf(format, args...))
}

// OK reports whether every promise held.
func (l *Ledger) OK() bool {
	l.failuresMu.Lock()
	defer l.failuresMu.Unlock()
	return len(l.Failures) == 0
}

// Err is nil for a pass, or lists the broken promises.
func (l *Ledger) Err() error {
	l.failuresMu.Lock()
	defer l.failuresMu.Unlock()
	if len(l.Failures) == 0 {
		return nil
	}
	msg := strings.Join(l.Failures, "\n  ")
	if l.moreFailures > 0 {
		msg += fmt.Sprintf("\n  ... and %d more", l.moreFailures)
	}
	return fmt.Errorf("soak failed, %d broken promises:\n  %s", len(l.Failures)+l.moreFailures, msg)
}

// running counts the executions not yet ended.
func (r *run) running(ctx context.Context) (int, error) {
	n := 0
	for _, e := range r.snapshot() {
		d, err := r.describe(ctx, e.arn)
		if err != nil {
			return 0, err
		}
		if d.Status == sfntypes.ExecutionStatusRunning {
			n++
		}
	}
	return n, nil
}

func (r *run) describe(ctx context.Context, arn string) (*sfn.DescribeExecutionOutput, error) {
	d, err := r.st.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("describe execution: %w", err)
	}
	return d, nil
}

// queued is how many messages a queue holds, visible or not.
func (r *run) queued(ctx context.Context, queueURL string) (int, error) {
	out, err := r.st.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		}})
	if err != nil {
		return 0, fmt.Errorf("queue attributes: %w", err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, _ := strconv.Atoi(v)
		n += k
	}
	return n, nil
}

// deadLetters reads every message of the DLQ and returns the subjects of
// the requests (with a task token) and notifications (without) in it.
func (r *run) deadLetters(ctx context.Context) (requests, notifications map[string]int, total int, err error) {
	requests, notifications = map[string]int{}, map[string]int{}
	for {
		out, err := r.st.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.st.DLQURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 600})
		if err != nil {
			return nil, nil, 0, fmt.Errorf("read the DLQ: %w", err)
		}
		if len(out.Messages) == 0 {
			return requests, notifications, total, nil
		}
		for _, m := range out.Messages {
			total++
			var body struct {
				TaskToken string `json:"taskToken"`
				Subject   string `json:"subject"`
			}
			_ = json.Unmarshal([]byte(aws.ToString(m.Body)), &body)
			if body.TaskToken != "" {
				requests[body.Subject]++
			} else {
				notifications[body.Subject]++
			}
		}
	}
}

// account fills the ledger from the emulator's own records and checks
// every promise against them.
func (r *run) account(ctx context.Context, l *Ledger, b *bot) error {
	all, err := kumo.SentEmails(ctx)
	if err != nil {
		return err
	}
	approvals, notifs := map[string]int{}, map[string]int{}
	quorumEmails := map[string]map[string]int{} // subject, approver
	for _, m := range all {
		if len(m.Destination.ToAddresses) == 0 {
			continue
		}
		switch to := m.Destination.ToAddresses[0]; {
		case strings.Contains(to, approverAddr):
			approvals[m.Subject]++
		case strings.Contains(to, requesterAddr):
			notifs[m.Subject]++
		default:
			for _, a := range stack.QuorumApprovers {
				if strings.Contains(to, a) {
					if quorumEmails[m.Subject] == nil {
						quorumEmails[m.Subject] = map[string]int{}
					}
					quorumEmails[m.Subject][a]++
				}
			}
		}
	}
	dlqRequests, dlqNotifs, dlq, err := r.deadLetters(ctx)
	if err != nil {
		return err
	}
	l.DLQ = dlq
	if l.QueueLeft, err = r.queued(ctx, r.st.QueueURL); err != nil {
		return err
	}
	if l.QueueLeft > 0 {
		l.problemf("%d messages still in the request queue at the end", l.QueueLeft)
	}

	r.mu.Lock()
	l.Kills, l.RedeemerKills = r.kills, r.redeemerKills
	r.mu.Unlock()
	s := b.stats()
	l.Gets, l.Posts, l.Limited, l.Unavailable, l.DuplicateGone, l.TransportErrors = s.gets, s.posts, s.limited, s.unavailable, s.dupGone, s.transportErr

	l.EmailsMin = -1
	for _, e := range r.snapshot() {
		l.Started++
		d, err := r.describe(ctx, e.arn)
		if err != nil {
			return err
		}
		status, errName := d.Status, aws.ToString(d.Error)
		n, notes := approvals[e.subject], notifs[e.subject]
		l.Notifications += notes
		r.mu.Lock()
		how := e.decided
		r.mu.Unlock()
		if how == "recorded, answer lost" {
			l.LostAnswers++
		}

		if e.invalid {
			l.Invalid++
			switch {
			case status == sfntypes.ExecutionStatusFailed && errName == "Approvals.RequestFailed":
				l.FailedFast++
			case status == sfntypes.ExecutionStatusRunning:
				l.StillRunning++
				if dlqRequests[e.subject] > 0 {
					l.RunningWithReason++
				} else {
					l.problemf("execution %d (invalid request) still waiting, its request not in the DLQ", e.n)
				}
			default:
				l.problemf("execution %d (invalid request) ended %s %s, want FAILED Approvals.RequestFailed", e.n, status, errName)
			}
			if n > 0 {
				l.problemf("execution %d (invalid request) got %d emails", e.n, n)
			}
			continue
		}

		// Approval emails per approver: one approver, or each of a 2-of-3
		// request's three (n is then the fewest any of them got).
		perApprover := []int{n}
		if e.quorum {
			l.QuorumStarted++
			perApprover = perApprover[:0]
			for _, a := range stack.QuorumApprovers {
				perApprover = append(perApprover, quorumEmails[e.subject][a])
			}
			n = slices.Min(perApprover)
		}
		for _, k := range perApprover {
			if l.EmailsMin < 0 || k < l.EmailsMin {
				l.EmailsMin = k
			}
			l.EmailsMax = max(l.EmailsMax, k)
			if k > 1 {
				l.EmailedTwice++ // each second copy's link is tried
			}
		}
		if n == 0 {
			l.problemf("execution %d: no approval email (request in DLQ: %t)", e.n, dlqRequests[e.subject] > 0)
		}
		decided := false
		switch {
		case status == sfntypes.ExecutionStatusSucceeded && e.action == "approve":
			l.Approved++
			decided = true
			if e.quorum {
				if got := quorumDecisions(aws.ToString(d.Output)); len(got) == 2 {
					l.QuorumDecided++
				} else {
					l.problemf("execution %d (2 of 3) succeeded with decisions %v, want 2 distinct approvers", e.n, got)
				}
			}
		case status == sfntypes.ExecutionStatusFailed && errName == "Rejected" && e.action == "reject":
			l.Rejected++
			decided = true
		case status == sfntypes.ExecutionStatusRunning:
			l.StillRunning++
			if dlqRequests[e.subject] > 0 {
				l.RunningWithReason++
			} else {
				l.problemf("execution %d still waiting without a reason (bot: %q, emails %d)", e.n, how, n)
			}
		case status == sfntypes.ExecutionStatusFailed && errName == "Approvals.RequestFailed":
			l.FailedFast++
			cause, err := r.taskFailure(ctx, e.arn)
			if err != nil {
				return err
			}
			if strings.Contains(cause, faultproxy.SendingPaused.Code) {
				l.OperatorFailed++
				l.problemf("execution %d failed fast for an operator's error: %s", e.n, cause)
			} else {
				l.problemf("execution %d: a valid request failed fast: %s", e.n, cause)
			}
		default:
			l.problemf("execution %d ended %s %s after the bot chose %s", e.n, status, errName, e.action)
		}
		if decided && notes == 0 && dlqNotifs[e.subject] == 0 {
			l.problemf("execution %d: its outcome notification vanished (no email, not in the DLQ)", e.n)
		}
	}
	if l.EmailsMin < 0 {
		l.EmailsMin = 0
	}
	if l.Started != r.o.Executions {
		l.problemf("%d executions started, want %d", l.Started, r.o.Executions)
	}
	if l.Kills != r.o.Kills {
		l.problemf("worker killed %d times, want %d", l.Kills, r.o.Kills)
	}
	if l.RedeemerKills != r.o.RedeemerKills {
		l.problemf("redeemer killed %d times, want %d", l.RedeemerKills, r.o.RedeemerKills)
	}
	return r.accountVotes(ctx, l)
}

// quorumDecisions reads the distinct approvers of an execution output's
// approval.decisions (the example state machine keeps the task's output at
// $.approval).
func quorumDecisions(output string) []string {
	var out struct {
		Approval struct {
			Decisions []struct {
				Approver string `json:"approver"`
			} `json:"decisions"`
		} `json:"approval"`
	}
	_ = json.Unmarshal([]byte(output), &out)
	var got []string
	for _, d := range out.Approval.Decisions {
		if !slices.Contains(got, d.Approver) {
			got = append(got, d.Approver)
		}
	}
	return got
}

// accountVotes checks the votes table: one completion record per decided
// request, every one finished (none left in progress by a kill).
func (r *run) accountVotes(ctx context.Context, l *Ledger) error {
	p := dynamodb.NewScanPaginator(dynamodb.NewFromConfig(r.st.Config), &dynamodb.ScanInput{
		TableName:                 aws.String(r.st.VotesTable),
		FilterExpression:          aws.String("sk = :c"),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":c": &dbtypes.AttributeValueMemberS{Value: "completion"}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("scan the votes table: %w", err)
		}
		for _, it := range page.Items {
			var c struct {
				Status string `dynamodbav:"status"`
				Result string `dynamodbav:"result"`
			}
			if err := attributevalue.UnmarshalMap(it, &c); err != nil {
				return fmt.Errorf("read a completion record: %w", err)
			}
			l.Completions++
			if c.Status != "COMPLETED" {
				l.problemf("a completion record left %s: a decision never finished", c.Status)
			}
			if c.Result != "" {
				l.CompletionsRefused++
			}
		}
	}
	if decided := l.Approved + l.Rejected; l.Completions != decided {
		l.problemf("%d completion records in the votes table, %d decided executions: want one each", l.Completions, decided)
	}
	return nil
}

// taskFailure returns the error and cause the worker failed an execution's
// task with, from its history.
func (r *run) taskFailure(ctx context.Context, arn string) (string, error) {
	p := sfn.NewGetExecutionHistoryPaginator(r.st.SFN, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("execution history: %w", err)
		}
		for _, ev := range page.Events {
			if d := ev.TaskFailedEventDetails; d != nil {
				return aws.ToString(d.Error) + ": " + aws.ToString(d.Cause), nil
			}
		}
	}
	return "(no TaskFailed event)", nil
}

// checkWindows checks what only the fault proxy saw: the windows did stall
// and refuse sends (else the phase tested nothing), and no stalled call was
// still held open at the end (a hung worker slot).
func (l *Ledger) checkWindows() {
	ses := l.Faults[string(faultproxy.SESv2)]
	if l.StallWindow > 0 && ses.Stalls == 0 {
		l.problemf("the SES stall window stalled no SendEmail")
	}
	if ses.StallsOpen > 0 {
		l.problemf("%d stalled SES calls still held open at the end: the worker never gave up on them", ses.StallsOpen)
	}
	if l.OperatorWindow > 0 && ses.APIErrors == 0 {
		l.problemf("the operator-error window answered no SendEmail with SendingPausedException")
	}
}

// Markdown is the ledger as RELIABILITY.md shows it.
func (l *Ledger) Markdown() string {
	var b bytes.Buffer
	verdict := "**pass**: every promise held"
	if !l.OK() {
		verdict = fmt.Sprintf("**FAIL**: %d broken promises", len(l.Failures)+l.moreFailures)
	}
	fmt.Fprintf(&b, "Run %s on %d cores, %s: `%s`; %s.\n\n", l.Date.Format("2006-01-02 15:04 MST"), l.Cores,
		l.Duration, l.Command, verdict)
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	b.WriteString("| ledger | count |\n|---|---|\n")
	row("executions started", fmt.Sprint(l.Started))
	row("decided by the approver bot (approved + rejected)", fmt.Sprintf("%d (%d + %d)", l.Approved+l.Rejected, l.Approved, l.Rejected))
	row("2-of-3 requests (three approvers at once): ended once with exactly 2 decisions", fmt.Sprintf("%d of %d", l.QuorumDecided, l.QuorumStarted))
	row("votes table completion records (Step Functions refused a resend after a kill)", fmt.Sprintf("%d (%d)", l.Completions, l.CompletionsRefused))
	row("failed fast (deliberately invalid requests)", fmt.Sprintf("%d (of %d invalid)", l.FailedFast, l.Invalid))
	row("still running (with a reason: request in the DLQ)", fmt.Sprintf("%d (%d)", l.StillRunning, l.RunningWithReason))
	row("approval emails per approver of a valid request, min / max", fmt.Sprintf("%d / %d", l.EmailsMin, l.EmailsMax))
	row("approvers of valid requests emailed more than once (duplicate deliveries)", fmt.Sprint(l.EmailedTwice))
	row("second copies' links answered 410 or the same decision (never decided twice)", fmt.Sprint(l.DuplicateGone))
	row("outcome notifications emailed to requesters", fmt.Sprint(l.Notifications))
	row("messages in the DLQ", fmt.Sprint(l.DLQ))
	row("messages left in the request queue", fmt.Sprint(l.QueueLeft))
	row("worker SIGKILLs (and restarts)", fmt.Sprint(l.Kills))
	row("redeemer SIGKILLs (and restarts)", fmt.Sprint(l.RedeemerKills))
	row("bot GETs / POSTs", fmt.Sprintf("%d / %d", l.Gets, l.Posts))
	ses := l.Faults[string(faultproxy.SESv2)]
	row("SES stall window: SendEmail attempts stalled (still held at the end)", fmt.Sprintf("%s: %d (%d)", l.StallWindow, ses.Stalls, ses.StallsOpen))
	row("SES operator-error window: SendingPausedException answers", fmt.Sprintf("%s: %d", l.OperatorWindow, ses.APIErrors))
	row("valid executions failed by an operator's error", fmt.Sprint(l.OperatorFailed))
	row("429s waited out / 503s retried / answers lost then 410", fmt.Sprintf("%d / %d / %d", l.Limited, l.Unavailable, l.LostAnswers))
	b.WriteString("\n| injected faults | requests | throttled | 5xx | resets |\n|---|---|---|---|---|\n")
	for _, svc := range faultproxy.Services {
		s := l.Faults[string(svc)]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", svc, s.Requests, s.Throttled, s.ServerErrors, s.Resets)
	}
	if !l.OK() {
		b.WriteString("\nBroken promises:\n\n")
		l.failuresMu.Lock()
		for _, f := range l.Failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
		l.failuresMu.Unlock()
	}
	return b.String()
}

// Markers delimit the ledger in RELIABILITY.md.
const (
	beginMarker = "<!-- soak-ledger:begin (written by approvals soak) -->"
	endMarker   = "<!-- soak-ledger:end -->"
)

// WriteFile puts the ledger between the markers in path.
func (l *Ledger) WriteFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return errors.New(path + ": soak ledger markers not found")
	}
	s = s[:i+len(beginMarker)] + "\n" + l.Markdown() + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
