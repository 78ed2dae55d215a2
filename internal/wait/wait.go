// Package wait holds the pause the services and the development harness
// share: for a duration, cut short when the context ends.
package wait

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
