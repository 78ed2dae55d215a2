package votes

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
)

// Task is how a decision reaches Step Functions. The redeemer's
// implementation retries; a call must give up before Config.Lease runs out,
// or a second caller may send the same answer (Step Functions then refuses
// it with TaskTimedOut, which is recorded).
type Task interface {
	Succeed(ctx context.Context, token, output string) error
	Fail(ctx context.Context, token, errorName, cause string) error
	Heartbeat(ctx context.Context, token string) error
}

// SFNAPI is the part of the Step Functions client that SFN uses.
type SFNAPI interface {
	SendTaskSuccess(context.Context, *sfn.SendTaskSuccessInput, ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
	SendTaskFailure(context.Context, *sfn.SendTaskFailureInput, ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
	SendTaskHeartbeat(context.Context, *sfn.SendTaskHeartbeatInput, ...func(*sfn.Options)) (*sfn.SendTaskHeartbeatOutput, error)
}

// SFN makes one Step Functions call per method, without retries of its own.
func SFN(c SFNAPI) Task { return sfnTask{c} }

type sfnTask struct{ c SFNAPI }

func (t sfnTask) Succeed(ctx context.Context, token, output string) error {
	_, err := t.c.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(output)})
	return err
}

func (t sfnTask) Fail(ctx context.Context, token, errorName, cause string) error {
	_, err := t.c.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{
		TaskToken: aws.String(token), Error: aws.String(errorName), Cause: aws.String(cause)})
	return err
}

func (t sfnTask) Heartbeat(ctx context.Context, token string) error {
	_, err := t.c.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(token)})
	return err
}

// GoneCode returns Step Functions' error code when err says the task can no
// longer be completed (answered already, timed out, execution ended), else "".
// The redeemer classifies its own calls with it too.
func GoneCode(err error) string {
	switch code := awsx.ErrorCode(err); code {
	case "TaskTimedOut", "TaskDoesNotExist", "InvalidToken":
		return code
	}
	return ""
}
