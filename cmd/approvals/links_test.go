package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/internal/cli"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

const (
	linksKeys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	linksBase = "https://approvals.example.com"
)

// linksEnv sets the worker's variables the command reads.
func linksEnv(t *testing.T) {
	t.Setenv("APPROVALS_SIGNING_KEYS", linksKeys)
	t.Setenv("APPROVALS_BASE_URL", linksBase)
	t.Setenv("APPROVALS_CHANNELS", `{"ops": {"type": "slack", "url": "https://hooks.slack.com/services/T/B/SECRET"},
		"bot": {"type": "webhook", "url": "https://bot.example.com/hook", "secret": "0123456789abcdef"}}`)
	t.Setenv("APPROVALS_TEMPLATES_DIR", "")
	t.Setenv("APPROVALS_DEFAULT_EXPIRY", "")
}

// runLinks runs the command as the binary does and returns its exit code
// and output.
func runLinks(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), "approvals", commands, append([]string{"links"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// Each recipient (to, then cc) and each channel gets one link per action,
// minted as the worker mints them: they open with the keyring, for their
// recipient, and carry the request's token, action and expiry.
func TestLinks(t *testing.T) {
	linksEnv(t)
	file := writeFile(t, filepath.Join(t.TempDir(), "request.json"), `{
		"taskToken": "AAAAKgAAAAIAAAAAAAAAAQ==", "to": ["Ann <ann@example.com>"], "cc": ["ben@example.com"],
		"channels": ["bot", "ops"], "subject": "Deploy 42", "expiresIn": "2h",
		"actions": [{"name": "ship", "type": "success"}, {"name": "stop", "type": "failure", "error": "Stopped"}]}`)
	code, stdout, stderr := runLinks(t, "-request", file)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var got []worker.Link
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	var shape []string
	for _, l := range got {
		shape = append(shape, l.Recipient+" "+l.Action+" "+l.Type)
	}
	want := []string{
		"ann@example.com ship success", "ann@example.com stop failure",
		"ben@example.com ship success", "ben@example.com stop failure",
		"channel:bot ship success", "channel:bot stop failure",
		"channel:ops ship success", "channel:ops stop failure",
	}
	if diff := cmp.Diff(want, shape); diff != "" {
		t.Fatalf("links (-want +got):\n%s", diff)
	}
	kr, err := link.ParseKeyring(linksKeys)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range got {
		tok, ok := strings.CutPrefix(l.URL, linksBase+link.PathPrefix)
		if !ok {
			t.Fatalf("link %q is not under %s", l.URL, linksBase+link.PathPrefix)
		}
		c, err := kr.Open(tok, time.Now())
		if err != nil {
			t.Fatalf("link for %s: %v", l.Recipient, err)
		}
		if c.Recipient != l.Recipient || c.Action.Name != l.Action || c.TaskToken != "AAAAKgAAAAIAAAAAAAAAAQ==" ||
			c.ExpiresAt.Before(time.Now().Add(time.Hour)) || c.ExpiresAt.After(time.Now().Add(2*time.Hour)) {
			t.Errorf("link for %s %s opens to %s %s, expires %s", l.Recipient, l.Action, c.Recipient, c.Action.Name, c.ExpiresAt)
		}
	}
	if strings.Contains(stdout+stderr, "SECRET") {
		t.Error("output shows a channel's URL")
	}

	// A notification has no links.
	file = writeFile(t, filepath.Join(t.TempDir(), "note.json"), `{"channels": ["ops"], "subject": "Deployed 42"}`)
	if code, stdout, stderr := runLinks(t, "-request", file); code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("notification: exit %d, %q\n%s", code, stdout, stderr)
	}
}

// A request the worker would refuse exits non-zero with every problem, and
// prints no links.
func TestLinksInvalidRequest(t *testing.T) {
	linksEnv(t)
	file := writeFile(t, filepath.Join(t.TempDir(), "request.json"),
		`{"taskToken": "T", "channels": ["ops", "nope"], "subjct": "Deploy 42"}`)
	code, stdout, stderr := runLinks(t, "-request", file)
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	for _, want := range []string{`unknown field "subjct"`, `channels[1]: no channel named "nope" (have bot, ops)`, "subject: required", "invalid request: 3 problems"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// Without the channels the worker has, a request naming one is refused
	// as the worker would refuse it.
	t.Setenv("APPROVALS_CHANNELS", "")
	file = writeFile(t, filepath.Join(t.TempDir(), "request.json"), `{"taskToken": "T", "channels": ["ops"], "subject": "s"}`)
	if code, _, stderr := runLinks(t, "-request", file); code != 1 || !strings.Contains(stderr, "this worker has no channels configured") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

// Configuration problems name the variable and never echo a key or a URL.
func TestLinksConfiguration(t *testing.T) {
	linksEnv(t)
	t.Setenv("APPROVALS_SIGNING_KEYS", "")
	t.Setenv("APPROVALS_CHANNELS", `{"ops": {"type": "slack", "url": "http://hooks.slack.example/SECRET"}}`)
	code, _, stderr := runLinks(t)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"-request: required", "APPROVALS_SIGNING_KEYS (-signing-keys) is required", `APPROVALS_CHANNELS: channel "ops"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "SECRET") {
		t.Errorf("stderr shows a channel's URL:\n%s", stderr)
	}
}
