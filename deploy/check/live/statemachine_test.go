package live

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// decisionJSON is the decision the redeemer records: action, approver,
// decidedAt and comment.
var decision = map[string]any{
	"action": "approve", "approver": "ben@example.com", "decidedAt": "2026-03-04T05:06:07Z", "comment": "ship it",
}

// The example state machine, run by the emulator, through each way an
// approval can end. The test plays the worker (it reads the request) and
// the redeemer (it completes the task as the redeemer would).
func TestApprovalStateMachine(t *testing.T) {
	cfg := kumotest.Config()
	sq, sf := sqs.NewFromConfig(cfg), sfn.NewFromConfig(cfg)
	var input map[string]any
	if err := json.Unmarshal([]byte(readFile(t, "deploy/statemachines/approval.input.json")), &input); err != nil {
		t.Fatal(err)
	}
	asl := readFile(t, "deploy/statemachines/approval.asl.json")

	tests := []struct {
		name     string
		timeout  bool // shorten TimeoutSeconds and answer nothing
		complete func(ctx context.Context, token string) error
		// What the requester hears; "" for no notification.
		outcome              string
		status               sfntypes.ExecutionStatus
		wantError            string
		wantDecisionInOutput bool
	}{
		{
			name: "approved",
			complete: func(ctx context.Context, token string) error {
				out, _ := json.Marshal(map[string]any{"approved": true, "decision": decision})
				_, err := sf.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(string(out))})
				return err
			},
			outcome: "approved", status: sfntypes.ExecutionStatusSucceeded, wantDecisionInOutput: true,
		},
		{
			name: "rejected",
			complete: func(ctx context.Context, token string) error {
				cause, _ := json.Marshal(map[string]any{"message": "rejected by the approver", "decision": decision})
				_, err := sf.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(token),
					Error: aws.String("Rejected"), Cause: aws.String(string(cause))})
				return err
			},
			outcome: "rejected", status: sfntypes.ExecutionStatusFailed, wantError: "Rejected",
		},
		{
			name: "invalid request", // what the worker does with a request it refuses
			complete: func(ctx context.Context, token string) error {
				_, err := sf.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(token),
					Error: aws.String("Approvals.InvalidRequest"), Cause: aws.String("to: required")})
				return err
			},
			status: sfntypes.ExecutionStatusFailed, wantError: "Approvals.RequestFailed",
		},
		{
			name: "timed out", timeout: true,
			outcome: "timed out", status: sfntypes.ExecutionStatusFailed, wantError: "Approvals.TimedOut",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			queue, _ := kumotest.Queue(t, sq, 3)
			def := strings.ReplaceAll(asl, "${QueueUrl}", queue)
			if tt.timeout {
				def = strings.Replace(def, `"TimeoutSeconds": 259200`, `"TimeoutSeconds": 2`, 1)
			}
			exec := kumotest.StartExecution(t, sf, kumotest.StateMachine(t, sf, def), input)

			msg := kumotest.ReceiveOne(t, sq, queue, 20*time.Second)
			req, err := worker.DecodeRequest([]byte(*msg.Body), worker.DecodeOptions{})
			if err != nil {
				t.Fatalf("request refused by the worker's decoder: %v\n%s", err, *msg.Body)
			}
			if req.Notification() || req.Subject != input["subject"] || len(req.To) != 1 || req.To[0].Address != "ben@example.com" {
				t.Fatalf("request: %v to %v subject %q", req, req.To, req.Subject)
			}
			deleteMessage(t, sq, queue, msg.ReceiptHandle)
			if tt.complete != nil {
				if err := tt.complete(ctx, req.TaskToken); err != nil {
					t.Fatal(err)
				}
			}

			if tt.outcome != "" {
				msg := kumotest.ReceiveOne(t, sq, queue, 20*time.Second)
				n, err := worker.DecodeRequest([]byte(*msg.Body), worker.DecodeOptions{})
				if err != nil {
					t.Fatalf("notification refused by the worker's decoder: %v\n%s", err, *msg.Body)
				}
				if !n.Notification() || n.To[0].Address != "ana@example.com" || n.Data["outcome"] != tt.outcome {
					t.Errorf("notification: %v to %v data %v", n, n.To, n.Data)
				}
				if tt.wantDecisionInOutput {
					if diff := cmp.Diff(decision, n.Data["decision"]); diff != "" {
						t.Errorf("decision in the notification (-want +got):\n%s", diff)
					}
				}
				deleteMessage(t, sq, queue, msg.ReceiptHandle)
			}

			out := kumotest.WaitStatus(t, sf, exec, 30*time.Second)
			if out.Status != tt.status || aws.ToString(out.Error) != tt.wantError {
				t.Fatalf("execution %s (error %q, cause %q), want %s %q",
					out.Status, aws.ToString(out.Error), aws.ToString(out.Cause), tt.status, tt.wantError)
			}
			if tt.wantDecisionInOutput {
				var o struct {
					Approval map[string]any `json:"approval"`
				}
				if err := json.Unmarshal([]byte(aws.ToString(out.Output)), &o); err != nil {
					t.Fatal(err)
				}
				if o.Approval["approved"] != true || o.Approval["decision"] == nil {
					t.Errorf("execution output: %s", aws.ToString(out.Output))
				}
			}
		})
	}
}

func deleteMessage(t *testing.T, c *sqs.Client, queue string, receipt *string) {
	t.Helper()
	if _, err := c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queue), ReceiptHandle: receipt}); err != nil {
		t.Fatal(err)
	}
}
