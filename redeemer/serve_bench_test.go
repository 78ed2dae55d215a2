//go:build unix

package redeemer

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// BenchmarkServeConfirmPage is a GET of a link through the whole server
// path, as approvals bench's wrk drives it: keep-alive connections over
// loopback to Serve's http.Server. "bare" is a handler that only writes the
// same page's bytes, on the same kind of server: the difference between the
// two is the redeemer's own work per request, net/http's being common to
// both. Client and server share the process, so cpu-ns/op (the process's
// CPU time per request) counts the client too; compare the two
// sub-benchmarks with each other, not with BenchmarkConfirmPage.
//
//	go test -run '^$' -bench ServeConfirmPage -benchmem ./redeemer/
func BenchmarkServeConfirmPage(b *testing.B) {
	bb := setup(b, func(c *Config) { c.RateLimit = RateLimitOff })
	p := bb.path(b, approve)
	page := bb.do(req{method: http.MethodGet, path: p})
	if page.Code != http.StatusOK {
		b.Fatalf("status %d", page.Code)
	}
	body, ctype := page.Body.Bytes(), page.Header().Get("Content-Type")
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(body)
	})
	b.Run("bare", func(b *testing.B) {
		ln := listen(b)
		srv := &http.Server{Handler: bare, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		b.Cleanup(func() { srv.Close() })
		drive(b, ln.Addr().String(), p)
	})
	b.Run("redeemer", func(b *testing.B) {
		ln := listen(b)
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- bb.srv.Serve(ctx, ln) }()
		b.Cleanup(func() {
			cancel()
			if err := <-served; err != nil {
				b.Errorf("Serve: %v", err)
			}
		})
		drive(b, ln.Addr().String(), p)
	})
}

func listen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

// drive sends GET path over keep-alive connections, one per parallel
// goroutine, each waiting for its answer before the next request as wrk
// does, and reports the process's CPU time per request.
func drive(b *testing.B, addr, path string) {
	request := []byte("GET " + path + " HTTP/1.1\r\nHost: approvals.example.com\r\n" +
		"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n\r\n")
	b.SetParallelism(8) // 16 connections on 2 cores: the server, not the client, is saturated
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		r := bufio.NewReaderSize(conn, 16<<10)
		for pb.Next() {
			if _, err := conn.Write(request); err != nil {
				b.Error(err)
				return
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
