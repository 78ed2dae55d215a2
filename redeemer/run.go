package redeemer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// Server timeouts. WriteTimeout must outlast the retry budget of a POST
// (about 20 s), or a slow decision would be cut off before its page.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 40 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 32 << 10 // a link is under 2,300 characters
)

// Run serves the redeemer until ctx ends, then drains as Serve describes,
// while the admin listener keeps serving /metrics and a 503 /healthz. It
// returns nil after a clean drain.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	awsCfg, err := awsx.LoadConfig(ctx)
	if err != nil {
		return err
	}
	// Every attempt, down to resolving credentials and reading the answer,
	// has the deadline; decide.go bounds the same attempts for clients
	// built without it.
	awsCfg = awsx.WithAttemptTimeout(awsCfg, cmp.Or(cfg.AttemptTimeout, awsx.DefaultTimeout))
	// Retries are ours (awsx.Retry, bounded by the POST's budget); the SDK's
	// own, stacked underneath, would multiply attempts and blow the budget.
	client := sfn.NewFromConfig(awsCfg, func(o *sfn.Options) { o.Retryer = aws.NopRetryer{} })

	if cfg.VotesTable != "" && cfg.VotesClient == nil {
		// The SDK's own retries stay on for the table: its calls are single
		// conditional writes and reads, safe to repeat (a repeated write
		// that had succeeded loses its condition, which the store reads as
		// "look again").
		cfg.VotesClient = dynamodb.NewFromConfig(awsCfg)
	}

	reg := metrics.NewRegistry()
	s, err := New(cfg, client, reg, log)
	if err != nil {
		return err
	}
	if err := s.CheckVotes(ctx); err != nil {
		return fmt.Errorf("APPROVALS_VOTES_TABLE: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	waitAdmin, err := metrics.ServeAdmin(adminCtx, s.cfg.MetricsAddr, metrics.AdminHandler(reg, s.Healthy), log)
	if err != nil {
		ln.Close()
		return err
	}
	err = s.Serve(ctx, ln)
	// The admin listener outlives the drain, so /metrics shows it.
	stopAdmin()
	if aerr := waitAdmin(); aerr != nil && err == nil {
		err = fmt.Errorf("admin listener: %w", aerr)
	}
	return err
}

// Serve serves s on ln until ctx ends, then drains: it closes ln at once,
// closes idle connections, and gives requests in flight (a POST may be
// retrying Step Functions) up to cfg.ShutdownTimeout to finish.
//
// Closing at once is right on ECS: a service's task is deregistered from
// its target group, and drained for the group's deregistration_delay, before
// it gets SIGTERM, so by then the load balancer sends it nothing new, and
// a health check could not change that. Keeping the listener open would
// only spend the stop timeout that requests in flight need.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	s.log.Info("redeemer listening", "addr", ln.Addr().String())

	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.Drain()
	s.log.Info("draining", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	s.log.Info("drained")
	return nil
}
