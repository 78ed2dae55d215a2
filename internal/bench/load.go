package bench

import (
	"context"
	"slices"
	"sync"
	"time"
)

// openLoop calls fn n times at a fixed rate, each call in its own goroutine
// at its scheduled time whether or not earlier calls have returned, and
// returns each call's latency measured from its scheduled time. A server
// that stalls therefore shows its queueing in the figures instead of slowing
// the generator down (no coordinated omission), which a closed-loop tool
// such as Debian's wrk cannot do at a fixed rate.
func openLoop(ctx context.Context, rate float64, n int, fn func(ctx context.Context, i int) error) (lat []time.Duration, errs int) {
	lat = make([]time.Duration, n)
	failed := make([]bool, n)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	next := 0
	for next < n {
		// Fire everything that is due; the ticker only bounds how late a
		// call can start, the latency counts from its own due time.
		due := min(int(time.Since(start)/interval)+1, n)
		for ; next < due; next++ {
			i, at := next, start.Add(time.Duration(next)*interval)
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := fn(ctx, i)
				lat[i] = time.Since(at)
				failed[i] = err != nil
			}()
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return lat[:next], count(failed[:next])
		case <-tick.C:
		}
	}
	wg.Wait()
	return lat, count(failed)
}

func count(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// percentile returns the q-th quantile (0..1) of ds by nearest rank.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}
