package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

const testKeys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfig(t *testing.T) {
	good := map[string]string{
		"APPROVALS_QUEUE_URL":          "https://sqs.us-east-1.amazonaws.com/1/approvals",
		"APPROVALS_SENDER":             "Approvals <approvals@example.com>",
		"APPROVALS_BASE_URL":           "https://approvals.example.com",
		"APPROVALS_SIGNING_KEYS":       testKeys,
		"APPROVALS_CONCURRENCY":        "8",
		"APPROVALS_DEFAULT_EXPIRY":     "24h",
		"APPROVALS_SHUTDOWN_GRACE":     "45s",
		"APPROVALS_VISIBILITY_TIMEOUT": "2m",
		"APPROVALS_CONFIGURATION_SET":  "approvals",
		"APPROVALS_AWS_TIMEOUT":        "5s",
	}
	cfg, err := parseConfig(nil, env(good), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Concurrency != 8 || cfg.DefaultExpiry != 24*time.Hour || cfg.ShutdownGrace != 45*time.Second ||
		cfg.VisibilityTimeout != 2*time.Minute || cfg.ConfigurationSet != "approvals" || cfg.AWSTimeout != 5*time.Second || cfg.MetricsAddr != ":9090" ||
		cfg.Keyring == nil || cfg.Sender != "Approvals <approvals@example.com>" {
		t.Errorf("config = %+v", cfg)
	}
	m := map[string]string{"APPROVALS_CHANNELS": `{"ops": {"type": "slack", "url": "https://hooks.slack.example/services/T/B/X"}}`}
	for k, v := range good {
		m[k] = v
	}
	cfg, err = parseConfig(nil, env(m), io.Discard)
	if ch, ok := cfg.Channels.Lookup("ops"); err != nil || !ok || ch.Type != "slack" {
		t.Errorf("APPROVALS_CHANNELS: %v, %v", cfg.Channels, err)
	}
	// A flag wins over its variable.
	cfg, err = parseConfig([]string{"-concurrency", "3"}, env(good), io.Discard)
	if err != nil || cfg.Concurrency != 3 {
		t.Errorf("flag: %d, %v", cfg.Concurrency, err)
	}

	tests := []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"all required missing", map[string]string{"APPROVALS_QUEUE_URL": "", "APPROVALS_SENDER": "", "APPROVALS_BASE_URL": "", "APPROVALS_SIGNING_KEYS": ""},
			[]string{"APPROVALS_QUEUE_URL", "APPROVALS_SENDER", "APPROVALS_BASE_URL", "APPROVALS_SIGNING_KEYS"}},
		{"bad keyring", map[string]string{"APPROVALS_SIGNING_KEYS": "k1:c2hvcnQ="}, []string{"APPROVALS_SIGNING_KEYS: key 1 (k1)"}},
		{"bad sender", map[string]string{"APPROVALS_SENDER": "nobody"}, []string{"APPROVALS_SENDER"}},
		{"bad base URL", map[string]string{"APPROVALS_BASE_URL": "approvals.example.com"}, []string{"APPROVALS_BASE_URL"}},
		{"concurrency out of range", map[string]string{"APPROVALS_CONCURRENCY": "0"}, []string{"APPROVALS_CONCURRENCY"}},
		{"expiry past a year", map[string]string{"APPROVALS_DEFAULT_EXPIRY": "9000h"}, []string{"APPROVALS_DEFAULT_EXPIRY"}},
		{"AWS timeout too short", map[string]string{"APPROVALS_AWS_TIMEOUT": "500ms"}, []string{"APPROVALS_AWS_TIMEOUT", "out of range"}},
		{"AWS timeout too long", map[string]string{"APPROVALS_AWS_TIMEOUT": "2m"}, []string{"APPROVALS_AWS_TIMEOUT", "out of range"}},
		{"bad channel", map[string]string{"APPROVALS_CHANNELS": `{"ops": {"type": "slack", "url": "http://hooks.slack.example/services/SECRETPATH"}}`},
			[]string{"APPROVALS_CHANNELS", `channel "ops"`, "https"}},
		{"channels not JSON", map[string]string{"APPROVALS_CHANNELS": `{"ops": "https://hooks.slack.example/SECRETPATH"`}, []string{"APPROVALS_CHANNELS"}},
		{"grace not a duration", map[string]string{"APPROVALS_SHUTDOWN_GRACE": "soon"}, []string{"APPROVALS_SHUTDOWN_GRACE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range good {
				m[k] = v
			}
			for k, v := range tt.set {
				m[k] = v
			}
			_, err := parseConfig(nil, env(m), io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if strings.Contains(err.Error(), "c2hvcnQ") || strings.Contains(err.Error(), "AAECAwQF") || strings.Contains(err.Error(), "SECRETPATH") {
				t.Errorf("error echoes key material or a channel URL: %q", err)
			}
		})
	}
}
