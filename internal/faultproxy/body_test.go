package faultproxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
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
	g := &gate{releaseWrite: make(chan struct{}), connClosed: make(chan struct{})}
	tr := p.rp.Transport.(*http.Transport)
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || !g.dialed.CompareAndSwap(false, true) {
			return c, err
		}
		return &gatedConn{Conn: c, g: g}, nil
	}
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
	close(g.releaseWrite)
	werr := <-wrote
	if werr != nil {
		<-g.connClosed // the transport drops the connection after a failed write
	}
	close(releaseTarget)
	rest, err := io.ReadAll(resp.Body)
	if werr != nil || err != nil || !bytes.Equal(append(first, rest...), answer) {
		t.Errorf("request to the target: %v; answer: %d of %d bytes, %v; want it whole", werr, half+len(rest), len(answer), err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type gate struct {
	dialed       atomic.Bool
	releaseWrite chan struct{}
	connClosed   chan struct{}
	closeOnce    sync.Once
}

// gatedConn holds its writer once a whole request has been written, until
// the gate lets it go.
type gatedConn struct {
	net.Conn
	g       *gate
	written []byte
	held    bool
}

func (c *gatedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.held || err != nil {
		return n, err
	}
	c.written = append(c.written, p[:n]...)
	if req, rerr := http.ReadRequest(bufio.NewReader(bytes.NewReader(c.written))); rerr == nil {
		if _, rerr := io.ReadAll(req.Body); rerr == nil {
			c.held = true
			<-c.g.releaseWrite
		}
	}
	return n, err
}

func (c *gatedConn) Close() error {
	c.g.closeOnce.Do(func() { close(c.g.connClosed) })
	return c.Conn.Close()
}
