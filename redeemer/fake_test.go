package redeemer

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

// fakeSFN records the calls made to it. Each call takes the next error from
// errs (nil once errs runs out); block, when set, runs first and may wait.
type fakeSFN struct {
	mu         sync.Mutex
	errs       []error
	block      func(ctx context.Context, call int) error
	successes  []sfn.SendTaskSuccessInput
	failures   []sfn.SendTaskFailureInput
	heartbeats []sfn.SendTaskHeartbeatInput
	calls      int
}

var _ taskCompleter = (*fakeSFN)(nil)

func (f *fakeSFN) next(ctx context.Context) error {
	f.mu.Lock()
	f.calls++
	n := f.calls
	var err error
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
	}
	block := f.block
	f.mu.Unlock()
	if block != nil {
		if berr := block(ctx, n); berr != nil {
			return berr
		}
	}
	return err
}

func (f *fakeSFN) SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, _ ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error) {
	f.mu.Lock()
	f.successes = append(f.successes, *in)
	f.mu.Unlock()
	if err := f.next(ctx); err != nil {
		return nil, err
	}
	return &sfn.SendTaskSuccessOutput{}, nil
}

func (f *fakeSFN) SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, _ ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error) {
	f.mu.Lock()
	f.failures = append(f.failures, *in)
	f.mu.Unlock()
	if err := f.next(ctx); err != nil {
		return nil, err
	}
	return &sfn.SendTaskFailureOutput{}, nil
}

func (f *fakeSFN) SendTaskHeartbeat(ctx context.Context, in *sfn.SendTaskHeartbeatInput, _ ...func(*sfn.Options)) (*sfn.SendTaskHeartbeatOutput, error) {
	f.mu.Lock()
	f.heartbeats = append(f.heartbeats, *in)
	f.mu.Unlock()
	if err := f.next(ctx); err != nil {
		return nil, err
	}
	return &sfn.SendTaskHeartbeatOutput{}, nil
}

func (f *fakeSFN) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}
