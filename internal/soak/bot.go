package soak

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
	"github.com/sfn-approvals/sfn-approvals/internal/wait"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// Addresses of the soak's executions.
const (
	approverAddr  = "approver@example.com"
	requesterAddr = "requester@example.com"
)

var linkRE = regexp.MustCompile(`https?://[^\s"'<>]+` + regexp.QuoteMeta(link.PathPrefix) + `[A-Za-z0-9_-]+`)

// bot acts like approvers: it reads the outbox, and for each request's
// first email opens the link (GET) and presses the button (POST); the three
// approvers of a 2-of-3 request press theirs at the same moment. Links in
// later copies of the same email are tried once the decision is in; they
// must answer 410, or 200 with the same decision again (the votes table
// counts an approver once), never decide anew.
type bot struct {
	r      *run
	l      *Ledger
	client *http.Client
	work   chan task

	mu      sync.Mutex
	seen    int    // outbox entries already read
	pending []task // duplicate links waiting for their request's decision
	busy    int    // tasks queued or running
	s       botStats
}

type botStats struct {
	gets, posts  int
	limited      int // 429s, waited out
	unavailable  int // 503s, retried
	dupGone      int // 410s on duplicate emails' links, as they should be
	transportErr int // requests that failed without an answer, retried
}

type task struct {
	e        *execution
	url      string
	dup      bool
	approver string // a quorum request's approver; "" for approverAddr
}

func newBot(r *run, l *Ledger) *bot {
	return &bot{r: r, l: l, work: make(chan task, 4*r.o.Executions+16),
		client: &http.Client{Timeout: 60 * time.Second,
			// The outcome page is what counts, not where a redirect leads.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *bot) stats() botStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s
}

// idle reports whether the bot has nothing queued, running or waiting.
func (b *bot) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.busy == 0 && len(b.pending) == 0
}

func (b *bot) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range b.r.o.Approvers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case t := <-b.work:
					b.act(ctx, t)
					b.mu.Lock()
					b.busy--
					b.mu.Unlock()
				}
			}
		}()
	}
	// The outbox is read whole each time (kumo has no paging), so reads
	// are spaced by a multiple of how long the last one took.
	pause := time.Second
	for ctx.Err() == nil {
		t0 := time.Now()
		if err := b.poll(ctx); err != nil && ctx.Err() == nil {
			b.l.problemf("read the outbox: %v", err)
		}
		b.release()
		pause = max(time.Second, 3*time.Since(t0))
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	wg.Wait()
}

func (b *bot) enqueue(t task) {
	b.mu.Lock()
	b.busy++
	b.mu.Unlock()
	b.work <- t
}

// poll reads the outbox and handles the emails not seen yet.
func (b *bot) poll(ctx context.Context) error {
	all, err := kumo.SentEmails(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	from := b.seen
	b.seen = len(all)
	b.mu.Unlock()
	for _, m := range all[min(from, len(all)):] {
		b.handle(m)
	}
	return nil
}

func (b *bot) handle(m kumo.SentEmail) {
	r := b.r
	r.mu.Lock()
	e := r.bySub[m.Subject]
	r.mu.Unlock()
	if e == nil || len(m.Destination.ToAddresses) == 0 {
		return // another run's email
	}
	to := m.Destination.ToAddresses[0]
	if strings.Contains(to, requesterAddr) {
		r.mu.Lock()
		e.notifications++
		r.mu.Unlock()
		if linkRE.MatchString(m.Body) {
			b.l.problemf("execution %d: the requester got an email with decision links", e.n)
		}
		return
	}
	if e.quorum {
		b.handleQuorum(m, e, to)
		return
	}
	if !strings.Contains(to, approverAddr) {
		return
	}
	u := b.linkFor(m, e.action)
	r.mu.Lock()
	e.emails++
	first := !e.acted
	e.acted = true
	r.mu.Unlock()
	if u == "" {
		b.l.problemf("execution %d: email without a %s link", e.n, e.action)
		return
	}
	if first {
		b.enqueue(task{e: e, url: u})
		return
	}
	b.mu.Lock()
	b.pending = append(b.pending, task{e: e, url: u, dup: true})
	b.mu.Unlock()
}

// handleQuorum waits for each approver's first email of a 2-of-3 request;
// when all three have one, their votes are cast together.
func (b *bot) handleQuorum(m kumo.SentEmail, e *execution, to string) {
	addr := ""
	for _, a := range stack.QuorumApprovers {
		if strings.Contains(to, a) {
			addr = a
		}
	}
	if addr == "" {
		return
	}
	u := b.linkFor(m, "approve")
	if u == "" {
		b.l.problemf("execution %d: email to %s without an approve link", e.n, addr)
		return
	}
	r := b.r
	r.mu.Lock()
	e.quorumEmails[addr]++
	first := e.quorumLinks[addr] == ""
	if first {
		e.quorumLinks[addr] = u
	}
	var all []task
	if first && len(e.quorumLinks) == len(stack.QuorumApprovers) {
		for a, u := range e.quorumLinks {
			all = append(all, task{e: e, url: u, approver: a})
		}
	}
	r.mu.Unlock()
	if !first {
		b.mu.Lock()
		b.pending = append(b.pending, task{e: e, url: u, dup: true, approver: addr})
		b.mu.Unlock()
		return
	}
	for _, t := range all {
		b.enqueue(t)
	}
}

// linkFor finds the email's link for action by opening each link, as the
// redeemer would.
func (b *bot) linkFor(m kumo.SentEmail, action string) string {
	for _, u := range linkRE.FindAllString(m.Body, -1) {
		_, tok, ok := strings.Cut(u, link.PathPrefix)
		if !ok {
			continue
		}
		c, err := b.r.st.Keyring.Open(tok, time.Now())
		if err == nil && c.Action.Name == action {
			return u
		}
	}
	return ""
}

// release queues the duplicate links whose request has been decided.
func (b *bot) release() {
	b.mu.Lock()
	var ready, still []task
	b.r.mu.Lock()
	for _, t := range b.pending {
		if t.e.decided != "" {
			ready = append(ready, t)
		} else {
			still = append(still, t)
		}
	}
	b.r.mu.Unlock()
	b.pending = still
	b.mu.Unlock()
	for _, t := range ready {
		b.enqueue(t)
	}
}

// act opens a link and decides, as a person at a browser does.
func (b *bot) act(ctx context.Context, t task) {
	e := t.e
	if !t.dup {
		code, err := b.do(ctx, http.MethodGet, t.url)
		for err != nil && ctx.Err() == nil { // the redeemer restarting
			code, err = b.do(ctx, http.MethodGet, t.url)
		}
		switch {
		case t.approver != "" && code == http.StatusGone:
			// The two others decided before this one looked.
			b.quorumVoted(e, t.approver, "gone")
			return
		case code != http.StatusOK:
			if ctx.Err() == nil {
				b.l.problemf("execution %d: GET of its link answered %d, want 200", e.n, code)
			}
			return
		}
	}
	retried := false
	for ctx.Err() == nil {
		code, err := b.do(ctx, http.MethodPost, t.url)
		switch {
		case err != nil:
			retried = true
			continue
		case code == http.StatusServiceUnavailable:
			// Step Functions stayed unavailable through the redeemer's
			// retries; the link is still good.
			b.mu.Lock()
			b.s.unavailable++
			b.mu.Unlock()
			retried = true
			wait.Sleep(ctx, time.Second)
			continue
		case t.dup && (code == http.StatusGone || code == http.StatusOK || code == http.StatusSeeOther):
			// 410: decided; 200 (or the redirect): this approver's vote,
			// already counted, given back. Either way nothing new.
			b.mu.Lock()
			b.s.dupGone++
			b.mu.Unlock()
		case t.dup:
			b.l.problemf("execution %d: the link of a second copy of its email answered %d, want 410 or the same decision (decided twice?)", e.n, code)
		case t.approver != "" && (code == http.StatusOK || code == http.StatusSeeOther):
			b.quorumVoted(e, t.approver, "counted")
		case t.approver != "" && code == http.StatusGone:
			// Decided by the two others, or this vote decided and its
			// answer was lost to a kill, the next call finishing it.
			b.quorumVoted(e, t.approver, "gone")
		case code == http.StatusOK || code == http.StatusSeeOther:
			b.decided(e, "recorded")
		case code == http.StatusGone && retried:
			// An earlier attempt's answer was lost after Step Functions
			// took it: this decision is the one recorded.
			b.decided(e, "recorded, answer lost")
		default:
			b.l.problemf("execution %d: POST answered %d", e.n, code)
			b.decided(e, fmt.Sprintf("answered %d", code))
		}
		return
	}
}

// quorumVoted records how one approver's vote ended; with all three in, the
// request counts as acted on.
func (b *bot) quorumVoted(e *execution, approver, how string) {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	e.quorumDone[approver] = how
	if len(e.quorumDone) == len(stack.QuorumApprovers) {
		e.decided = "quorum"
	}
}

func (b *bot) decided(e *execution, how string) {
	b.r.mu.Lock()
	e.decided = how
	b.r.mu.Unlock()
}

// do makes one request, waiting out 429s (Retry-After) as a client should.
func (b *bot) do(ctx context.Context, method, u string) (int, error) {
	for {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(url.Values{"comment": {"checked by the soak bot"}}.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			return 0, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := b.client.Do(req)
		b.mu.Lock()
		if method == http.MethodGet {
			b.s.gets++
		} else {
			b.s.posts++
		}
		if err != nil {
			b.s.transportErr++
		}
		b.mu.Unlock()
		if err != nil {
			wait.Sleep(ctx, time.Second)
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			return resp.StatusCode, nil
		}
		b.mu.Lock()
		b.s.limited++
		b.mu.Unlock()
		secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || secs < 1 {
			b.l.problemf("429 without a usable Retry-After (%q)", resp.Header.Get("Retry-After"))
			secs = 1
		}
		if !wait.Sleep(ctx, time.Duration(secs)*time.Second) {
			return 0, ctx.Err()
		}
	}
}
