package kumotest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestMain(m *testing.M) { Main(m) }

// The harness itself: a waitForTaskToken state machine puts its token on the
// queue and completes when the token is sent back.
func TestWaitForTaskTokenRoundTrip(t *testing.T) {
	cfg := Config()
	sq, sf := sqs.NewFromConfig(cfg), sfn.NewFromConfig(cfg)
	q, _ := Queue(t, sq, 3)
	sm := StateMachine(t, sf, WaitForTokenDefinition(q, 60))
	exec := StartExecution(t, sf, sm, map[string]any{"to": []string{"a@example.com"}, "subject": "s"})

	msg := ReceiveOne(t, sq, q, 10*time.Second)
	var body struct {
		TaskToken string   `json:"taskToken"`
		To        []string `json:"to"`
	}
	if err := json.Unmarshal([]byte(*msg.Body), &body); err != nil || body.TaskToken == "" {
		t.Fatalf("body %q: %v", *msg.Body, err)
	}
	if d := WaitStatus(t, sf, exec, 0); d.Status != sfntypes.ExecutionStatusRunning {
		t.Fatalf("status before the token is returned = %s", d.Status)
	}
	if _, err := sf.SendTaskSuccess(context.Background(), &sfn.SendTaskSuccessInput{
		TaskToken: aws.String(body.TaskToken), Output: aws.String(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	d := WaitStatus(t, sf, exec, 10*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded || aws.ToString(d.Output) != `{"ok":true}` {
		t.Fatalf("status %s output %s", d.Status, aws.ToString(d.Output))
	}
}
