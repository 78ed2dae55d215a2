package worker

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// deleteWindow is the longest a finished message's delete waits for others
// to share its DeleteMessageBatch call. The message holds its slot while it
// waits, so the wait is part of every message's time when the slots are
// the limit: 2 ms rather than 5 took a C = 64 pipeline with 50 ms SendEmail
// from 0.87 to 0.89 of a bare SendEmail loop (BenchmarkPipelineOverBare in
// internal/bench/micro), for 2 more allocations per email in
// BenchmarkWorkerRun and, with no injected latency, 0.13 batch deletes per
// email instead of 0.11 (approvals bench, cost phase).
const deleteWindow = 2 * time.Millisecond

// deleter turns the deletes of messages that finish together into
// DeleteMessageBatch calls of up to 10: one SQS call instead of up to ten.
// A delete waits for company only while other messages are still being
// handled, and at most deleteWindow. An entry that fails on SQS's side is
// deleted again on its own; a message whose delete fails for good (the
// call fails, or SQS refuses the entry) comes back after its visibility
// timeout and is sent again: at least once, as before.
type deleter struct {
	queue    queue
	queueURL string
	// active counts the messages being handled, waiting deletes included:
	// when every one of them waits here, no other can join, so the batch
	// goes at once.
	active *atomic.Int64
	window time.Duration

	reqs chan deleteReq
	done chan struct{}
	wg   sync.WaitGroup // batch calls in progress
}

type deleteReq struct {
	handle *string
	reply  chan error // buffered: the batch never waits for its reader
}

func newDeleter(q queue, queueURL string, active *atomic.Int64, window time.Duration) *deleter {
	d := &deleter{queue: q, queueURL: queueURL, active: active, window: window, reqs: make(chan deleteReq), done: make(chan struct{})}
	go d.run()
	return d
}

// delete deletes the message with receipt handle h and returns the error
// that left it on the queue, if any. It is bounded by finishTimeout, not
// by the caller's context: the outcome is recorded even at shutdown.
func (d *deleter) delete(h *string) error {
	r := deleteReq{handle: h, reply: make(chan error, 1)}
	d.reqs <- r
	return <-r.reply
}

// close sends what is waiting and returns once every batch call is done;
// no delete may come after it.
func (d *deleter) close() {
	close(d.reqs)
	<-d.done
	d.wg.Wait()
}

func (d *deleter) run() {
	defer close(d.done)
	var batch []deleteReq
	timer := time.NewTimer(d.window)
	timer.Stop()
	send := func() {
		timer.Stop()
		b := batch
		batch = nil
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.send(b)
		}()
	}
	for {
		select {
		case r, ok := <-d.reqs:
			if !ok {
				if len(batch) > 0 {
					send()
				}
				return
			}
			batch = append(batch, r)
			if len(batch) == 1 {
				timer.Reset(d.window)
			}
			if len(batch) == maxBatch || int64(len(batch)) >= d.active.Load() {
				send()
			}
		case <-timer.C:
			if len(batch) > 0 {
				send()
			}
		}
	}
}

// send makes one DeleteMessageBatch call for b (one DeleteMessage for a
// single message), and retries each failed entry on its own.
func (d *deleter) send(b []deleteReq) {
	ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
	defer cancel()
	if len(b) == 1 {
		b[0].reply <- d.deleteOne(ctx, b[0].handle)
		return
	}
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(b))
	for i, r := range b {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: r.handle}
	}
	out, err := d.queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(d.queueURL), Entries: entries})
	if err != nil {
		// The SDK has retried the call already; each message comes back
		// after its visibility timeout.
		for _, r := range b {
			r.reply <- fmt.Errorf("delete message batch: %w", err)
		}
		return
	}
	deleted := make(map[string]bool, len(out.Successful))
	for _, s := range out.Successful {
		deleted[aws.ToString(s.Id)] = true
	}
	failed := make(map[string]sqstypes.BatchResultErrorEntry, len(out.Failed))
	for _, f := range out.Failed {
		failed[aws.ToString(f.Id)] = f
	}
	for i, r := range b {
		id := strconv.Itoa(i)
		f, refused := failed[id]
		switch {
		case deleted[id]:
			r.reply <- nil
		case refused && f.SenderFault:
			// SQS refused this entry (a stale receipt handle, say): asking
			// again would be refused again.
			r.reply <- fmt.Errorf("delete message batch: entry refused: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
		default:
			// A failure on SQS's side, or an entry the answer omits.
			r.reply <- d.deleteOne(ctx, r.handle)
		}
	}
}

func (d *deleter) deleteOne(ctx context.Context, h *string) error {
	_, err := d.queue.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(d.queueURL), ReceiptHandle: h})
	return err
}
