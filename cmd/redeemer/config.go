package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

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
		rateLimit    int
		trustProxy   string
	)
	e := envflag.New(fs, lookup)
	e.String(&cfg.BaseURL, "base-url", "APPROVALS_BASE_URL", "", "public base URL of the redeemer, as links are minted under it (required)", true)
	e.String(&keys, "signing-keys", "APPROVALS_SIGNING_KEYS", "", "keyring kid1:base64key,kid2:base64key, the first mints, all verify (required)", true)
	e.String(&cfg.ListenAddr, "listen-addr", "APPROVALS_LISTEN_ADDR", ":8080", "address for links and /healthz", false)
	e.String(&cfg.MetricsAddr, "metrics-addr", "APPROVALS_METRICS_ADDR", ":9090", "admin address for /metrics and /healthz", false)
	e.String(&templatesDir, "templates-dir", "APPROVALS_TEMPLATES_DIR", "", "directory overriding the embedded templates (pages/*.html.tmpl, pages/style.css)", false)
	e.Int(&rateLimit, "rate-limit", "APPROVALS_RATE_LIMIT", redeemer.DefaultRateLimit, "requests per second one client may make to the link routes, sustained; 0 turns the limit off", 0, 1_000_000)
	e.Int(&cfg.RateBurst, "rate-burst", "APPROVALS_RATE_BURST", redeemer.DefaultRateBurst, "requests one client may make to the link routes at once", 1, 1_000_000)
	e.String(&trustProxy, "trust-proxy-headers", "APPROVALS_TRUST_PROXY_HEADERS", "false", "true behind a load balancer: the client is the last X-Forwarded-For entry (only if nothing else can reach the redeemer)", false)
	e.Check(func() error {
		cfg.RateLimit = float64(rateLimit)
		if rateLimit == 0 {
			cfg.RateLimit = -1 // off; zero in Config means the default
		}
		v, err := strconv.ParseBool(trustProxy)
		if err != nil {
			return fmt.Errorf("APPROVALS_TRUST_PROXY_HEADERS: %q is not true or false", trustProxy)
		}
		cfg.TrustProxyHeaders = v
		return nil
	})
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
