package faultproxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"

	"github.com/sfn-approvals/sfn-approvals/internal/testio"
)

// The server closes a request's body as soon as the handler starts
// answering, and the proxy's transport reads the body it forwards once more
// after sending its last byte. This forces the order a busy machine
// produces at random: the target's answer begins, the proxy passes it on
// (so the server closes the inbound body), and only then does the
// transport's writer take its next step. The answer must still arrive
// whole.
func TestAnswerSurvivesInboundBodyClose(t *testing.T) {
	answer := []byte(`{"Messages":[{"Body":"` + strings.Repeat("x", 16<<10) + `"}]}`)
	half := len(answer) / 2
	releaseTarget := make(chan struct{})
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write(answer[:half])
		w.(http.Flusher).Flush()
		select {
		case <-releaseTarget:
		case <-r.Context().Done():
		}
		_, _ = w.Write(answer[half:])
	}))
	defer target.Close()
	p, err := New(target.URL, 1)
	if err != nil {
		t.Fatal(err)
	}
	g := testio.NewWriteGate()
	tr := p.rp.Transport.(*http.Transport)
	tr.DialContext = g.DialContext
	wrote := make(chan error, 1)
	p.rp.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) { wrote <- i.Err },
		}))
		return tr.RoundTrip(r)
	})
	front := httptest.NewServer(p)
	defer front.Close()

	req, _ := http.NewRequest(http.MethodPost, front.URL, strings.NewReader(`{"QueueUrl":"q","MaxNumberOfMessages":10}`))
	req.Header.Set("X-Amz-Target", "AmazonSQS.ReceiveMessage")
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, half)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first half of the answer: %v", err)
	}
	// The proxy has begun answering: the server has closed the inbound
	// body. Now let the transport's writer go on.
	g.Release()
	werr := <-wrote
	if werr != nil {
		<-g.Closed() // the transport drops the connection after a failed write
	}
	close(releaseTarget)
	rest, err := io.ReadAll(resp.Body)
	if werr != nil || err != nil || !bytes.Equal(append(first, rest...), answer) {
		t.Errorf("request to the target: %v; answer: %d of %d bytes, %v; want it whole", werr, half+len(rest), len(answer), err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
