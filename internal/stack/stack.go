// Package stack runs the whole product on one machine: the kumo emulator,
// the request queue with its DLQ, the example state machine from deploy/,
// and the real worker and redeemer binaries. `approvals-dev dev` and the
// end-to-end tests both use it, so what a newcomer sees is what is tested.
package stack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// StateMachineFile is the example definition, relative to the repository
// root; deploy/ ships the same file.
const StateMachineFile = "deploy/statemachines/approval.asl.json"

// Options configure Up. Zero values take the defaults noted.
type Options struct {
	Dirs                // LogDir: default Root/bin/logs
	RedeemerAddr string // default 127.0.0.1:8080
	// Admin (metrics) listeners of the redeemer and the worker.
	RedeemerAdminAddr string // default 127.0.0.1:9091
	WorkerAdminAddr   string // default 127.0.0.1:9092
	// ChannelsAddr is where the Slack, Teams and webhook receivers listen
	// (default 127.0.0.1:0, any free port: the worker is told the URLs).
	ChannelsAddr      string
	Sender            string // default approvals@example.com
	SigningKeys       string // default: a fresh key
	MaxReceives       int    // redrive to the DLQ after this many receives (default 5)
	VisibilitySeconds int    // queue visibility timeout (default 30)
	WorkerEnv         []string
	RedeemerEnv       []string
	// Progress is told about each step ("emulator ready", ...).
	Progress func(string)
	// ExternalKumo uses an emulator already listening on its port (tests
	// that start it themselves) instead of starting one.
	ExternalKumo bool
}

// Stack is a running local stack.
type Stack struct {
	Options
	Config          aws.Config
	SQS             *sqs.Client
	SFN             *sfn.Client
	QueueURL        string
	DLQURL          string
	StateMachineARN string
	// ChannelStateMachineARN runs the same flow, posting to the channels
	// the input names too (ChannelDefinition).
	ChannelStateMachineARN string
	// QuorumStateMachineARN runs the same flow with the approver policy
	// from the input (QuorumDefinition); VotesTable is the table both
	// services are given.
	QuorumStateMachineARN string
	VotesTable            string
	RedeemerURL           string
	Keyring               *link.Keyring

	procs    []*proc
	channels *receivers
}

type proc struct {
	name   string
	svc    *Service // nil for the emulator, which stopFn stops
	stopFn func()
	log    *os.File // the emulator's; a Service closes its own
	// What start was given, so Restart can start the service again.
	adminAddr string
	env       []string
}

// defaults fills the zero fields; the directories are Prepare's.
func (o *Options) defaults() error {
	o.RedeemerAddr = cmp.Or(o.RedeemerAddr, "127.0.0.1:8080")
	o.RedeemerAdminAddr = cmp.Or(o.RedeemerAdminAddr, "127.0.0.1:9091")
	o.WorkerAdminAddr = cmp.Or(o.WorkerAdminAddr, "127.0.0.1:9092")
	o.ChannelsAddr = cmp.Or(o.ChannelsAddr, "127.0.0.1:0")
	o.Sender = cmp.Or(o.Sender, "approvals@example.com")
	if o.SigningKeys == "" {
		k, err := link.GenerateKey()
		if err != nil {
			return err
		}
		o.SigningKeys = k
	}
	o.MaxReceives = cmp.Or(o.MaxReceives, 5)
	o.VisibilitySeconds = cmp.Or(o.VisibilitySeconds, 30)
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	return nil
}

// Up starts everything and returns once the services answer their health
// checks. On error, whatever was started is stopped again.
func Up(ctx context.Context, o Options) (_ *Stack, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := o.Prepare(""); err != nil {
		return nil, err
	}
	kr, err := link.ParseKeyring(o.SigningKeys)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	s := &Stack{Options: o, Keyring: kr, RedeemerURL: "http://" + o.RedeemerAddr}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	for _, addr := range []string{o.RedeemerAddr, o.RedeemerAdminAddr, o.WorkerAdminAddr} {
		if err := portFree(addr); err != nil {
			return nil, err
		}
	}

	if !o.ExternalKumo {
		klog, err := os.Create(filepath.Join(o.LogDir, "kumo.log"))
		if err != nil {
			return nil, err
		}
		stop, err := kumo.Start(o.Root, klog)
		if err != nil {
			klog.Close()
			return nil, err
		}
		s.procs = append(s.procs, &proc{name: "kumo", log: klog, stopFn: stop})
	}
	o.Progress(fmt.Sprintf("emulator ready on %s", kumo.Endpoint))

	s.Config = kumo.Config()
	s.SQS, s.SFN = sqs.NewFromConfig(s.Config), sfn.NewFromConfig(s.Config)
	if err := s.createQueues(ctx); err != nil {
		return nil, err
	}
	o.Progress("queue created: " + s.QueueURL + " (DLQ after " + fmt.Sprint(o.MaxReceives) + " receives)")
	if s.StateMachineARN, err = s.createStateMachine(ctx, "approval", "state machine", nil); err != nil {
		return nil, err
	}
	o.Progress("state machine created: " + s.StateMachineARN)
	if s.ChannelStateMachineARN, err = s.createStateMachine(ctx, "approval-channels", "the channels state machine", ChannelDefinition); err != nil {
		return nil, err
	}
	if err := s.createVotesTable(ctx); err != nil {
		return nil, err
	}
	if s.QuorumStateMachineARN, err = s.createStateMachine(ctx, "approval-quorum", "the quorum state machine", QuorumDefinition); err != nil {
		return nil, err
	}
	o.Progress("votes table created: " + s.VotesTable + " (2-of-3 requests: " + s.QuorumStateMachineARN + ")")
	channels, err := s.startChannels(o.ChannelsAddr)
	if err != nil {
		return nil, err
	}
	o.Progress("channel receivers ready: Slack " + SlackChannel + ", Teams " + TeamsChannel + ", webhook " + WebhookChannel)

	common := append(kumo.Env(),
		"APPROVALS_BASE_URL="+s.RedeemerURL,
		"APPROVALS_SIGNING_KEYS="+o.SigningKeys,
		"APPROVALS_VOTES_TABLE="+s.VotesTable,
	)
	if err := s.start(ctx, "redeemer", o.RedeemerAdminAddr, append(append(common,
		"APPROVALS_LISTEN_ADDR="+o.RedeemerAddr,
		"APPROVALS_METRICS_ADDR="+o.RedeemerAdminAddr,
	), o.RedeemerEnv...)); err != nil {
		return nil, err
	}
	o.Progress("redeemer ready on " + s.RedeemerURL)
	if err := s.start(ctx, "worker", o.WorkerAdminAddr, append(append(common,
		"APPROVALS_QUEUE_URL="+s.QueueURL,
		"APPROVALS_SENDER="+o.Sender,
		"APPROVALS_METRICS_ADDR="+o.WorkerAdminAddr,
		// Short long polls: Close gives the worker 10 s to drain, and its
		// drain lets the receive in progress finish.
		"APPROVALS_RECEIVE_WAIT=1s",
		"APPROVALS_CHANNELS="+channels,
	), o.WorkerEnv...)); err != nil {
		return nil, err
	}
	o.Progress("worker ready, polling the queue")
	return s, nil
}

func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("port %s is taken (%v); stop what listens there or choose another address", addr, err)
	}
	return ln.Close()
}

func (s *Stack) createQueues(ctx context.Context) error {
	name := fmt.Sprintf("approval-requests-%d", time.Now().UnixNano()%1e9)
	dlq, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		return fmt.Errorf("create DLQ: %w", err)
	}
	attrs, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("DLQ attributes: %w", err)
	}
	policy := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, attrs.Attributes["QueueArn"], s.MaxReceives)
	q, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		"RedrivePolicy": policy, "VisibilityTimeout": fmt.Sprint(s.VisibilitySeconds)}})
	if err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	s.QueueURL, s.DLQURL = *q.QueueUrl, *dlq.QueueUrl
	return nil
}

// Definition reads the example state machine and fills in the queue URL, as
// CloudFormation's DefinitionSubstitutions does in a deployment.
func Definition(root, queueURL string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, StateMachineFile))
	if err != nil {
		return "", err
	}
	def := strings.ReplaceAll(string(b), "${QueueUrl}", queueURL)
	if !json.Valid([]byte(def)) {
		return "", fmt.Errorf("%s is not valid JSON", StateMachineFile)
	}
	return def, nil
}

// editMessageBody applies edit to the MessageBody of def's RequestApproval
// task: the variants of the example state machine change only that.
func editMessageBody(def string, edit func(body map[string]any)) (string, error) {
	var doc map[string]any
	if err := json.Unmarshal([]byte(def), &doc); err != nil {
		return "", err
	}
	states, _ := doc["States"].(map[string]any)
	task, _ := states["RequestApproval"].(map[string]any)
	params, _ := task["Parameters"].(map[string]any)
	body, ok := params["MessageBody"].(map[string]any)
	if !ok {
		return "", errors.New("the example state machine has no RequestApproval.Parameters.MessageBody")
	}
	edit(body)
	b, err := json.Marshal(doc)
	return string(b), err
}

// createStateMachine creates the example state machine, changed by variant
// when it is not nil, under a name starting with prefix, and returns its
// ARN; what names it in the error.
func (s *Stack) createStateMachine(ctx context.Context, prefix, what string, variant func(string) (string, error)) (string, error) {
	def, err := Definition(s.Root, s.QueueURL)
	if err != nil {
		return "", err
	}
	if variant != nil {
		if def, err = variant(def); err != nil {
			return "", err
		}
	}
	out, err := s.SFN.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{
		Name:       aws.String(fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e9)),
		Definition: aws.String(def),
		RoleArn:    aws.String("arn:aws:iam::000000000000:role/approvals-state-machine"),
	})
	if err != nil {
		return "", fmt.Errorf("create %s: %w", what, err)
	}
	return *out.StateMachineArn, nil
}

// start runs a service binary and waits for its /healthz on adminAddr.
func (s *Stack) start(ctx context.Context, name, adminAddr string, env []string) error {
	return s.startLog(ctx, name, adminAddr, env, os.O_TRUNC)
}

// startLog is start with the log file opened with mode (os.O_TRUNC for a
// fresh log, os.O_APPEND to continue one).
func (s *Stack) startLog(ctx context.Context, name, adminAddr string, env []string, mode int) error {
	lf, err := os.OpenFile(filepath.Join(s.LogDir, name+".log"), os.O_CREATE|os.O_WRONLY|mode, 0o644)
	if err != nil {
		return err
	}
	svc, err := StartService(ctx, filepath.Join(s.BinDir, name), lf, adminAddr, env)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, &proc{name: name, svc: svc, adminAddr: adminAddr, env: env})
	return nil
}

// Signal sends sig to one service ("worker" or "redeemer").
func (s *Stack) Signal(name string, sig syscall.Signal) error {
	for _, p := range s.procs {
		if p.name == name && p.svc != nil {
			return p.svc.Signal(sig)
		}
	}
	return fmt.Errorf("no process %q", name)
}

// Wait waits for one service to exit and returns its exit error.
func (s *Stack) Wait(name string, timeout time.Duration) error {
	for _, p := range s.procs {
		if p.name == name && p.svc != nil {
			select {
			case <-p.svc.Done():
				return p.svc.Err()
			case <-time.After(timeout):
				return fmt.Errorf("%s still running after %s", name, timeout)
			}
		}
	}
	return fmt.Errorf("no process %q", name)
}

// Restart starts a service again, with the same settings, after it has
// exited (a test killed it); its log goes on in the same file. It returns
// once the service answers its health check.
func (s *Stack) Restart(ctx context.Context, name string) error {
	for i, p := range s.procs {
		if p.name != name || p.svc == nil {
			continue
		}
		select {
		case <-p.svc.Done():
		default:
			return fmt.Errorf("%s is still running; stop it before Restart", name)
		}
		s.procs = append(s.procs[:i:i], s.procs[i+1:]...)
		return s.startLog(ctx, name, p.adminAddr, p.env, os.O_APPEND)
	}
	return fmt.Errorf("no process %q", name)
}

// Close stops the services (SIGTERM, then SIGKILL after 10 s) and the
// emulator, in reverse order of start.
func (s *Stack) Close() error {
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		if p.stopFn != nil {
			p.stopFn()
		} else if p.svc != nil {
			// A service a test killed has exited with an error already;
			// only a failure to stop counts.
			var ee *exec.ExitError
			if _, err := p.svc.Stop(10 * time.Second); err != nil && !errors.As(err, &ee) {
				errs = append(errs, err)
			}
		}
		if p.log != nil {
			p.log.Close()
		}
	}
	s.procs = nil
	return errors.Join(errs...)
}

// Logs returns a service's log so far.
func (s *Stack) Logs(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.LogDir, name+".log"))
	return string(b)
}
