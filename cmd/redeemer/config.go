package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/internal/envflag"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/redeemer"
	"github.com/sfn-approvals/sfn-approvals/templates"
)

// parseConfig reads flags from args and APPROVALS_* variables through
// lookup. Every error names the variable at fault; none echoes a key.
func parseConfig(args []string, lookup func(string) (string, bool)) (redeemer.Config, error) {
	return parseConfigTo(args, lookup, os.Stderr)
}

func parseConfigTo(args []string, lookup func(string) (string, bool), usage io.Writer) (redeemer.Config, error) {
	fs := flag.NewFlagSet("redeemer", flag.ContinueOnError)
	fs.SetOutput(usage)
	var (
		cfg          redeemer.Config
		keys         string
		templatesDir string
		rateLimit    string
		trustProxy   string
	)
	e := envflag.New(fs, lookup)
	e.String(&cfg.BaseURL, "base-url", "APPROVALS_BASE_URL", "", "public base URL of the redeemer, as links are minted under it (required)", true)
	e.String(&keys, "signing-keys", "APPROVALS_SIGNING_KEYS", "", "keyring kid1:base64key,kid2:base64key, the first mints, all verify (required)", true)
	e.String(&cfg.ListenAddr, "listen-addr", "APPROVALS_LISTEN_ADDR", ":8080", "address for links and /healthz", false)
	e.String(&cfg.MetricsAddr, "metrics-addr", "APPROVALS_METRICS_ADDR", ":9090", "admin address for /metrics and /healthz", false)
	e.String(&templatesDir, "templates-dir", "APPROVALS_TEMPLATES_DIR", "", "directory overriding the embedded templates (pages/*.html.tmpl, pages/style.css)", false)
	e.String(&rateLimit, "rate-limit", "APPROVALS_RATE_LIMIT", strconv.Itoa(redeemer.DefaultRateLimit), "requests per second one client may make to the link routes, sustained, 1 to 1000000; off (or 0) turns the limit off", false)
	e.Int(&cfg.RateBurst, "rate-burst", "APPROVALS_RATE_BURST", redeemer.DefaultRateBurst, "requests one client may make to the link routes at once", 1, 1_000_000)
	e.String(&trustProxy, "trust-proxy-headers", "APPROVALS_TRUST_PROXY_HEADERS", "false", "true behind a load balancer: the client is the last X-Forwarded-For entry (only if nothing else can reach the redeemer)", false)
	e.String(&cfg.Identity, "identity", "APPROVALS_IDENTITY", redeemer.IdentityLink, "who the approver is: link (whoever holds the link) or alb (the user the load balancer signed in, who must be the link's recipient)", false)
	e.String(&cfg.ALB.ALBARN, "alb-arn", "APPROVALS_ALB_ARN", "", "ARN of the load balancer that signs users in (required with identity alb)", false)
	e.String(&cfg.ALB.KeysURL, "alb-keys-url", "APPROVALS_ALB_KEYS_URL", "", "where the load balancer's public keys are fetched, as URL/{kid} (default https://public-keys.auth.elb.REGION.amazonaws.com, REGION from the ARN)", false)
	e.String(&cfg.VotesTable, "votes-table", "APPROVALS_VOTES_TABLE", "", "DynamoDB votes table (pk, sk strings; TTL ttl): every decision goes through it, M-of-N approvals and vetoes; checked at start", false)
	e.Duration(&cfg.AttemptTimeout, "aws-timeout", "APPROVALS_AWS_TIMEOUT", awsx.DefaultTimeout, "deadline of each Step Functions call attempt; a call past it is retried within the decision's budget", awsx.MinTimeout, awsx.MaxTimeout)
	e.Check(func() error {
		limit, err := parseRateLimit(rateLimit)
		if err != nil {
			return fmt.Errorf("APPROVALS_RATE_LIMIT (-rate-limit): %w", err)
		}
		cfg.RateLimit = limit
		v, err := strconv.ParseBool(trustProxy)
		if err != nil {
			return fmt.Errorf("APPROVALS_TRUST_PROXY_HEADERS: %q is not true or false", trustProxy)
		}
		cfg.TrustProxyHeaders = v
		return nil
	})
	e.Check(func() error { return checkIdentity(cfg.Identity, cfg.ALB) })
	e.Check(func() error {
		if cfg.BaseURL == "" {
			return nil // reported as required
		}
		if err := redeemer.ValidateBaseURL(cfg.BaseURL); err != nil {
			return fmt.Errorf("APPROVALS_BASE_URL: %w", err)
		}
		return nil
	})
	e.Check(func() error {
		if keys == "" {
			return nil
		}
		kr, err := link.ParseKeyring(keys)
		if err != nil {
			// link.ParseKeyring names keys by position and id, never by value.
			return fmt.Errorf("APPROVALS_SIGNING_KEYS: %w", err)
		}
		cfg.Keyring = kr
		return nil
	})
	e.Check(func() error {
		fsys, err := templates.FS(templatesDir)
		if err != nil {
			return fmt.Errorf("APPROVALS_TEMPLATES_DIR: %w", err)
		}
		if err := redeemer.CheckTemplates(fsys); err != nil {
			return fmt.Errorf("APPROVALS_TEMPLATES_DIR: %w", err)
		}
		cfg.Templates = fsys
		return nil
	})
	if err := e.Parse(args); err != nil {
		return redeemer.Config{}, err
	}
	return cfg, nil
}

// checkIdentity checks APPROVALS_IDENTITY and, with alb, the variables it
// needs, so that each error names its own variable.
func checkIdentity(mode string, alb identity.Config) error {
	switch mode {
	case redeemer.IdentityLink:
		if alb.ALBARN != "" || alb.KeysURL != "" {
			// Someone meant to verify sign-ins; running without would
			// let anyone holding a link decide.
			return errors.New("APPROVALS_ALB_ARN and APPROVALS_ALB_KEYS_URL need APPROVALS_IDENTITY=alb")
		}
		return nil
	case redeemer.IdentityALB:
	default:
		return fmt.Errorf("APPROVALS_IDENTITY: %q is neither link nor alb", mode)
	}
	if alb.ALBARN == "" {
		return errors.New("APPROVALS_ALB_ARN: required with APPROVALS_IDENTITY=alb")
	}
	// With a keys URL that is surely valid, any error is the ARN's.
	if _, err := identity.New(identity.Config{ALBARN: alb.ALBARN, KeysURL: "https://keys.example.com"}); err != nil {
		return fmt.Errorf("APPROVALS_ALB_ARN: %w", err)
	}
	if _, err := identity.New(alb); err != nil {
		return fmt.Errorf("APPROVALS_ALB_KEYS_URL: %w", err)
	}
	return nil
}

// parseRateLimit reads APPROVALS_RATE_LIMIT: a rate, or "off". An unset
// variable is the default, so 0 cannot mean that here; it meant "off" before
// "off" was spelled out, and still does.
func parseRateLimit(v string) (float64, error) {
	if strings.EqualFold(v, "off") {
		return redeemer.RateLimitOff, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a whole number nor off", v)
	}
	switch {
	case n == 0:
		return redeemer.RateLimitOff, nil
	case n < 0 || n > 1_000_000:
		return 0, fmt.Errorf("%d is out of range [1, 1000000] (or off)", n)
	}
	return float64(n), nil
}
