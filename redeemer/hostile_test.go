package redeemer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// serve runs b's server on a real listener with the given config changes
// already applied by setup, and returns its address; it stops with the test.
func (b *bundle) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// readUntilClosed reads conn until the server closes it, and returns what it
// sent. A generous deadline only keeps a broken server from hanging the test.
func readUntilClosed(t *testing.T, conn net.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("server kept the connection open; got so far: %q", b)
	}
	return string(b)
}

// A client that sends its headers slowly (slowloris) is cut off by
// ReadHeaderTimeout rather than holding a connection for ever.
func TestSlowHeadersCutOff(t *testing.T) {
	b := setup(t, func(c *Config) { c.ReadHeaderTimeout = 100 * time.Millisecond })
	addr := b.serve(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET "+b.path(t, approve)+" HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	// The blank line that ends the headers never comes.
	if got := readUntilClosed(t, conn); strings.Contains(got, "200 OK") {
		t.Fatalf("incomplete request answered: %q", got)
	}
}

// A POST whose body trickles in is cut off by ReadTimeout, and nothing is
// decided from the part that arrived.
func TestSlowBodyCutOff(t *testing.T) {
	b := setup(t, func(c *Config) { c.ReadTimeout = 200 * time.Millisecond })
	addr := b.serve(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST " + b.path(t, approve) + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncomment=par"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	got := readUntilClosed(t, conn)
	if strings.Contains(got, "Decision recorded") {
		t.Fatalf("decision recorded from a partial body: %q", got)
	}
	if n := b.sfn.callCount(); n != 0 {
		t.Fatalf("%d Step Functions calls from a partial body, want 0", n)
	}
}

// Hundreds of connections at once, some of them idle slowloris clients, do
// not keep approvers out: every real request is answered.
func TestManyConnections(t *testing.T) {
	const idle, busy = 200, 100
	b := setup(t, func(c *Config) { c.RateLimit = RateLimitOff })
	addr := b.serve(t)
	p := b.path(t, approve)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idle {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}

	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, busy)
	for i := range busy {
		wg.Add(1)
		go func() {
			defer wg.Done()
			method := http.MethodGet
			var body io.Reader
			if i%10 == 0 {
				method, body = http.MethodPost, strings.NewReader(url.Values{"comment": {"ok"}}.Encode())
			}
			req, _ := http.NewRequest(method, "http://"+addr+p, body)
			if body != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("%s: %s", method, resp.Status)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := b.sfn.callCount(); n != busy/10 {
		t.Errorf("%d Step Functions calls, want %d (one per POST)", n, busy/10)
	}
}

// Whatever a request put in a link (label, recipient, cause) or an approver
// typed is shown as text on the pages, never as markup.
func TestPagesEscapeHostileText(t *testing.T) {
	b := setup(t)
	const xss = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	hostile := approval.Action{Name: "approve", Label: xss, Type: approval.Success}
	p := b.path(t, hostile, func(c *link.Claims) { c.Recipient = `"<b>x</b>"@example.com` })

	checks := func(t *testing.T, body string) {
		t.Helper()
		for _, raw := range []string{"<script>", "<img", "<b>x"} {
			if strings.Contains(body, raw) {
				t.Errorf("page contains raw %q:\n%s", raw, body)
			}
		}
	}
	w := b.do(req{method: http.MethodGet, path: p})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "&lt;script&gt;") {
		t.Fatalf("GET = %d, label not shown escaped:\n%s", w.Code, w.Body)
	}
	checks(t, w.Body.String())

	// A comment refused for its length comes back escaped in the textarea.
	long := xss + strings.Repeat("x", MaxCommentRunes)
	w = b.do(post(p, long))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "&lt;script&gt;alert(1)") {
		t.Fatalf("POST = %d, comment not shown escaped:\n%s", w.Code, w.Body)
	}
	checks(t, w.Body.String())

	// An accepted comment reaches Step Functions as the approver typed it.
	if w := b.do(post(p, xss)); w.Code != http.StatusOK {
		t.Fatalf("POST = %d\n%s", w.Code, w.Body)
	}
	checks(t, w.Body.String())
	if got := b.sfn.successes[0].Output; got == nil || !strings.Contains(*got, `\u003cscript\u003e`) && !strings.Contains(*got, "<script>") {
		t.Errorf("comment lost on its way to Step Functions: %v", got)
	}
}

// Oversized, malformed and odd requests get a clear page and decide nothing.
func TestHostileRequests(t *testing.T) {
	b := setup(t)
	p := b.path(t, approve)
	tests := []struct {
		name     string
		r        req
		header   map[string]string
		wantCode int
		wantText string
	}{
		{"body over the limit", req{method: "POST", path: p, rawBody: "comment=" + strings.Repeat("%41", maxBody)}, nil, 400, "too long"},
		{"form is not urlencoded", req{method: "POST", path: p, rawBody: "comment=%zz"}, nil, 400, "could not be read"},
		{"invalid UTF-8", req{method: "POST", path: p, rawBody: "comment=%c3%28"}, nil, 400, "not valid text"},
		{"link token cut short", req{method: "GET", path: p[:len(p)/2]}, nil, 400, "Link not valid"},
		{"link token with a bit flipped", req{method: "POST", path: flip(p), form: url.Values{"comment": {"x"}}}, nil, 400, "Link not valid"},
		{"link too long", req{method: "GET", path: link.PathPrefix + strings.Repeat("A", 20000)}, nil, 400, "Link not valid"},
		{"wrong method", req{method: "PUT", path: p}, nil, 405, "Method not allowed"},
		{"path traversal", req{method: "GET", path: link.PathPrefix + "..%2f..%2fetc%2fpasswd"}, nil, 400, "Link not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := b.do(tt.r)
			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), tt.wantText) {
				t.Fatalf("%s = %d, want %d with %q\n%s", tt.r.method, w.Code, tt.wantCode, tt.wantText, w.Body)
			}
			if w.Header().Get("Content-Security-Policy") == "" {
				t.Error("no security headers")
			}
		})
	}
	if n := b.sfn.callCount(); n != 0 {
		t.Fatalf("%d Step Functions calls from hostile requests, want 0", n)
	}
}

// Headers beyond MaxHeaderBytes are refused by the server itself.
func TestOversizedHeaders(t *testing.T) {
	b := setup(t)
	addr := b.serve(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET " + b.path(t, approve) + " HTTP/1.1\r\nHost: x\r\nX-Junk: " + strings.Repeat("a", 2*maxHeaderBytes) + "\r\n\r\n"
	go func() { _, _ = io.WriteString(conn, req) }()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line, "431") {
		t.Fatalf("status line %q, want 431", line)
	}
	if n := b.linkChecks("ok"); n != 0 {
		t.Fatalf("%v links opened from a refused request", n)
	}
}

// flip changes one character in the middle of a link path.
func flip(p string) string {
	i := len(p) / 2
	c := byte('A')
	if p[i] == 'A' {
		c = 'B'
	}
	return p[:i] + string(c) + p[i+1:]
}
