// Command worker sends approval emails: it long-polls the request queue,
// mints each recipient's signed links and sends the emails with SES v2.
// Every flag has an environment variable (shown in -h); see the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/internal/envflag"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.LookupEnv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := worker.Run(ctx, cfg); err != nil {
		cfg.Logger.Error("worker failed", "error", err)
		os.Exit(1)
	}
}

func parseConfig(args []string, lookup func(string) (string, bool), stderr io.Writer) (worker.Config, error) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := envflag.New(fs, lookup)
	var cfg worker.Config
	var keys, channels string
	s.String(&cfg.QueueURL, "queue-url", "APPROVALS_QUEUE_URL", "", "URL of the SQS queue of approval requests", true)
	s.String(&cfg.Sender, "sender", "APPROVALS_SENDER", "", "From address of the emails, verified in SES", true)
	s.String(&cfg.BaseURL, "base-url", "APPROVALS_BASE_URL", "", "public base URL of the redeemer, which links point to", true)
	s.String(&keys, "signing-keys", "APPROVALS_SIGNING_KEYS", "", "keyring kid1:base64key,kid2:base64key; the first mints links", true)
	s.Int(&cfg.Concurrency, "concurrency", "APPROVALS_CONCURRENCY", worker.DefaultConcurrency, "messages handled at once", 1, 1000)
	s.String(&cfg.MetricsAddr, "metrics-addr", "APPROVALS_METRICS_ADDR", ":9090", "admin listener for /metrics and /healthz", false)
	s.String(&cfg.TemplatesDir, "templates-dir", "APPROVALS_TEMPLATES_DIR", "", "directory whose email/NAME.{html,txt}.tmpl override or add to the embedded templates", false)
	s.String(&cfg.ConfigurationSet, "configuration-set", "APPROVALS_CONFIGURATION_SET", "", "SES configuration set for sent emails (optional)", false)
	s.String(&cfg.VotesTable, "votes-table", "APPROVALS_VOTES_TABLE", "", "DynamoDB votes table, as the redeemer has it; without one a request may not ask for minApprovals above 1", false)
	s.Duration(&cfg.DefaultExpiry, "default-expiry", "APPROVALS_DEFAULT_EXPIRY", worker.DefaultExpiry, "link lifetime when a request gives neither expiresIn nor expiresAt", time.Minute, worker.MaxExpiry)
	s.Duration(&cfg.ShutdownGrace, "shutdown-grace", "APPROVALS_SHUTDOWN_GRACE", worker.DefaultShutdownGrace, "time in-flight messages get to finish after SIGTERM", time.Second, 10*time.Minute)
	s.Duration(&cfg.ReceiveWait, "receive-wait", "APPROVALS_RECEIVE_WAIT", worker.DefaultReceiveWait, "long-poll wait of each receive; a shutdown lets the one in progress finish", time.Second, worker.DefaultReceiveWait)
	s.Duration(&cfg.VisibilityTimeout, "visibility-timeout", "APPROVALS_VISIBILITY_TIMEOUT", worker.DefaultVisibilityTimeout, "visibility timeout asked for at receive, renewed every third of it while a message is handled", 10*time.Second, 12*time.Hour)
	s.Duration(&cfg.AWSTimeout, "aws-timeout", "APPROVALS_AWS_TIMEOUT", awsx.DefaultTimeout, "deadline of each AWS call attempt and each channel post; a call past it is retried", awsx.MinTimeout, awsx.MaxTimeout)
	s.String(&channels, "channels", "APPROVALS_CHANNELS", "", `channels requests may post to: JSON {"NAME": {"type": "slack"|"teams"|"webhook", "url": ..., "secret": ...}}, or @FILE`, false)
	s.Check(func() error {
		if keys == "" {
			return nil // reported as required already
		}
		kr, err := link.ParseKeyring(keys)
		if err != nil {
			return fmt.Errorf("APPROVALS_SIGNING_KEYS: %w", err)
		}
		cfg.Keyring = kr
		return nil
	})
	s.Check(func() error {
		cc, err := channel.Parse(channels)
		if err != nil {
			// Parse names channels, never URLs or secrets.
			return fmt.Errorf("APPROVALS_CHANNELS: %w", err)
		}
		cfg.Channels = cc
		return nil
	})
	s.Check(func() error {
		if cfg.Sender == "" {
			return nil
		}
		if err := worker.CheckSender(cfg.Sender); err != nil {
			return fmt.Errorf("APPROVALS_SENDER: %w", err)
		}
		return nil
	})
	s.Check(func() error {
		if cfg.BaseURL == "" {
			return nil
		}
		if err := worker.CheckBaseURL(cfg.BaseURL); err != nil {
			return fmt.Errorf("APPROVALS_BASE_URL: %w", err)
		}
		return nil
	})
	if err := s.Parse(args); err != nil {
		return worker.Config{}, err
	}
	return cfg, nil
}
