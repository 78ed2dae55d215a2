package awsx

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sfn-approvals/sfn-approvals/internal/testio"
)

// raceResult is what one ReceiveMessage through the race below came to.
type raceResult struct {
	writeErr error    // net/http's verdict on writing the first request
	readErr  error    // reading the first answer's body
	answers  int      // ReceiveMessage answers the server sent
	got      []string // message ids the caller received
	err      error    // the call's error
}

// receiveAfterEarlyClose makes one ReceiveMessage through the real SQS
// client and client, forcing the order a busy machine produces at random:
// the request's bytes are all sent, the answer's headers come back and the
// SDK closes the request body, and only then does net/http's writer take
// its next step. The server holds back the second half of the first
// answer until the writer has finished (or dropped the connection).
func receiveAfterEarlyClose(t *testing.T, newClient func(dial func(*http.Transport)) aws.HTTPClient) raceResult {
	t.Helper()
	releaseServer := make(chan struct{})
	var answers atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			return
		}
		n := int(answers.Add(1))
		answer := receiveAnswer(fmt.Sprintf("m-%d", n))
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("Content-Length", fmt.Sprint(len(answer)))
		half := len(answer) / 2
		_, _ = w.Write(answer[:half])
		w.(http.Flusher).Flush()
		if n == 1 {
			<-releaseServer
		}
		_, _ = w.Write(answer[half:])
	}))
	defer srv.Close()

	g := testio.NewWriteGate()
	dial := func(tr *http.Transport) { tr.DialContext = g.DialContext }
	h := &hook{inner: newClient(dial), g: g, releaseServer: releaseServer, wrote: make(chan error, 1)}
	client := sqs.New(sqs.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(srv.URL),
		HTTPClient:   h,
	})
	out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(srv.URL + "/000000000000/requests"), MaxNumberOfMessages: 10,
	})
	res := raceResult{writeErr: h.writeErr, readErr: h.readErr, answers: int(answers.Load()), err: err}
	if out != nil {
		for _, m := range out.Messages {
			res.got = append(res.got, aws.ToString(m.MessageId))
		}
	}
	return res
}

// receiveAnswer is a ReceiveMessage answer of one message larger than a
// read buffer, as an approval request is.
func receiveAnswer(id string) []byte {
	body := strings.Repeat("x", 8<<10)
	sum := md5.Sum([]byte(body))
	b, _ := json.Marshal(map[string]any{"Messages": []map[string]string{{
		"MessageId": id, "ReceiptHandle": "rh-" + id, "Body": body, "MD5OfBody": hex.EncodeToString(sum[:]),
	}}})
	return b
}

// hook sits between the SDK and the client under test. The SDK closes the
// request body after Do returns and before it reads the answer, so the
// answer's first Read is where the writer is let go.
type hook struct {
	inner         aws.HTTPClient
	g             *testio.WriteGate
	releaseServer chan struct{}
	wrote         chan error
	first         atomic.Bool
	writeErr      error
	readErr       error
}

func (h *hook) Do(req *http.Request) (*http.Response, error) {
	if !h.first.CompareAndSwap(false, true) {
		return h.inner.Do(req)
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { h.wrote <- i.Err },
	}))
	resp, err := h.inner.Do(req)
	if err != nil {
		return resp, err
	}
	resp.Body = &firstRead{ReadCloser: resp.Body, err: &h.readErr, before: func() {
		h.g.Release()
		h.writeErr = <-h.wrote
		if h.writeErr != nil {
			// net/http closes the connection after a failed write; let
			// the rest of the answer come only once it has.
			<-h.g.Closed()
		}
		close(h.releaseServer)
	}}
	return resp, nil
}

// firstRead runs before ahead of the first Read and keeps the first error
// other than io.EOF.
type firstRead struct {
	io.ReadCloser
	before func()
	once   sync.Once
	err    *error
}

func (f *firstRead) Read(p []byte) (int, error) {
	f.once.Do(f.before)
	n, err := f.ReadCloser.Read(p)
	if err != nil && err != io.EOF && *f.err == nil {
		*f.err = err
	}
	return n, err
}

// The SDK's own client loses a ReceiveMessage answer when its request body
// is closed before net/http's writer is done with it: the writer's last
// check answers io.EOF, net/http drops the connection under the answer, and
// the SDK's retry gets a second answer. With SQS the first answer's
// messages are then invisible for the visibility timeout. This subtest
// shows the cause; it fails once the SDK no longer does this.
func TestSDKClientLosesAnswerWhenBodyClosedEarly(t *testing.T) {
	res := receiveAfterEarlyClose(t, func(dial func(*http.Transport)) aws.HTTPClient {
		return awshttp.NewBuildableClient().WithTransportOptions(dial)
	})
	if res.writeErr != io.EOF {
		t.Errorf("net/http's write of the first request: %v, want io.EOF from the closed body", res.writeErr)
	}
	if !errors.Is(res.readErr, net.ErrClosed) {
		t.Errorf("reading the first answer: %v, want the connection closed under it", res.readErr)
	}
	if res.answers < 2 || (res.err == nil && len(res.got) == 1 && res.got[0] == "m-1") {
		t.Errorf("the first answer reached the caller (answers sent %d, got %v, err %v); want it lost", res.answers, res.got, res.err)
	}
}

// The same race through the project's client: the first answer arrives
// whole, on the first attempt.
func TestHTTPClientKeepsAnswerWhenBodyClosedEarly(t *testing.T) {
	res := receiveAfterEarlyClose(t, func(dial func(*http.Transport)) aws.HTTPClient {
		return HTTPClient{SDK: awshttp.NewBuildableClient().WithTransportOptions(dial)}
	})
	if res.writeErr != nil || res.readErr != nil {
		t.Errorf("first request: write %v, read %v; want neither to fail", res.writeErr, res.readErr)
	}
	if res.err != nil || res.answers != 1 || len(res.got) != 1 || res.got[0] != "m-1" {
		t.Errorf("answers sent %d, got %v, err %v; want the first answer, m-1, and no other", res.answers, res.got, res.err)
	}
}
