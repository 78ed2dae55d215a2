package worker

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The window is an hour in these tests: a delete that waited for it would
// fail the test by timing out, so each batch below goes because every
// message in flight is waiting for it, or because it is full.

func TestPoolBatchesDeletes(t *testing.T) {
	tests := []struct {
		name        string
		messages    int
		concurrency int
		wantBatches []int // entries per DeleteMessageBatch call
		wantSingles int   // DeleteMessage calls
	}{
		{name: "one message alone: deleted at once, on its own", messages: 1, concurrency: 10, wantSingles: 1},
		{name: "three finishing together: one call", messages: 3, concurrency: 10, wantBatches: []int{3}},
		{name: "ten finishing together: one full call", messages: 10, concurrency: 10, wantBatches: []int{10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, tt.concurrency)
			b.pool.deleteWindow = time.Hour
			for i := range tt.messages {
				b.q.add(strconv.Itoa(i+1), approvalBody(testToken, "a@example.com"), 1)
			}
			b.start(t)
			b.waitFinished(t, tt.messages)
			b.stop(t)

			deleted, _, _, _ := b.q.snapshot()
			slices.Sort(deleted)
			var want []string
			for i := range tt.messages {
				want = append(want, "rh-"+strconv.Itoa(i+1))
			}
			slices.Sort(want)
			if diff := cmp.Diff(want, deleted); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
			var sizes []int
			for _, h := range b.q.batchCalls() {
				sizes = append(sizes, len(h))
			}
			if diff := cmp.Diff(tt.wantBatches, sizes); diff != "" {
				t.Errorf("DeleteMessageBatch entries per call (-want +got):\n%s", diff)
			}
			if got := len(deleted) - sum(sizes); got != tt.wantSingles {
				t.Errorf("%d DeleteMessage calls, want %d", got, tt.wantSingles)
			}
		})
	}
}

func TestPoolBatchDeleteFailures(t *testing.T) {
	throttled := apiError("SQS", "DeleteMessage", "ThrottlingException", smithy.FaultClient)
	tests := []struct {
		name       string
		batchFail  map[string]sqstypes.BatchResultErrorEntry
		batchErr   error
		deleteErrs []error
		// wantDeleted are the messages deleted in the end; the others are
		// left for their visibility timeout, each a DeleteMessage error.
		wantDeleted []string
		// The delete events: the batch call's, in any order (the order
		// the messages finished), then the retries, in order.
		wantBatch, wantRetries []string
	}{
		{
			name:        "a failed entry on SQS's side is deleted again on its own",
			batchFail:   map[string]sqstypes.BatchResultErrorEntry{"rh-2": {Code: aws.String("InternalError"), SenderFault: false}},
			wantDeleted: []string{"rh-1", "rh-2", "rh-3"},
			wantBatch:   []string{"delete rh-1", "delete-failed rh-2", "delete rh-3"},
			wantRetries: []string{"delete rh-2"},
		},
		{
			name:        "an entry SQS refuses is not asked again",
			batchFail:   map[string]sqstypes.BatchResultErrorEntry{"rh-3": {Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true}},
			wantDeleted: []string{"rh-1", "rh-2"},
			wantBatch:   []string{"delete rh-1", "delete rh-2", "delete-failed rh-3"},
		},
		{
			name:        "the retry of a failed entry fails too",
			batchFail:   map[string]sqstypes.BatchResultErrorEntry{"rh-1": {Code: aws.String("InternalError")}},
			deleteErrs:  []error{throttled},
			wantDeleted: []string{"rh-2", "rh-3"},
			wantBatch:   []string{"delete-failed rh-1", "delete rh-2", "delete rh-3"},
			wantRetries: []string{"delete-error rh-1"},
		},
		{
			name:        "the whole call fails",
			batchErr:    apiError("SQS", "DeleteMessageBatch", "ServiceUnavailable", smithy.FaultServer),
			wantDeleted: nil,
			wantBatch:   []string{"delete-batch-error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, 10)
			b.pool.deleteWindow = time.Hour
			b.q.batchFail, b.q.batchErr, b.q.deleteErrs = tt.batchFail, tt.batchErr, tt.deleteErrs
			// One receive, so the batch holds them in this order.
			b.q.push(newMessage("1", approvalBody(testToken, "a@example.com"), 1),
				newMessage("2", approvalBody(testToken, "a@example.com"), 1),
				newMessage("3", approvalBody(testToken, "a@example.com"), 1))
			b.start(t)
			select {
			case <-b.q.batchDone:
			case <-time.After(10 * time.Second):
				t.Fatalf("no DeleteMessageBatch call; events: %v", b.ev.list())
			}
			b.stop(t) // waits for the messages' retries and outcomes

			deleted, _, _, _ := b.q.snapshot()
			slices.Sort(deleted)
			if diff := cmp.Diff(tt.wantDeleted, deleted, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
			var got []string
			for _, e := range b.ev.list() {
				if strings.HasPrefix(e, "delete") {
					got = append(got, e)
				}
			}
			n := min(len(tt.wantBatch), len(got))
			batch, retries := slices.Sorted(slices.Values(got[:n])), got[n:]
			if diff := cmp.Diff(slices.Sorted(slices.Values(tt.wantBatch)), batch); diff != "" {
				t.Errorf("the batch call's events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRetries, retries, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("the retries' events (-want +got):\n%s", diff)
			}
			if got, want := testutil.ToFloat64(b.metrics.SQSErrors.WithLabelValues("DeleteMessage")), float64(3-len(tt.wantDeleted)); got != want {
				t.Errorf("sqs_errors{DeleteMessage} = %v, want %v", got, want)
			}
			if got := b.q.invisible(); len(got) != 3-len(tt.wantDeleted) {
				t.Errorf("left on the queue, invisible: %v; want %d", got, 3-len(tt.wantDeleted))
			}
		})
	}
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}
