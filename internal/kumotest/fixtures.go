package kumotest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
)

var seq atomic.Int64

// Name returns a resource name unique within this emulator run.
func Name(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, seq.Add(1))
}

// Queue creates a queue with a dead-letter queue behind it (maxReceives
// receives) and returns both URLs.
func Queue(t testing.TB, c *sqs.Client, maxReceives int) (url, dlqURL string) {
	t.Helper()
	ctx := context.Background()
	name := Name("approvals")
	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatalf("create DLQ: %v", err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("DLQ attributes: %v", err)
	}
	policy := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, attrs.Attributes["QueueArn"], maxReceives)
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		"RedrivePolicy": policy, "VisibilityTimeout": "30"}})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	return *q.QueueUrl, *dlq.QueueUrl
}

// StateMachine creates a state machine from an ASL definition.
func StateMachine(t testing.TB, c *sfn.Client, definition string) string {
	t.Helper()
	out, err := c.CreateStateMachine(context.Background(), &sfn.CreateStateMachineInput{
		Name:       aws.String(Name("approval")),
		Definition: aws.String(definition),
		RoleArn:    aws.String("arn:aws:iam::000000000000:role/approvals-state-machine"),
	})
	if err != nil {
		t.Fatalf("create state machine: %v", err)
	}
	return *out.StateMachineArn
}

// Task is the one task of a test state machine (TaskDefinition).
type Task struct {
	TimeoutSeconds int
	// HeartbeatSeconds, when not 0, is the task's heartbeat interval: kumo
	// needs one to take SendTaskHeartbeat.
	HeartbeatSeconds int
	// Fields are the execution input's fields the message body carries,
	// each under its own name, beside the task token.
	Fields []string
	// CatchRejected puts a "Rejected" failure's error and cause in the
	// output ($.rejection) and ends in a Pass state, as a real workflow
	// would, so that the execution succeeds with them.
	CatchRejected bool
}

// TaskDefinition is an approval state machine of one task: it sends the
// message body (the task token and t.Fields, copied from the execution
// input, because kumo does not support $$.Execution in Parameters) to the
// queue and waits.
func TaskDefinition(queueURL string, t Task) string {
	body := map[string]string{"taskToken.$": "$$.Task.Token"}
	for _, f := range t.Fields {
		body[f+".$"] = "$." + f
	}
	task := map[string]any{
		"Type":           "Task",
		"Resource":       "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
		"TimeoutSeconds": t.TimeoutSeconds,
		"Parameters":     map[string]any{"QueueUrl": queueURL, "MessageBody": body},
		"End":            true,
	}
	states := map[string]any{"RequestApproval": task}
	if t.HeartbeatSeconds > 0 {
		task["HeartbeatSeconds"] = t.HeartbeatSeconds
	}
	if t.CatchRejected {
		task["Catch"] = []map[string]any{{"ErrorEquals": []string{"Rejected"}, "ResultPath": "$.rejection", "Next": "Rejected"}}
		states["Rejected"] = map[string]any{"Type": "Pass", "End": true}
	}
	b, err := json.Marshal(map[string]any{"StartAt": "RequestApproval", "States": states})
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	return string(b)
}

// WaitForTokenDefinition is the smallest approval state machine: the
// request's "to" and "subject" with the task token.
func WaitForTokenDefinition(queueURL string, timeoutSeconds int) string {
	return TaskDefinition(queueURL, Task{TimeoutSeconds: timeoutSeconds, Fields: []string{"to", "subject"}})
}

// StartExecution starts an execution with input.
func StartExecution(t testing.TB, c *sfn.Client, smARN string, input any) string {
	t.Helper()
	b, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StartExecution(context.Background(), &sfn.StartExecutionInput{
		StateMachineArn: aws.String(smARN), Input: aws.String(string(b))})
	if err != nil {
		t.Fatalf("start execution: %v", err)
	}
	return *out.ExecutionArn
}

// WaitStatus polls until the execution leaves RUNNING or the timeout passes,
// and returns its last description.
func WaitStatus(t testing.TB, c *sfn.Client, execARN string, timeout time.Duration) *sfn.DescribeExecutionOutput {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := c.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(execARN)})
		if err != nil {
			t.Fatalf("describe execution: %v", err)
		}
		if out.Status != sfntypes.ExecutionStatusRunning || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Rejection waits up to timeout for an execution of a CatchRejected state
// machine to end, as it must, through the Catch; it returns the caught
// error's name and decodes its cause (JSON, from the redeemer) into cause.
func Rejection(t testing.TB, c *sfn.Client, execARN string, timeout time.Duration, cause any) (errorName string) {
	t.Helper()
	d := WaitStatus(t, c, execARN, timeout)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s, want SUCCEEDED through the Catch", d.Status)
	}
	var out struct {
		Rejection struct {
			Error string `json:"Error"`
			Cause string `json:"Cause"`
		} `json:"rejection"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatalf("output %s: %v", aws.ToString(d.Output), err)
	}
	if err := json.Unmarshal([]byte(out.Rejection.Cause), cause); err != nil {
		t.Fatalf("cause %q: %v", out.Rejection.Cause, err)
	}
	return out.Rejection.Error
}

// ReceiveOne long-polls the queue until one message arrives.
func ReceiveOne(t testing.TB, c *sqs.Client, queueURL string, timeout time.Duration) sqstypes.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 1, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(out.Messages) == 1 {
			return out.Messages[0]
		}
	}
	t.Fatalf("no message on %s within %s", queueURL, timeout)
	return sqstypes.Message{}
}

// EmailsTo returns the outbox emails addressed to addr whose subject
// contains subject.
func EmailsTo(t testing.TB, addr, subject string) []SentEmail {
	t.Helper()
	all, err := SentEmails(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []SentEmail
	for _, e := range all {
		for _, to := range e.Destination.ToAddresses {
			if strings.Contains(to, addr) && strings.Contains(e.Subject, subject) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// VotesTable creates a votes table as the CloudFormation template does (pk
// and sk strings, on demand, TTL on ttl) and returns its name.
func VotesTable(t testing.TB, c *dynamodb.Client) string {
	t.Helper()
	name := Name("approvals-votes")
	if err := kumo.CreateVotesTable(context.Background(), c, name); err != nil {
		t.Fatal(err)
	}
	return name
}
