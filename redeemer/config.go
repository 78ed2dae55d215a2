package redeemer

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/templates"
	"github.com/sfn-approvals/sfn-approvals/validate"
	"github.com/sfn-approvals/sfn-approvals/votes"
)

// Config is everything the redeemer needs. cmd/redeemer fills it from flags
// and environment variables; tests build it directly.
type Config struct {
	// BaseURL is the public URL links are minted under
	// (APPROVALS_BASE_URL). Its path, if any, prefixes every route, so the
	// service can sit behind a load balancer rule such as /approvals/*.
	BaseURL string
	// Keyring opens links (APPROVALS_SIGNING_KEYS).
	Keyring *link.Keyring
	// ListenAddr serves links and /healthz (APPROVALS_LISTEN_ADDR).
	ListenAddr string
	// MetricsAddr serves /metrics and /healthz (APPROVALS_METRICS_ADDR).
	MetricsAddr string
	// Templates holds pages/*.html.tmpl and pages/style.css; nil means the
	// embedded ones (APPROVALS_TEMPLATES_DIR overlays them).
	Templates fs.FS

	// VotesTable is the DynamoDB votes table (APPROVALS_VOTES_TABLE). With
	// it, every decision goes through the table (votes.Store): quorums,
	// vetoes, one vote per approver, and a gone page that names who
	// decided. Empty: the first decision completes the task, as before.
	VotesTable string
	// VotesClient reaches the table; Run builds it from the AWS
	// configuration. Required with VotesTable.
	VotesClient votes.Table

	// Retry bounds the Step Functions retries of one POST; zero means
	// awsx.DefaultRetryPolicy (about 20 s in all).
	Retry awsx.RetryPolicy
	// AttemptTimeout bounds each attempt of a Step Functions call, so a
	// connection that hangs costs one attempt rather than the whole budget
	// (APPROVALS_AWS_TIMEOUT, shared with the worker). Zero means
	// awsx.DefaultTimeout.
	AttemptTimeout time.Duration
	// ShutdownTimeout is how long Run waits for in-flight requests after its
	// context ends. Zero means 25 s: longer than the retry budget, shorter
	// than ECS's default 30 s stop timeout.
	ShutdownTimeout time.Duration
	// RateLimit is the sustained requests per second one client may make
	// to the link routes (APPROVALS_RATE_LIMIT). Zero means
	// DefaultRateLimit, as every zero in Config means its default;
	// RateLimitOff turns the limit off. RateBurst is how many it may make
	// at once (APPROVALS_RATE_BURST); zero means DefaultRateBurst.
	RateLimit float64
	RateBurst int
	// TrustProxyHeaders takes the client's address from the last entry of
	// X-Forwarded-For, as a load balancer appends it
	// (APPROVALS_TRUST_PROXY_HEADERS). Only for a redeemer that nothing but
	// the load balancer can reach: otherwise a client picks its own address.
	TrustProxyHeaders bool

	// Identity says who the approver is (APPROVALS_IDENTITY): IdentityLink
	// (or empty), the link's recipient, whoever holds the link; IdentityALB,
	// the user the load balancer signed in, who must be that recipient.
	Identity string
	// ALB is the sign-in check of IdentityALB: ALB.ALBARN
	// (APPROVALS_ALB_ARN) is required, ALB.KeysURL (APPROVALS_ALB_KEYS_URL)
	// defaults to the ARN's region's key endpoint.
	ALB identity.Config

	// Server timeouts of Run and Serve; zero means the defaults below.
	// Tests shorten them.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger is used by Run; nil means JSON on stderr.
	Logger *slog.Logger
}

// Values of Config.Identity.
const (
	IdentityLink = "link"
	IdentityALB  = "alb"
)

// Limits of what an approver can send.
const (
	// MaxCommentRunes is the longest comment accepted, in characters.
	MaxCommentRunes = 1000
	// maxBody bounds a request body: a form with a maximal comment of
	// four-byte characters, percent-encoded, is about 12 KiB.
	maxBody = 16 << 10
)

func (c *Config) withDefaults() {
	if c.Retry == (awsx.RetryPolicy{}) {
		c.Retry = awsx.DefaultRetryPolicy
	}
	if c.Retry.MaxElapsed <= 0 {
		// The budget also bounds the detached context of a POST, so it
		// must be finite.
		c.Retry.MaxElapsed = awsx.DefaultRetryPolicy.MaxElapsed
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = awsx.DefaultTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 25 * time.Second
	}
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.RateBurst <= 0 {
		c.RateBurst = DefaultRateBurst
	}
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.ReadHeaderTimeout, readHeaderTimeout)
	def(&c.ReadTimeout, readTimeout)
	def(&c.WriteTimeout, writeTimeout)
	def(&c.IdleTimeout, idleTimeout)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Templates == nil {
		c.Templates = templates.Embedded()
	}
}

// basePath checks BaseURL as the worker does (validate.BaseURL) and returns
// its path without a trailing slash ("" for a URL at the root).
func basePath(baseURL string) (string, error) {
	u, err := validate.BaseURL(baseURL)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(u.EscapedPath(), "/"), nil
}

// ValidateBaseURL reports whether s can be the redeemer's public base URL.
func ValidateBaseURL(s string) error {
	_, err := basePath(s)
	return err
}

func (c Config) validate() error {
	var errs []error
	if _, err := basePath(c.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("base URL %q %w", c.BaseURL, err))
	}
	if c.Keyring == nil {
		errs = append(errs, errors.New("no keyring"))
	}
	switch c.Identity {
	case "", IdentityLink, IdentityALB: // New checks c.ALB
	default:
		errs = append(errs, fmt.Errorf("identity %q is neither %s nor %s", c.Identity, IdentityLink, IdentityALB))
	}
	return errors.Join(errs...)
}
