package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sfn-approvals/sfn-approvals/redeemer"
)

const goodKeys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfig(t *testing.T) {
	cfg, err := parseConfigTo(nil, env(map[string]string{
		"APPROVALS_BASE_URL":     "https://approvals.example.com",
		"APPROVALS_SIGNING_KEYS": goodKeys,
		"APPROVALS_LISTEN_ADDR":  ":8181",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BaseURL != "https://approvals.example.com" || cfg.ListenAddr != ":8181" || cfg.MetricsAddr != ":9090" ||
		cfg.Keyring == nil || cfg.Templates == nil || cfg.AttemptTimeout != 10*time.Second {
		t.Errorf("config = %+v", cfg)
	}

	// A flag wins over its variable.
	cfg, err = parseConfigTo([]string{"-metrics-addr", "127.0.0.1:9999"}, env(map[string]string{
		"APPROVALS_BASE_URL": "https://a.example.com", "APPROVALS_SIGNING_KEYS": goodKeys, "APPROVALS_METRICS_ADDR": ":1"}), io.Discard)
	if err != nil || cfg.MetricsAddr != "127.0.0.1:9999" {
		t.Errorf("flag did not win: %q %v", cfg.MetricsAddr, err)
	}
}

// Every start-up error names the variable to fix, and none shows a key.
func TestParseConfigErrorsNameTheVariable(t *testing.T) {
	secret := "c2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LWlzLXNob3J0"
	brokenDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(brokenDir, "pages"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(brokenDir, "pages", "confirm.html.tmpl"), []byte("{{.Broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing set", map[string]string{}, []string{"APPROVALS_BASE_URL", "APPROVALS_SIGNING_KEYS"}},
		{"base URL not absolute", map[string]string{"APPROVALS_BASE_URL": "approvals.example.com", "APPROVALS_SIGNING_KEYS": goodKeys},
			[]string{"APPROVALS_BASE_URL"}},
		{"base URL with query", map[string]string{"APPROVALS_BASE_URL": "https://a.example.com/?x=1", "APPROVALS_SIGNING_KEYS": goodKeys},
			[]string{"APPROVALS_BASE_URL"}},
		{"short key", map[string]string{"APPROVALS_BASE_URL": "https://a.example.com", "APPROVALS_SIGNING_KEYS": "k1:" + secret},
			[]string{"APPROVALS_SIGNING_KEYS", "32 bytes"}},
		{"key without id", map[string]string{"APPROVALS_BASE_URL": "https://a.example.com", "APPROVALS_SIGNING_KEYS": secret},
			[]string{"APPROVALS_SIGNING_KEYS"}},
		{"AWS timeout out of range", map[string]string{"APPROVALS_BASE_URL": "https://a.example.com", "APPROVALS_SIGNING_KEYS": goodKeys,
			"APPROVALS_AWS_TIMEOUT": "90s"}, []string{"APPROVALS_AWS_TIMEOUT", "out of range"}},
		{"templates dir missing", map[string]string{"APPROVALS_BASE_URL": "https://a.example.com", "APPROVALS_SIGNING_KEYS": goodKeys,
			"APPROVALS_TEMPLATES_DIR": filepath.Join(brokenDir, "nope")}, []string{"APPROVALS_TEMPLATES_DIR"}},
		{"templates broken", map[string]string{"APPROVALS_BASE_URL": "https://a.example.com", "APPROVALS_SIGNING_KEYS": goodKeys,
			"APPROVALS_TEMPLATES_DIR": brokenDir}, []string{"APPROVALS_TEMPLATES_DIR", "confirm.html.tmpl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfigTo(nil, env(tt.env), io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error echoes key material: %q", err)
			}
		})
	}
}

func TestParseConfigRateLimit(t *testing.T) {
	base := map[string]string{"APPROVALS_BASE_URL": "https://a.example.com", "APPROVALS_SIGNING_KEYS": goodKeys}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name      string
		env       map[string]string
		wantLimit float64
		wantBurst int
		wantTrust bool
		wantErr   string
	}{
		{"defaults", with(), 10, 100, false, ""},
		{"set", with("APPROVALS_RATE_LIMIT", "3", "APPROVALS_RATE_BURST", "7", "APPROVALS_TRUST_PROXY_HEADERS", "true"), 3, 7, true, ""},
		{"zero is off", with("APPROVALS_RATE_LIMIT", "0"), -1, 100, false, ""},
		{"off", with("APPROVALS_RATE_LIMIT", "off"), redeemer.RateLimitOff, 100, false, ""},
		{"OFF", with("APPROVALS_RATE_LIMIT", "OFF"), redeemer.RateLimitOff, 100, false, ""},
		{"off by flag", with(), redeemer.RateLimitOff, 100, false, ""},
		{"not a number", with("APPROVALS_RATE_LIMIT", "ten"), 0, 0, false, "APPROVALS_RATE_LIMIT"},
		{"too high", with("APPROVALS_RATE_LIMIT", "1000001"), 0, 0, false, "APPROVALS_RATE_LIMIT"},
		{"negative", with("APPROVALS_RATE_LIMIT", "-1"), 0, 0, false, "APPROVALS_RATE_LIMIT"},
		{"burst zero", with("APPROVALS_RATE_BURST", "0"), 0, 0, false, "APPROVALS_RATE_BURST"},
		{"trust not a bool", with("APPROVALS_TRUST_PROXY_HEADERS", "yes please"), 0, 0, false, "APPROVALS_TRUST_PROXY_HEADERS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			if tt.name == "off by flag" {
				args = []string{"-rate-limit", "off"}
			}
			cfg, err := parseConfigTo(args, env(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RateLimit != tt.wantLimit || cfg.RateBurst != tt.wantBurst || cfg.TrustProxyHeaders != tt.wantTrust {
				t.Errorf("limit %v burst %d trust %t; want %v %d %t", cfg.RateLimit, cfg.RateBurst, cfg.TrustProxyHeaders,
					tt.wantLimit, tt.wantBurst, tt.wantTrust)
			}
		})
	}
}

func TestParseConfigIdentity(t *testing.T) {
	const arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/approvals/50dc6c495c0c9188"
	base := map[string]string{"APPROVALS_BASE_URL": "https://a.example.com", "APPROVALS_SIGNING_KEYS": goodKeys}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantMode string
		wantARN  string
		wantKeys string
		wantErr  string
	}{
		{"default link", nil, with(), "link", "", "", ""},
		{"alb", nil, with("APPROVALS_IDENTITY", "alb", "APPROVALS_ALB_ARN", arn), "alb", arn, "", ""},
		{"alb with keys URL", nil, with("APPROVALS_IDENTITY", "alb", "APPROVALS_ALB_ARN", arn,
			"APPROVALS_ALB_KEYS_URL", "https://keys.internal.example.com/alb"), "alb", arn, "https://keys.internal.example.com/alb", ""},
		{"alb by flags", []string{"-identity", "alb", "-alb-arn", arn}, with(), "alb", arn, "", ""},
		{"unknown mode", nil, with("APPROVALS_IDENTITY", "oidc"), "", "", "", "APPROVALS_IDENTITY"},
		{"alb without ARN", nil, with("APPROVALS_IDENTITY", "alb"), "", "", "", "APPROVALS_ALB_ARN"},
		{"ARN not a load balancer", nil, with("APPROVALS_IDENTITY", "alb", "APPROVALS_ALB_ARN", "arn:aws:s3:::bucket"),
			"", "", "", "APPROVALS_ALB_ARN"},
		{"keys URL not http", nil, with("APPROVALS_IDENTITY", "alb", "APPROVALS_ALB_ARN", arn, "APPROVALS_ALB_KEYS_URL", "ftp://keys.example.com"),
			"", "", "", "APPROVALS_ALB_KEYS_URL"},
		{"GovCloud needs a keys URL", nil, with("APPROVALS_IDENTITY", "alb", "APPROVALS_ALB_ARN",
			"arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:loadbalancer/app/approvals/50dc6c495c0c9188"),
			"", "", "", "APPROVALS_ALB_KEYS_URL"},
		{"ARN without alb", nil, with("APPROVALS_ALB_ARN", arn), "", "", "", "APPROVALS_IDENTITY=alb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfigTo(tt.args, env(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Identity != tt.wantMode || cfg.ALB.ALBARN != tt.wantARN || cfg.ALB.KeysURL != tt.wantKeys {
				t.Errorf("identity %q ARN %q keys %q; want %q %q %q", cfg.Identity, cfg.ALB.ALBARN, cfg.ALB.KeysURL,
					tt.wantMode, tt.wantARN, tt.wantKeys)
			}
		})
	}
}
