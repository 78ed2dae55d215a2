package awsx

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryPolicy bounds Retry.
type RetryPolicy struct {
	Initial     time.Duration // first delay
	Max         time.Duration // longest single delay
	MaxElapsed  time.Duration // give up after this long in all
	MaxAttempts int           // 0: no limit other than MaxElapsed
}

// DefaultRetryPolicy suits an interactive caller: about 20 s in all.
var DefaultRetryPolicy = RetryPolicy{Initial: 100 * time.Millisecond, Max: 3 * time.Second, MaxElapsed: 20 * time.Second}

// Retry runs op until it succeeds, returns an error Retryable calls permanent,
// the policy is exhausted, or ctx ends. onRetry, if set, is told about each
// retry before the wait. The error returned is op's last error.
func Retry(ctx context.Context, p RetryPolicy, op func(context.Context) error, onRetry func(err error, wait time.Duration)) error {
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval = p.Initial
	eb.MaxInterval = p.Max
	eb.MaxElapsedTime = p.MaxElapsed
	var b backoff.BackOff = eb
	if p.MaxAttempts > 0 {
		b = backoff.WithMaxRetries(b, uint64(p.MaxAttempts-1))
	}
	var last error
	err := backoff.RetryNotify(func() error {
		last = op(ctx)
		if last == nil {
			return nil
		}
		if !Retryable(last) {
			return backoff.Permanent(last)
		}
		return last
	}, backoff.WithContext(b, ctx), func(err error, d time.Duration) {
		if onRetry != nil {
			onRetry(err, d)
		}
	})
	if err != nil && last != nil {
		return last
	}
	return err
}
