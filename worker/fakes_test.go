package worker

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

var (
	_ queue       = (*fakeQueue)(nil)
	_ emailSender = (*fakeSES)(nil)
	_ taskFailer  = (*fakeSFN)(nil)
)

// events is one ordered log shared by the fakes, so tests can check that a
// delete came after a send.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

type visChange struct {
	handle  string
	seconds int32
}

// fakeQueue hands out its messages and records what the pool does with
// them. A message is "out" (invisible) from receipt until it is deleted or
// given a final visibility (anything but the extension value).
//
// Its long polls behave as SQS and the SDK do: a receive with nothing
// pending stays open, and the messages added next are picked for it. A
// caller whose context ends gets the SDK's error, never an answer; SQS does
// not know the caller left, so the poll stays open, and what it picks stays
// invisible (stranded). The polls' wait runs out only when the test says
// so (endPolls), so no test depends on the clock.
type fakeQueue struct {
	ev        *events
	limit     int   // concurrency limit to check receives against
	extension int32 // visibility seconds that mark an extension, not an outcome

	mu          sync.Mutex
	pending     []sqstypes.Message
	out         map[string]bool
	maxOut      int
	overAsked   []string // receives that asked for more than the free slots
	deleted     []string
	vis         []visChange
	receives    int
	inputs      []*sqs.ReceiveMessageInput
	deadlines   []time.Duration // time left on each receive's context; 0: none
	finished    chan string     // receipt handle, on delete or final visibility
	extended    chan string     // receipt handle, on each extension
	receiveErrs []error
	// batchFail makes DeleteMessageBatch fail the entry with that receipt
	// handle, as SQS reports a failed entry; deleteErrs answer the next
	// DeleteMessage calls. batches records each DeleteMessageBatch call's
	// handles.
	batchFail  map[string]sqstypes.BatchResultErrorEntry
	batchErr   error // fails the next DeleteMessageBatch call whole
	deleteErrs []error
	batches    [][]string
	batchDone  chan struct{} // one per DeleteMessageBatch call, once answered
	polls      []*longPoll   // open long polls, oldest first
	polling    chan struct{} // one per long poll that starts waiting
	ended      chan struct{} // closed by endPolls
}

// longPoll is a receive SQS holds open until messages arrive.
type longPoll struct {
	max int
	got chan []sqstypes.Message // the messages picked for it; buffered
}

func newFakeQueue(ev *events, limit int, extension int32) *fakeQueue {
	return &fakeQueue{ev: ev, limit: limit, extension: extension, out: map[string]bool{},
		finished: make(chan string, 1000), extended: make(chan string, 1000),
		polling: make(chan struct{}, 1000), ended: make(chan struct{}), batchDone: make(chan struct{}, 1000)}
}

// canceled is what the SDK returns for a call whose context ended.
func canceled(err error) error {
	return &smithy.OperationError{ServiceID: "SQS", OperationName: "ReceiveMessage", Err: &smithy.CanceledError{Err: err}}
}

// add queues a message with the given body; receipt handle "rh-ID".
func (q *fakeQueue) add(id, body string, receiveCount int) {
	q.push(newMessage(id, body, receiveCount))
}

// newMessage is a message as SQS returns it, sent now.
func newMessage(id, body string, receiveCount int) sqstypes.Message {
	return sqstypes.Message{
		MessageId:     aws.String(id),
		ReceiptHandle: aws.String("rh-" + id),
		Body:          aws.String(body),
		Attributes: map[string]string{
			"ApproximateReceiveCount": strconv.Itoa(receiveCount),
			"SentTimestamp":           strconv.FormatInt(time.Now().UnixMilli(), 10),
		},
	}
}

// push queues messages that arrive together.
func (q *fakeQueue) push(msgs ...sqstypes.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, msgs...)
	// Open long polls take what arrives, oldest first, as SQS gives a
	// waiting receive the next messages.
	for len(q.pending) > 0 && len(q.polls) > 0 {
		p := q.polls[0]
		q.polls = q.polls[1:]
		n := min(p.max, len(q.pending))
		msgs := q.pending[:n:n]
		q.pending = q.pending[n:]
		for _, m := range msgs {
			q.take(m)
		}
		p.got <- msgs
	}
}

// endPolls is the wait running out: open long polls answer empty, later
// receives with nothing pending answer empty at once, and nothing is picked
// for a poll whose caller left.
func (q *fakeQueue) endPolls() {
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-q.ended:
	default:
		close(q.ended)
	}
	q.polls = nil
}

// invisible lists the receipt handles of messages received but neither
// deleted nor made visible again.
func (q *fakeQueue) invisible() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var hs []string
	for h := range q.out {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	return hs
}

func (q *fakeQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	q.receives++
	q.inputs = append(q.inputs, in)
	if d, ok := ctx.Deadline(); ok {
		q.deadlines = append(q.deadlines, time.Until(d))
	} else {
		q.deadlines = append(q.deadlines, 0)
	}
	if int(in.MaxNumberOfMessages) > q.limit-len(q.out) || in.MaxNumberOfMessages > 10 || in.MaxNumberOfMessages < 1 {
		q.overAsked = append(q.overAsked, fmt.Sprintf("asked %d with %d of %d out", in.MaxNumberOfMessages, len(q.out), q.limit))
	}
	if err := ctx.Err(); err != nil {
		q.mu.Unlock()
		return nil, canceled(err) // the SDK sends nothing
	}
	if len(q.receiveErrs) > 0 {
		err := q.receiveErrs[0]
		q.receiveErrs = q.receiveErrs[1:]
		q.mu.Unlock()
		return nil, err
	}
	if len(q.pending) > 0 {
		n := min(int(in.MaxNumberOfMessages), len(q.pending))
		msgs := q.pending[:n:n]
		q.pending = q.pending[n:]
		for _, m := range msgs {
			q.take(m)
		}
		q.mu.Unlock()
		return &sqs.ReceiveMessageOutput{Messages: msgs}, nil
	}
	select {
	case <-q.ended:
		q.mu.Unlock()
		return &sqs.ReceiveMessageOutput{}, nil
	default:
	}
	p := &longPoll{max: int(in.MaxNumberOfMessages), got: make(chan []sqstypes.Message, 1)}
	q.polls = append(q.polls, p)
	q.mu.Unlock()
	q.polling <- struct{}{}

	select {
	case msgs := <-p.got:
		if err := ctx.Err(); err != nil {
			return nil, canceled(err) // the answer is lost, its messages stranded
		}
		return &sqs.ReceiveMessageOutput{Messages: msgs}, nil
	case <-ctx.Done():
		// The poll stays open: SQS does not know the caller left.
		return nil, canceled(ctx.Err())
	case <-q.ended:
		q.mu.Lock() // an add that picked for this poll has delivered
		defer q.mu.Unlock()
		select {
		case msgs := <-p.got:
			return &sqs.ReceiveMessageOutput{Messages: msgs}, nil
		default:
			return &sqs.ReceiveMessageOutput{}, nil
		}
	}
}

func (q *fakeQueue) take(m sqstypes.Message) {
	q.out[*m.ReceiptHandle] = true
	q.maxOut = max(q.maxOut, len(q.out))
	q.ev.add("receive " + *m.ReceiptHandle)
}

func (q *fakeQueue) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.deleteErrs) > 0 {
		err := q.deleteErrs[0]
		q.deleteErrs = q.deleteErrs[1:]
		q.ev.add("delete-error " + *in.ReceiptHandle)
		return nil, err
	}
	q.deleteLocked(*in.ReceiptHandle)
	return &sqs.DeleteMessageOutput{}, nil
}

func (q *fakeQueue) deleteLocked(h string) {
	q.deleted = append(q.deleted, h)
	delete(q.out, h)
	q.ev.add("delete " + h)
	q.finished <- h
}

// DeleteMessageBatch answers as SQS does: a malformed batch fails the
// whole call, and each entry succeeds or fails on its own, by its Id.
func (q *fakeQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer func() { q.batchDone <- struct{}{} }()
	switch {
	case len(in.Entries) == 0:
		return nil, apiError("SQS", "DeleteMessageBatch", "AWS.SimpleQueueService.EmptyBatchRequest", smithy.FaultClient)
	case len(in.Entries) > 10:
		return nil, apiError("SQS", "DeleteMessageBatch", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", smithy.FaultClient)
	}
	if err := q.batchErr; err != nil {
		q.batchErr = nil
		q.ev.add("delete-batch-error")
		return nil, err
	}
	ids := map[string]bool{}
	for _, e := range in.Entries {
		if ids[aws.ToString(e.Id)] {
			return nil, apiError("SQS", "DeleteMessageBatch", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", smithy.FaultClient)
		}
		ids[aws.ToString(e.Id)] = true
	}
	out := &sqs.DeleteMessageBatchOutput{}
	var handles []string
	for _, e := range in.Entries {
		h := aws.ToString(e.ReceiptHandle)
		handles = append(handles, h)
		if f, ok := q.batchFail[h]; ok {
			f.Id = e.Id
			out.Failed = append(out.Failed, f)
			q.ev.add("delete-failed " + h)
			continue
		}
		q.deleteLocked(h)
		out.Successful = append(out.Successful, sqstypes.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	q.batches = append(q.batches, handles)
	return out, nil
}

func (q *fakeQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := *in.ReceiptHandle
	q.vis = append(q.vis, visChange{h, in.VisibilityTimeout})
	if in.VisibilityTimeout == q.extension {
		q.ev.add("extend " + h)
		q.extended <- h
		return &sqs.ChangeMessageVisibilityOutput{}, nil
	}
	delete(q.out, h)
	q.ev.add(fmt.Sprintf("visibility %s %d", h, in.VisibilityTimeout))
	q.finished <- h
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// batchCalls lists the receipt handles of each DeleteMessageBatch call.
func (q *fakeQueue) batchCalls() [][]string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.batches)
}

func (q *fakeQueue) snapshot() (deleted []string, vis []visChange, maxOut int, overAsked []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.deleted...), append([]visChange(nil), q.vis...), q.maxOut, append([]string(nil), q.overAsked...)
}

// fakeSES records each SendEmail and answers with send, if set.
type fakeSES struct {
	ev   *events
	send func(ctx context.Context, in *sesv2.SendEmailInput) error

	mu       sync.Mutex
	sent     []*sesv2.SendEmailInput
	cur, max int
}

func (s *fakeSES) SendEmail(ctx context.Context, in *sesv2.SendEmailInput, _ ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	s.mu.Lock()
	s.cur++
	s.max = max(s.max, s.cur)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cur--
		s.mu.Unlock()
	}()
	var err error
	if s.send != nil {
		err = s.send(ctx, in)
	}
	if err != nil {
		s.ev.add("send-error " + in.Destination.ToAddresses[0])
		return nil, err
	}
	s.mu.Lock()
	s.sent = append(s.sent, in)
	s.mu.Unlock()
	s.ev.add("send " + in.Destination.ToAddresses[0])
	return &sesv2.SendEmailOutput{MessageId: aws.String("m")}, nil
}

func (s *fakeSES) emails() []*sesv2.SendEmailInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*sesv2.SendEmailInput(nil), s.sent...)
}

// fakeSFN records SendTaskFailure calls and answers with err, if set.
type fakeSFN struct {
	ev  *events
	err error

	mu    sync.Mutex
	calls []*sfn.SendTaskFailureInput
}

func (f *fakeSFN) SendTaskFailure(_ context.Context, in *sfn.SendTaskFailureInput, _ ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	f.ev.add("fail-task " + aws.ToString(in.Error))
	if f.err != nil {
		return nil, f.err
	}
	return &sfn.SendTaskFailureOutput{}, nil
}

func (f *fakeSFN) failures() []*sfn.SendTaskFailureInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*sfn.SendTaskFailureInput(nil), f.calls...)
}

func apiError(service, op, code string, fault smithy.ErrorFault) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op,
		Err: &smithy.GenericAPIError{Code: code, Message: code + " message", Fault: fault}}
}
