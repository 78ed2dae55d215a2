package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
	"github.com/sfn-approvals/sfn-approvals/validate"
)

// Config is everything the worker needs; cmd/worker fills it from flags and
// environment variables.
type Config struct {
	QueueURL         string
	Sender           string // From address, "Name <addr>" or bare
	BaseURL          string // the redeemer's public base URL
	Keyring          *link.Keyring
	Concurrency      int
	MetricsAddr      string // admin listener for /metrics and /healthz; empty: none
	TemplatesDir     string // optional overlay of the embedded templates
	ConfigurationSet string // optional SES configuration set
	// VotesTable is the votes table's name (APPROVALS_VOTES_TABLE); the
	// worker never reads it, but requests with minApprovals above 1 are
	// accepted only when the redeemer has one.
	VotesTable    string
	DefaultExpiry time.Duration
	ShutdownGrace time.Duration
	// VisibilityTimeout is asked for at receive and renewed while a
	// message is worked on.
	VisibilityTimeout time.Duration
	// ReceiveWait is the long poll's wait; shutdown lets the receive in
	// progress finish, so it bounds how long a drain waits for the queue.
	ReceiveWait time.Duration
	// AWSTimeout bounds every attempt of every AWS call (SQS, SES, Step
	// Functions), so a silent endpoint costs a retry, not a worker slot for
	// ever; zero means awsx.DefaultTimeout.
	AWSTimeout time.Duration
	// Channels are the chat and webhook channels requests may name
	// (APPROVALS_CHANNELS). Each post has the AWSTimeout deadline too.
	Channels channel.Config

	Logger *slog.Logger
	// AWS overrides the SDK's default configuration chain (tests point it
	// at an emulator); nil means awsx.LoadConfig.
	AWS *aws.Config
}

// Validate checks what the types cannot say.
func (c Config) Validate() error {
	var errs []error
	if c.QueueURL == "" {
		errs = append(errs, errors.New("queue URL is required"))
	}
	if err := CheckSender(c.Sender); err != nil {
		errs = append(errs, err)
	}
	if err := CheckBaseURL(c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.Keyring == nil {
		errs = append(errs, errors.New("signing keys are required"))
	}
	if c.AWSTimeout != 0 {
		if err := awsx.CheckTimeout(c.AWSTimeout); err != nil {
			errs = append(errs, fmt.Errorf("AWS timeout: %w", err))
		}
	}
	if c.DefaultExpiry < 0 || c.DefaultExpiry > MaxExpiry {
		errs = append(errs, fmt.Errorf("default expiry %s is out of range (0, 1 year]", c.DefaultExpiry))
	}
	return errors.Join(errs...)
}

// CheckSender checks that s is one email address, as SES wants for From.
func CheckSender(s string) error {
	if _, err := mail.ParseAddress(s); err != nil {
		return fmt.Errorf("sender %q is not an email address: %w", s, err)
	}
	return nil
}

// CheckBaseURL checks u as the redeemer does (validate.BaseURL), since links
// are built on it.
func CheckBaseURL(u string) error {
	if _, err := validate.BaseURL(u); err != nil {
		return fmt.Errorf("base URL %q %w", u, err)
	}
	return nil
}

// Run starts the admin listener and the pool, and returns nil once ctx has
// ended and in-flight messages are finished or released. Errors are about
// start-up only: configuration, templates, the admin port.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	tmpls, err := LoadTemplates(cfg.TemplatesDir)
	if err != nil {
		return fmt.Errorf("email templates: %w", err)
	}
	var awsCfg aws.Config
	if cfg.AWS != nil {
		awsCfg = *cfg.AWS
	} else if awsCfg, err = awsx.LoadConfig(ctx); err != nil {
		return err
	}
	awsCfg = awsx.WithAttemptTimeout(awsCfg, cmp.Or(cfg.AWSTimeout, awsx.DefaultTimeout))
	defExpiry := cfg.DefaultExpiry
	if defExpiry == 0 {
		defExpiry = DefaultExpiry
	}
	sender, _ := mail.ParseAddress(cfg.Sender)

	reg := metrics.NewRegistry()
	m := metrics.NewWorker(reg)
	pool := &Pool{
		Queue:    sqs.NewFromConfig(awsCfg),
		QueueURL: cfg.QueueURL,
		Handler: &Handler{
			Keyring:          cfg.Keyring,
			BaseURL:          cfg.BaseURL,
			Sender:           formatAddress(*sender),
			ConfigurationSet: cfg.ConfigurationSet,
			Templates:        tmpls,
			DefaultExpiry:    defExpiry,
			VotesTable:       cfg.VotesTable != "",
			// The SDK's default retryer (3 quick attempts) stays on for SES
			// and Step Functions: see Handler.send.
			Email:    sesv2.NewFromConfig(awsCfg),
			Tasks:    sfn.NewFromConfig(awsCfg),
			Channels: cfg.Channels,
			// One post, one attempt: a failed post retries the message.
			Poster:  &channel.Poster{Client: &http.Client{}, Timeout: cmp.Or(cfg.AWSTimeout, awsx.DefaultTimeout)},
			Metrics: m,
			Log:     log,
		},
		Metrics:           m,
		Log:               log,
		Concurrency:       cfg.Concurrency,
		VisibilityTimeout: cfg.VisibilityTimeout,
		ShutdownGrace:     cfg.ShutdownGrace,
		ReceiveWait:       cfg.ReceiveWait,
	}

	// The admin listener outlives ctx until the pool has drained, so
	// /healthz can say "shutting down" and the last metrics can be scraped.
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	var waitAdmin func() error
	if cfg.MetricsAddr != "" {
		waitAdmin, err = metrics.ServeAdmin(adminCtx, cfg.MetricsAddr, metrics.AdminHandler(reg, pool.Healthy), log)
		if err != nil {
			return err
		}
	}

	pool.defaults()
	log.Info("worker started", "queue_url", cfg.QueueURL, "concurrency", pool.Concurrency,
		"templates", tmpls.Names(), "key_ids", cfg.Keyring.KeyIDs(), "channels", cfg.Channels)
	err = pool.Run(ctx)
	log.Info("worker stopped")
	stopAdmin()
	if waitAdmin != nil {
		if aerr := waitAdmin(); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}
	return err
}
