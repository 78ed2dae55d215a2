package kumotest

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TaskDefinition writes the state machine a test would write by hand.
func TestTaskDefinition(t *testing.T) {
	tests := []struct {
		name string
		task Task
		want string
	}{
		{"fields only", Task{TimeoutSeconds: 120, Fields: []string{"to", "channels"}}, `{
  "StartAt": "RequestApproval",
  "States": {
    "RequestApproval": {
      "Type": "Task",
      "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
      "TimeoutSeconds": 120,
      "Parameters": {
        "QueueUrl": "https://q.example/1",
        "MessageBody": {"taskToken.$": "$$.Task.Token", "to.$": "$.to", "channels.$": "$.channels"}
      },
      "End": true
    }
  }
}`},
		{"heartbeat and catch", Task{TimeoutSeconds: 60, HeartbeatSeconds: 30, Fields: []string{"subject"}, CatchRejected: true}, `{
  "StartAt": "RequestApproval",
  "States": {
    "RequestApproval": {
      "Type": "Task",
      "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
      "TimeoutSeconds": 60,
      "HeartbeatSeconds": 30,
      "Parameters": {
        "QueueUrl": "https://q.example/1",
        "MessageBody": {"taskToken.$": "$$.Task.Token", "subject.$": "$.subject"}
      },
      "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.rejection", "Next": "Rejected"}],
      "End": true
    },
    "Rejected": {"Type": "Pass", "End": true}
  }
}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got, want any
			if err := json.Unmarshal([]byte(TaskDefinition("https://q.example/1", tt.task)), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("TaskDefinition (-want +got):\n%s", d)
			}
		})
	}
}
