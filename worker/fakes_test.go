package worker

import (
	"context"
	"fmt"
	"strconv"
	"sync"

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
// them. A message is "out" from receipt until it is deleted or given a
// final visibility (anything but the extension value).
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
	finished    chan string // receipt handle, on delete or final visibility
	extended    chan string // receipt handle, on each extension
	onEmpty     func(ctx context.Context) ([]sqstypes.Message, error)
	receiveErrs []error
	wake        chan struct{} // an add during an empty long poll
}

func newFakeQueue(ev *events, limit int, extension int32) *fakeQueue {
	return &fakeQueue{ev: ev, limit: limit, extension: extension, out: map[string]bool{},
		finished: make(chan string, 1000), extended: make(chan string, 1000), wake: make(chan struct{}, 1)}
}

// add queues a message with the given body; receipt handle "rh-ID".
func (q *fakeQueue) add(id, body string, receiveCount int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, sqstypes.Message{
		MessageId:     aws.String(id),
		ReceiptHandle: aws.String("rh-" + id),
		Body:          aws.String(body),
		Attributes: map[string]string{
			"ApproximateReceiveCount": strconv.Itoa(receiveCount),
			"SentTimestamp":           "1700000000000",
		},
	})
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *fakeQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	q.receives++
	if int(in.MaxNumberOfMessages) > q.limit-len(q.out) || in.MaxNumberOfMessages > 10 || in.MaxNumberOfMessages < 1 {
		q.overAsked = append(q.overAsked, fmt.Sprintf("asked %d with %d of %d out", in.MaxNumberOfMessages, len(q.out), q.limit))
	}
	if len(q.receiveErrs) > 0 {
		err := q.receiveErrs[0]
		q.receiveErrs = q.receiveErrs[1:]
		q.mu.Unlock()
		return nil, err
	}
	if len(q.pending) == 0 {
		onEmpty := q.onEmpty
		q.mu.Unlock()
		if onEmpty != nil {
			msgs, err := onEmpty(ctx)
			q.mu.Lock()
			for _, m := range msgs {
				q.take(m)
			}
			q.mu.Unlock()
			return &sqs.ReceiveMessageOutput{Messages: msgs}, err
		}
		// An empty long poll: wait for a message or for the caller to give
		// up, then answer empty, as SQS does when the wait ends.
		select {
		case <-ctx.Done():
			return nil, &smithy.OperationError{ServiceID: "SQS", OperationName: "ReceiveMessage", Err: ctx.Err()}
		case <-q.wake:
			return &sqs.ReceiveMessageOutput{}, nil
		}
	}
	n := min(int(in.MaxNumberOfMessages), len(q.pending))
	msgs := q.pending[:n]
	q.pending = q.pending[n:]
	for _, m := range msgs {
		q.take(m)
	}
	q.mu.Unlock()
	return &sqs.ReceiveMessageOutput{Messages: msgs}, nil
}

func (q *fakeQueue) take(m sqstypes.Message) {
	q.out[*m.ReceiptHandle] = true
	q.maxOut = max(q.maxOut, len(q.out))
	q.ev.add("receive " + *m.ReceiptHandle)
}

func (q *fakeQueue) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := *in.ReceiptHandle
	q.deleted = append(q.deleted, h)
	delete(q.out, h)
	q.ev.add("delete " + h)
	q.finished <- h
	return &sqs.DeleteMessageOutput{}, nil
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
