// Package soak runs the whole product under abuse and proves that nothing
// is lost: the real worker and redeemer binaries against kumo's Step
// Functions, SQS and SES, behind internal/faultproxy (throttling, 5xx,
// latency spikes, connection resets), a short visibility timeout so some
// messages arrive twice, the worker killed with SIGKILL and restarted
// mid-run, a window in which SES accepts SendEmail and never answers, then
// one in which it answers SendingPausedException (an operator's mistake),
// and a bot that acts like an approver on every email. A share of the
// requests need two of three approvers (the votes table), who click at
// once, while the redeemer too is SIGKILLed and restarted. It ends with
// a Ledger that accounts for every execution and every message.
//
// `approvals-dev soak` (make soak) runs 2,000 executions; a test runs a small
// one as part of make test.
package soak

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/sfn-approvals/sfn-approvals/internal/faultproxy"
	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
	"github.com/sfn-approvals/sfn-approvals/internal/wait"
)

// Options size the run. Zero values take the defaults noted.
type Options struct {
	stack.Dirs // LogDir: default Root/bin/logs/soak

	Executions  int     // executions started (2,000)
	InvalidRate float64 // share of deliberately invalid requests, which must fail fast (0.02)
	Kills       int     // SIGKILLs of the worker, spread over the start phase (3)
	// RedeemerKills are SIGKILLs of the redeemer, between the worker's
	// (2; negative: none): votes in flight are cut off, some after the
	// deciding vote was claimed, which the next POST must finish.
	RedeemerKills int
	// QuorumRate is the share of valid requests that need 2 of 3
	// approvals (QuorumApprovers, who all approve at once) (0.2).
	QuorumRate  float64
	StartRate   float64 // executions started per second (10)
	Concurrency int     // worker APPROVALS_CONCURRENCY (16)
	Approvers   int     // bot workers acting on emails at once (8)
	// Visibility is the queue's and the worker's visibility timeout (10 s,
	// the worker's minimum): short, so a killed worker's messages, or one
	// whose renewal a latency spike delays, are delivered again.
	Visibility time.Duration
	// MaxReceives is the redrive limit (20): high enough that transient
	// faults do not dead-letter good requests.
	MaxReceives int
	// Settle bounds the wait, after the last execution started, for every
	// execution to end and the queue to drain (10 min).
	Settle time.Duration
	// StallWindow is how long SES's SendEmail accepts and never answers,
	// from a third of the way into the start phase (20 s; negative: none).
	// OperatorWindow follows it: SES answers every SendEmail with
	// SendingPausedException (20 s; negative: none). Neither may fail an
	// execution or leave a call hanging.
	StallWindow, OperatorWindow time.Duration
	// AWSTimeout is both services' APPROVALS_AWS_TIMEOUT (3 s): the cost of
	// one stalled attempt.
	AWSTimeout time.Duration
	// NoFaults turns the fault proxy's random faults off (for comparison
	// runs); the windows stay unless turned off themselves.
	NoFaults bool
	Seed     uint64 // fault draws and the approve/reject mix (1)

	// Ports of the services (defaults 28080, 29091, 29092), apart from
	// those of approvals-dev dev and the end-to-end tests.
	RedeemerAddr, RedeemerAdminAddr, WorkerAdminAddr string
	// ExternalKumo uses an emulator already running (a test's); otherwise
	// one is started, under the same lock the tests take.
	ExternalKumo bool
	// Progress receives a live progress line ("\r..."); nil discards it.
	Progress io.Writer
}

// defaults fills the zero fields; the directories are Prepare's.
func (o *Options) defaults() {
	o.Executions = cmp.Or(o.Executions, 2000)
	o.InvalidRate = cmp.Or(o.InvalidRate, 0.02)
	if o.Kills < 0 {
		o.Kills = 0
	} else {
		o.Kills = cmp.Or(o.Kills, 3)
	}
	if o.RedeemerKills < 0 {
		o.RedeemerKills = 0
	} else {
		o.RedeemerKills = cmp.Or(o.RedeemerKills, 2)
	}
	o.QuorumRate = cmp.Or(o.QuorumRate, 0.2)
	o.StartRate = cmp.Or(o.StartRate, 10)
	o.Concurrency = cmp.Or(o.Concurrency, 16)
	o.Approvers = cmp.Or(o.Approvers, 8)
	o.Visibility = cmp.Or(o.Visibility, 10*time.Second)
	o.MaxReceives = cmp.Or(o.MaxReceives, 20)
	o.Settle = cmp.Or(o.Settle, 10*time.Minute)
	o.StallWindow = cmp.Or(o.StallWindow, 20*time.Second)
	o.OperatorWindow = cmp.Or(o.OperatorWindow, 20*time.Second)
	o.AWSTimeout = cmp.Or(o.AWSTimeout, 3*time.Second)
	o.Seed = cmp.Or(o.Seed, 1)
	o.RedeemerAddr = cmp.Or(o.RedeemerAddr, "127.0.0.1:28080")
	o.RedeemerAdminAddr = cmp.Or(o.RedeemerAdminAddr, "127.0.0.1:29091")
	o.WorkerAdminAddr = cmp.Or(o.WorkerAdminAddr, "127.0.0.1:29092")
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Faults are what the proxy does to the services' AWS calls in a soak.
func Faults() map[faultproxy.Service]faultproxy.Fault {
	return map[faultproxy.Service]faultproxy.Fault{
		// SES: 10% throttling, 2% 5xx, some slow sends and dropped
		// connections.
		faultproxy.SESv2: {Latency: 5 * time.Millisecond, Jitter: 20 * time.Millisecond,
			ThrottleRate: 0.10, ServerErrorRate: 0.02, ResetRate: 0.01,
			SpikeRate: 0.01, Spike: 3 * time.Second, Operations: []string{"SendEmail"}},
		// Step Functions: 5% throttling of the decisions (and of the
		// worker's fail-fast calls).
		faultproxy.SFN: {Latency: 5 * time.Millisecond, Jitter: 10 * time.Millisecond,
			ThrottleRate: 0.05, Operations: []string{"SendTaskSuccess", "SendTaskFailure"}},
		// SQS: rare resets (a delete or receive whose answer is lost) and
		// spikes longer than the visibility timeout, so that some messages
		// are delivered twice.
		faultproxy.SQS: {ResetRate: 0.005, SpikeRate: 0.003, Spike: 12 * time.Second},
	}
}

// Run runs the soak and returns its ledger. The error is about running it
// (start-up, the emulator); a run that breaks a promise returns a ledger
// whose Failures say which.
func Run(ctx context.Context, o Options) (*Ledger, error) {
	o.defaults()
	if err := o.Prepare("soak"); err != nil {
		return nil, err
	}
	unlock, err := kumo.LockUnless(o.ExternalKumo)
	if err != nil {
		return nil, err
	}
	defer unlock()
	proxy, err := faultproxy.New(kumo.Endpoint, o.Seed)
	if err != nil {
		return nil, err
	}
	proxyURL, stopProxy, err := faultproxy.Listen(proxy)
	if err != nil {
		return nil, err
	}
	defer stopProxy()

	vis := fmt.Sprint(int(o.Visibility / time.Second))
	st, err := stack.Up(ctx, stack.Options{
		Dirs: o.Dirs, ExternalKumo: o.ExternalKumo,
		RedeemerAddr: o.RedeemerAddr, RedeemerAdminAddr: o.RedeemerAdminAddr, WorkerAdminAddr: o.WorkerAdminAddr,
		VisibilitySeconds: int(o.Visibility / time.Second), MaxReceives: o.MaxReceives,
		// The services reach AWS through the proxy; the state machine's
		// own SQS calls go to kumo directly.
		WorkerEnv: []string{"AWS_ENDPOINT_URL=" + proxyURL, "APPROVALS_VISIBILITY_TIMEOUT=" + vis + "s",
			fmt.Sprintf("APPROVALS_CONCURRENCY=%d", o.Concurrency), "APPROVALS_SHUTDOWN_GRACE=5s",
			"APPROVALS_AWS_TIMEOUT=" + o.AWSTimeout.String()},
		// The bot is one client: a limit it can meet, with 429s it must
		// honour.
		RedeemerEnv: []string{"AWS_ENDPOINT_URL=" + proxyURL, "APPROVALS_RATE_LIMIT=50", "APPROVALS_RATE_BURST=50",
			"APPROVALS_AWS_TIMEOUT=" + o.AWSTimeout.String()},
	})
	if err != nil {
		return nil, fmt.Errorf("local stack: %w", err)
	}
	defer st.Close()
	if !o.NoFaults {
		for svc, f := range Faults() {
			proxy.Set(svc, f)
		}
	}

	r := newRun(o, st)
	r.proxy = proxy
	l, err := r.run(ctx)
	if l != nil {
		for _, svc := range faultproxy.Services {
			l.Faults[string(svc)] = proxy.Stats(svc)
		}
		l.Cores = runtime.NumCPU()
		l.StallWindow, l.OperatorWindow = max(o.StallWindow, 0), max(o.OperatorWindow, 0)
		l.checkWindows()
	}
	return l, err
}

// run is one soak's shared state.
type run struct {
	o     Options
	st    *stack.Stack
	proxy *faultproxy.Proxy
	rng   *rand.Rand
	runID string

	mu            sync.Mutex
	execs         []*execution // in start order
	bySub         map[string]*execution
	kills         int
	redeemerKills int
}

// execution is one started execution and what the bot saw of it.
type execution struct {
	n       int
	arn     string
	subject string
	invalid bool   // started with a request the worker must refuse
	action  string // approve or reject, for a valid one
	// quorum: a 2-of-3 request to QuorumApprovers, who all approve.
	quorum bool

	// Guarded by run.mu.
	emails        int // approval emails to the approver
	notifications int // outcome emails to the requester
	acted         bool
	decided       string // how the bot's decision ended: recorded, gone-after-retry
	dupChecked    int    // duplicate emails whose link was tried after the decision
	// A quorum request's approvers: their first emails' links, and how
	// each one's vote ended (200, 410).
	quorumLinks  map[string]string
	quorumEmails map[string]int
	quorumDone   map[string]string
}

func newRun(o Options, st *stack.Stack) *run {
	return &run{o: o, st: st, rng: rand.New(rand.NewPCG(o.Seed, 7)), bySub: map[string]*execution{},
		runID: fmt.Sprintf("%x", time.Now().UnixNano()%0xffffff)}
}

func (r *run) run(ctx context.Context) (*Ledger, error) {
	start := time.Now()
	l := newLedger()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	b := newBot(r, l)
	botDone := make(chan struct{})
	go func() { defer close(botDone); b.run(ctx) }()
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); r.progress(ctx, b, start) }()

	windowsDone := make(chan struct{})
	err := r.startAll(ctx, windowsDone)
	if err == nil {
		<-windowsDone
		err = r.settle(ctx, b)
	}
	cancel()
	<-botDone
	<-progressDone
	fmt.Fprintln(r.o.Progress)
	if err != nil && !errors.Is(err, errSettleTimeout) {
		return nil, err
	}
	// The account is taken from AWS (the emulator), not from what the bot
	// believes: every execution described, the outbox and the DLQ read.
	if aerr := r.account(context.WithoutCancel(ctx), l, b); aerr != nil {
		return nil, aerr
	}
	l.Duration = time.Since(start).Round(time.Second)
	return l, nil
}

// startAll starts the executions at StartRate and kills the worker Kills
// times along the way, restarting it each time. A third of the way in it
// opens the SES windows, closing windowsDone when they are over.
func (r *run) startAll(ctx context.Context, windowsDone chan struct{}) error {
	windowsAt := r.o.Executions / 3 // always reached when all are started
	killAt := map[int]bool{}
	for k := 1; k <= r.o.Kills; k++ {
		killAt[r.o.Executions*k/(r.o.Kills+1)] = true
	}
	// The redeemer's kills fall between the worker's, late enough that
	// quorum votes are being cast.
	killRedeemerAt := map[int]bool{}
	for k := 1; k <= r.o.RedeemerKills; k++ {
		killRedeemerAt[r.o.Executions*(2*k+1)/(2*(r.o.RedeemerKills+1))] = true
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.o.StartRate))
	defer tick.Stop()
	for n := 0; n < r.o.Executions; n++ {
		if n == windowsAt {
			go func() { defer close(windowsDone); r.windows(ctx) }()
		}
		if killAt[n] {
			if err := r.killWorker(ctx); err != nil {
				return err
			}
		}
		if killRedeemerAt[n] {
			if err := r.killRedeemer(ctx); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		e := &execution{n: n, subject: fmt.Sprintf("Soak %s #%d: approve change %d", r.runID, n, n)}
		e.invalid = r.rng.Float64() < r.o.InvalidRate
		e.action = "approve"
		if r.rng.IntN(2) == 1 {
			e.action = "reject"
		}
		e.quorum = !e.invalid && r.rng.Float64() < r.o.QuorumRate
		if e.quorum {
			e.action = "approve"
			e.subject = fmt.Sprintf("Soak %s #%d: approve change %d (2 of 3)", r.runID, n, n)
			e.quorumLinks, e.quorumEmails, e.quorumDone = map[string]string{}, map[string]int{}, map[string]string{}
		}
		approvers := []string{"approver@example.com"}
		if e.invalid {
			approvers = []string{"not an address"}
		}
		in := map[string]any{
			"approvers": approvers,
			"requester": []string{"requester@example.com"},
			"subject":   e.subject,
			"details":   map[string]any{"change": n, "run": r.runID},
		}
		start := r.st.StartExecution
		if e.quorum {
			// The requester is among the addresses; the worker leaves them
			// out, so they get no links.
			in["approvers"] = append([]string{requesterAddr}, stack.QuorumApprovers...)
			in["minApprovals"] = 2
			in["requestedBy"] = requesterAddr
			start = r.st.StartQuorumExecution
		}
		arn, err := start(ctx, in)
		if err != nil {
			return err
		}
		e.arn = arn
		r.mu.Lock()
		r.execs = append(r.execs, e)
		r.bySub[e.subject] = e
		r.mu.Unlock()
	}
	return nil
}

// windows stalls SES's SendEmail for StallWindow, then answers it with
// SendingPausedException for OperatorWindow, then puts the usual faults back.
func (r *run) windows(ctx context.Context) {
	normal := faultproxy.Fault{}
	if !r.o.NoFaults {
		normal = Faults()[faultproxy.SESv2]
	}
	defer r.proxy.Set(faultproxy.SESv2, normal)
	send := []string{"SendEmail"}
	if r.o.StallWindow > 0 {
		r.proxy.Set(faultproxy.SESv2, faultproxy.Fault{StallRate: 1, Operations: send})
		if !wait.Sleep(ctx, r.o.StallWindow) {
			return
		}
	}
	if r.o.OperatorWindow > 0 {
		r.proxy.Set(faultproxy.SESv2, faultproxy.Fault{APIErrorRate: 1, APIError: faultproxy.SendingPaused, Operations: send})
		wait.Sleep(ctx, r.o.OperatorWindow)
	}
}

// killWorker sends SIGKILL to the worker, so its in-flight messages are
// abandoned mid-send, and starts it again.
func (r *run) killWorker(ctx context.Context) error {
	if err := r.st.Signal("worker", syscall.SIGKILL); err != nil {
		return err
	}
	_ = r.st.Wait("worker", 30*time.Second) // exits with "signal: killed"
	if err := r.st.Restart(ctx, "worker"); err != nil {
		return fmt.Errorf("restart worker: %w", err)
	}
	r.mu.Lock()
	r.kills++
	r.mu.Unlock()
	return nil
}

// killRedeemer sends SIGKILL to the redeemer, cutting off the POSTs in
// flight (a vote may have claimed its request's decision and not told Step
// Functions yet), and starts it again.
func (r *run) killRedeemer(ctx context.Context) error {
	if err := r.st.Signal("redeemer", syscall.SIGKILL); err != nil {
		return err
	}
	_ = r.st.Wait("redeemer", 30*time.Second)
	if err := r.st.Restart(ctx, "redeemer"); err != nil {
		return fmt.Errorf("restart redeemer: %w", err)
	}
	r.mu.Lock()
	r.redeemerKills++
	r.mu.Unlock()
	return nil
}

var errSettleTimeout = errors.New("executions still running when the settle time ran out")

// settle waits until every execution has ended, the bot has nothing left
// to do and the request queue is empty, or until Settle runs out.
func (r *run) settle(ctx context.Context, b *bot) error {
	deadline := time.Now().Add(r.o.Settle)
	for {
		running, err := r.running(ctx)
		if err != nil {
			return err
		}
		if running == 0 && b.idle() {
			queued, err := r.queued(ctx, r.st.QueueURL)
			if err != nil {
				return err
			}
			if queued == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errSettleTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func (r *run) snapshot() []*execution {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*execution(nil), r.execs...)
}

// progress prints one line, refreshed every second, until ctx ends.
func (r *run) progress(ctx context.Context, b *bot, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		started, kills := len(r.execs), r.kills+r.redeemerKills
		var emails, dups, decided int
		for _, e := range r.execs {
			emails += e.emails
			if e.emails > 1 {
				dups++
			}
			if e.decided != "" {
				decided++
			}
		}
		r.mu.Unlock()
		s := b.stats()
		fmt.Fprintf(r.o.Progress, "\r%4ds  started %d/%d  approval emails %d (requests emailed twice+ %d)  decided %d  429s %d  503s %d  410s on duplicates %d  kills %d   ",
			int(time.Since(start).Seconds()), started, r.o.Executions, emails, dups, decided, s.limited, s.unavailable, s.dupGone, kills)
	}
}
