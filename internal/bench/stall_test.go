package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStallWatch(t *testing.T) {
	var w stallWatch
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	w.answered("SendEmail", at(0)) // not armed: ignored
	w.arm("pipeline", at(time.Second))
	w.answered("ReceiveMessage", at(2*time.Second))
	w.answered("SendEmail", at(30*time.Second)) // first SendEmail: starts its clock, no gap
	w.answered("SendEmail", at(31*time.Second))
	w.answered("ReceiveMessage", at(3900*time.Millisecond)) // 1.9 s: not a stall
	w.answered("ReceiveMessage", at(63*time.Second))        // 59.1 s
	w.answered("GetQueueAttributes", at(90*time.Second))    // not watched
	w.answered("SendEmail", at(93*time.Second))             // 62 s
	got := w.disarm()
	want := []Stall{
		{Phase: "pipeline", Op: "ReceiveMessage", At: 62 * time.Second, Gap: 59100 * time.Millisecond},
		{Phase: "pipeline", Op: "SendEmail", At: 92 * time.Second, Gap: 62 * time.Second},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stalls (-want +got):\n%s", diff)
	}
	w.answered("SendEmail", at(200*time.Second))
	if got := w.disarm(); len(got) != 0 {
		t.Errorf("after disarm: %v", got)
	}

	if s := stallSummary(nil); s != "**none**" {
		t.Errorf("no stalls: %q", s)
	}
	if s := stallSummary(want); !strings.HasPrefix(s, "**2**: pipeline SendEmail 62.0 s (ending 92.0 s in), pipeline ReceiveMessage 59.1 s") {
		t.Errorf("summary: %q", s)
	}
}
