package testio

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// WriteGate dials connections whose writer, on the first one, is held once
// a whole HTTP request has been written, until Release. Tests use it to
// force an order a busy machine produces only at random: the request is
// sent and the answer begins before net/http's writer takes its next step.
type WriteGate struct {
	dialed    atomic.Bool
	release   chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

// NewWriteGate returns a gate that holds the writer until Release.
func NewWriteGate() *WriteGate {
	return &WriteGate{release: make(chan struct{}), closed: make(chan struct{})}
}

// DialContext dials as net.Dialer does, for an http.Transport; the first
// connection it returns is the gated one.
func (g *WriteGate) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil || !g.dialed.CompareAndSwap(false, true) {
		return c, err
	}
	return &gatedConn{Conn: c, g: g}, nil
}

// Release lets the held writer go on; call it once.
func (g *WriteGate) Release() { close(g.release) }

// Closed is closed once the gated connection has been.
func (g *WriteGate) Closed() <-chan struct{} { return g.closed }

type gatedConn struct {
	net.Conn
	g       *WriteGate
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
			<-c.g.release
		}
	}
	return n, err
}

func (c *gatedConn) Close() error {
	c.g.closeOnce.Do(func() { close(c.g.closed) })
	return c.Conn.Close()
}
