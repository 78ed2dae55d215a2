package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/faultproxy"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// RedeemerResult compares the redeemer's confirmation page with a bare
// net/http handler serving the same bytes, and times decisions.
type RedeemerResult struct {
	PageBytes   int
	HeaderCount int // response headers besides Date and Content-Length
	Connections int
	Redeemer    WrkResult
	// Bare answers with the redeemer's headers and page: the same bytes.
	Bare  WrkResult
	Ratio float64 // Redeemer.RPS / Bare.RPS
	// PageOnly answers with the page and its Content-Type alone, as the
	// baseline did before 2026-12-01's second run: net/http then writes
	// fewer headers than the redeemer's response has. Reported, not judged.
	PageOnly      WrkResult
	PageOnlyRatio float64 // Redeemer.RPS / PageOnly.RPS

	FixedRate             float64
	FixedP50, FixedP99    time.Duration // redeemer GET at FixedRate
	BareFixedP99          time.Duration
	FixedErrors           int
	Posts                 int
	PostRate              float64
	SFNLatency            time.Duration
	PostP50, PostP99      time.Duration
	SFNP50, SFNP99        time.Duration // SendTaskSuccess as the proxy saw it
	OverheadP50, Overhead time.Duration // PostP50-SFNP50, PostP99-SFNP99
}

// WrkResult is one saturation run.
type WrkResult struct {
	RPS      float64
	P50, P99 time.Duration
	CPU      map[string]float64 // cores used by each process during the run
}

func wrkPath() (string, error) {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return "", errors.New("wrk not found on PATH: run make setup (installs Debian's wrk)")
	}
	return p, nil
}

// runWrk saturates u with wrk (one thread, so the server keeps a core) and
// reads its summary.
func (r *run) runWrk(ctx context.Context, wrk, u string, pids map[string]int) (WrkResult, error) {
	secs := max(int(r.o.GetFor.Round(time.Second)/time.Second), 1)
	cmd := exec.CommandContext(ctx, wrk, "-t1", "-c"+strconv.Itoa(r.o.Connections), "-d"+strconv.Itoa(secs)+"s", "--latency", u)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return WrkResult{}, fmt.Errorf("start wrk: %w", err)
	}
	all := map[string]int{"wrk": cmd.Process.Pid}
	for k, v := range pids {
		all[k] = v
	}
	meter := newCPUMeter(all)
	// wrk's CPU is read from /proc before it exits; afterwards it is gone.
	var shares map[string]float64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTimer(time.Duration(secs)*time.Second - 200*time.Millisecond)
		defer t.Stop()
		<-t.C
		shares = meter.shares()
	}()
	err := cmd.Wait()
	<-sampled
	if err != nil {
		return WrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out.String())
	}
	res, err := parseWrk(out.String())
	res.CPU = shares
	return res, err
}

// parseWrk reads Requests/sec and the latency distribution from wrk's
// summary, and fails on any non-2xx/3xx answer or socket error.
func parseWrk(s string) (WrkResult, error) {
	var res WrkResult
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			res.RPS, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := time.ParseDuration(f[1])
			if err != nil {
				return res, fmt.Errorf("wrk latency %q: %w", f[1], err)
			}
			if f[0] == "50%" {
				res.P50 = d
			} else {
				res.P99 = d
			}
		case len(f) > 0 && f[0] == "Non-2xx":
			return res, fmt.Errorf("wrk: %s", sc.Text())
		case len(f) > 0 && f[0] == "Socket" && strings.Contains(sc.Text(), "errors:"):
			return res, fmt.Errorf("wrk: %s", strings.TrimSpace(sc.Text()))
		}
	}
	if res.RPS == 0 || res.P99 == 0 {
		return res, fmt.Errorf("wrk output not understood:\n%s", s)
	}
	return res, nil
}

func (r *run) redeemer(ctx context.Context, wrk string) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	admin, err := freeAddr()
	if err != nil {
		return err
	}
	base := "http://" + addr
	red, err := startService(ctx, r.o.BinDir+"/redeemer", r.logPath("redeemer"), admin, r.env(
		"APPROVALS_BASE_URL="+base, "APPROVALS_LISTEN_ADDR="+addr, "APPROVALS_METRICS_ADDR="+admin,
		// wrk is one client: the per-client limit would measure itself.
		"APPROVALS_RATE_LIMIT=off"))
	if err != nil {
		return err
	}
	defer func() {
		if red != nil {
			_, _ = red.Stop(30 * time.Second)
		}
	}()
	res := &RedeemerResult{Connections: r.o.Connections, FixedRate: r.o.GetRate, Posts: r.o.Posts,
		PostRate: r.o.PostRate, SFNLatency: r.o.SFNLatency}

	// A confirmation page as an approver opens it.
	pageURL, err := r.keyring.URL(base, link.Claims{TaskToken: r.token(0), Action: approval.DefaultActions()[0],
		Recipient: "approver@example.com", ExpiresAt: time.Now().Add(24 * time.Hour).Truncate(time.Second)})
	if err != nil {
		return err
	}
	page, header, err := getWithHeader(http.DefaultClient, pageURL)
	if err != nil {
		return fmt.Errorf("confirmation page: %w", err)
	}
	res.PageBytes = len(page)
	// net/http writes these itself, for both servers.
	header.Del("Date")
	header.Del("Content-Length")
	res.HeaderCount = len(header)

	// The baseline: the same bytes, headers and page, from a handler that
	// does nothing else, on the same machine, driven by the same wrk.
	bareURL, stopBare, err := serveBytes(pageURL, header, page)
	if err != nil {
		return err
	}
	defer stopBare()
	pageOnlyURL, stopPageOnly, err := serveBytes(pageURL, http.Header{"Content-Type": header["Content-Type"]}, page)
	if err != nil {
		return err
	}
	defer stopPageOnly()

	r.progress("GET saturation: bare net/http handler, same headers and page, wrk %d connections, %s", r.o.Connections, r.o.GetFor)
	if res.Bare, err = r.runWrk(ctx, wrk, bareURL, nil); err != nil {
		return err
	}
	r.progressDone()
	r.progress("GET saturation: bare net/http handler, page and Content-Type only, wrk %d connections, %s", r.o.Connections, r.o.GetFor)
	if res.PageOnly, err = r.runWrk(ctx, wrk, pageOnlyURL, nil); err != nil {
		return err
	}
	r.progressDone()
	r.progress("GET saturation: redeemer, wrk %d connections, %s", r.o.Connections, r.o.GetFor)
	if res.Redeemer, err = r.runWrk(ctx, wrk, pageURL, map[string]int{"redeemer": red.Pid()}); err != nil {
		return err
	}
	r.progressDone()
	res.Ratio = res.Redeemer.RPS / res.Bare.RPS
	res.PageOnlyRatio = res.Redeemer.RPS / res.PageOnly.RPS

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}, Timeout: 30 * time.Second}
	n := max(int(r.o.GetRate*r.o.GetRateFor.Seconds()), 1)
	r.progress("GET at %.0f/s: redeemer, %d requests", r.o.GetRate, n)
	lat, errs := openLoop(ctx, r.o.GetRate, n, func(_ context.Context, _ int) error { _, _, err := get(client, pageURL); return err })
	res.FixedP50, res.FixedP99, res.FixedErrors = percentile(lat, 0.5), percentile(lat, 0.99), errs
	r.progressDone()
	r.progress("GET at %.0f/s: bare handler, %d requests", r.o.GetRate, n)
	lat, errs = openLoop(ctx, r.o.GetRate, n, func(_ context.Context, _ int) error { _, _, err := get(client, bareURL); return err })
	res.BareFixedP99 = percentile(lat, 0.99)
	res.FixedErrors += errs
	r.progressDone()

	if err := r.posts(ctx, client, base, res); err != nil {
		return err
	}
	_, err = red.Stop(30 * time.Second)
	red = nil
	if err != nil {
		return err
	}
	r.report.Redeemer = res
	return nil
}

func get(c *http.Client, u string) ([]byte, string, error) {
	b, h, err := getWithHeader(c, u)
	return b, h.Get("Content-Type"), err
}

func getWithHeader(c *http.Client, u string) ([]byte, http.Header, error) {
	resp, err := c.Get(u)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET: %s", resp.Status)
	}
	return b, resp.Header, nil
}

// serveBytes starts a bare net/http server answering every request with
// header and body, and returns the URL with like's path and query (so
// both servers read requests of the same size) and its stop.
func serveBytes(like string, header http.Header, body []byte) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		for k, v := range header {
			h[k] = v
		}
		w.Write(body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	pu, err := url.Parse(like)
	if err != nil {
		srv.Close()
		return "", nil, err
	}
	return "http://" + ln.Addr().String() + pu.RequestURI(), func() { srv.Close() }, nil
}

// waitForToken is the smallest approval state machine: it puts the task
// token on the queue and waits for the decision.
func waitForToken(queueURL string) string {
	return fmt.Sprintf(`{"StartAt":"RequestApproval","States":{"RequestApproval":{"Type":"Task",
"Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken","TimeoutSeconds":3600,
"Parameters":{"QueueUrl":%q,"MessageBody":{"taskToken.$":"$$.Task.Token","subject.$":"$.subject"}},"End":true}}}`, queueURL)
}

// posts completes real waiting tasks through the redeemer at a fixed rate,
// with Step Functions latency injected, and sets the POST figures.
func (r *run) posts(ctx context.Context, client *http.Client, base string, res *RedeemerResult) error {
	q, err := r.queue(ctx)
	if err != nil {
		return err
	}
	sm, err := r.sfn.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{
		Name:       aws.String(fmt.Sprintf("bench-%d", time.Now().UnixNano()%1e9)),
		Definition: aws.String(waitForToken(q)),
		RoleArn:    aws.String("arn:aws:iam::000000000000:role/approvals-state-machine"),
	})
	if err != nil {
		return fmt.Errorf("create state machine: %w", err)
	}
	n := r.o.Posts
	var wg sync.WaitGroup
	errc := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := r.sfn.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn,
				Input: aws.String(fmt.Sprintf(`{"subject":"decision %d"}`, i))})
			if err != nil {
				errc <- fmt.Errorf("start execution: %w", err)
			}
		}()
		r.progress("POST: starting executions %d/%d", i+1, n)
	}
	wg.Wait()
	r.progressDone()
	select {
	case err := <-errc:
		return err
	default:
	}

	// The tokens, read off the queue as the worker would.
	var tokens []string
	deadline := time.Now().Add(60 * time.Second)
	for len(tokens) < n && time.Now().Before(deadline) {
		out, err := r.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			return fmt.Errorf("receive task tokens: %w", err)
		}
		for _, m := range out.Messages {
			var b struct {
				TaskToken string `json:"taskToken"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &b); err != nil || b.TaskToken == "" {
				return fmt.Errorf("message without a task token: %v", err)
			}
			tokens = append(tokens, b.TaskToken)
		}
		r.progress("POST: task tokens %d/%d", len(tokens), n)
	}
	r.progressDone()
	if len(tokens) < n {
		return fmt.Errorf("%d of %d task tokens arrived within 60s", len(tokens), n)
	}
	links := make([]string, n)
	for i, tok := range tokens[:n] {
		if links[i], err = r.keyring.URL(base, link.Claims{TaskToken: tok, Action: approval.DefaultActions()[0],
			Recipient: "approver@example.com", ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
			return err
		}
	}

	r.proxy.Set(faultproxy.SFN, faultproxy.Fault{Latency: r.o.SFNLatency})
	r.proxy.ResetOps()
	r.progress("POST at %.0f/s with Step Functions latency %s: %d decisions", r.o.PostRate, r.o.SFNLatency, n)
	lat, errs := openLoop(ctx, r.o.PostRate, n, func(_ context.Context, i int) error {
		resp, err := client.PostForm(links[i], url.Values{"comment": {"approved by the benchmark"}})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST: %s", resp.Status)
		}
		return nil
	})
	r.progressDone()
	if errs > 0 {
		return fmt.Errorf("%d of %d decisions failed", errs, n)
	}
	op := r.proxy.Op(faultproxy.SFN, "SendTaskSuccess")
	if op.Count != int64(n) || op.Errors != 0 {
		return fmt.Errorf("step functions saw %d SendTaskSuccess calls (%d errors), want %d without errors", op.Count, op.Errors, n)
	}
	res.PostP50, res.PostP99 = percentile(lat, 0.5), percentile(lat, 0.99)
	res.SFNP50, res.SFNP99 = percentile(op.Durations, 0.5), percentile(op.Durations, 0.99)
	res.OverheadP50, res.Overhead = res.PostP50-res.SFNP50, res.PostP99-res.SFNP99
	return nil
}
