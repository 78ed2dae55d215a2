package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPreview(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := preview(context.Background(), args, &out, io.Discard)
	return out.String(), err
}

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPreview(t *testing.T) {
	dir := t.TempDir()
	data := writeFile(t, filepath.Join(dir, "data.json"), `{"service":"<b>payments</b>","version":42.0}`)

	html, err := runPreview(t, "-template", "approval", "-data", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`href="https://approvals.invalid/a/PREVIEW-approve"`, `href="https://approvals.invalid/a/PREVIEW-reject"`,
		"&lt;b&gt;payments&lt;/b&gt;", "42.0", "approver@example.com"} {
		if !strings.Contains(html, want) {
			t.Errorf("html preview lacks %q", want)
		}
	}
	text, err := runPreview(t, "-template", "approval", "-data", data, "-format", "text", "-subject", "Refund 7")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Refund 7\n", "service: <b>payments</b>", "https://approvals.invalid/a/PREVIEW-approve\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("text preview lacks %q:\n%s", want, text)
		}
	}
	note, err := runPreview(t, "-template", "notification", "-format", "text")
	if err != nil || strings.Contains(note, "PREVIEW-") {
		t.Errorf("notification preview: %v\n%s", err, note)
	}
}

func TestPreviewTemplatesDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "email", "deploy.html.tmpl"), `<p>{{.Data.service}}</p>`)
	writeFile(t, filepath.Join(dir, "email", "deploy.txt.tmpl"), `deploying {{.Data.service}}`)
	data := writeFile(t, filepath.Join(dir, "data.json"), `{"service":"payments"}`)
	out, err := runPreview(t, "-template", "deploy", "-templates", dir, "-data", data, "-format", "text")
	if err != nil || out != "deploying payments" {
		t.Errorf("custom template: %q, %v", out, err)
	}
	// A key the template needs but the data lacks is an error, as in the worker.
	empty := writeFile(t, filepath.Join(dir, "empty.json"), `{}`)
	if _, err := runPreview(t, "-template", "deploy", "-templates", dir, "-data", empty); err == nil || !strings.Contains(err.Error(), `"service"`) {
		t.Errorf("missing key: %v", err)
	}
}

func TestPreviewErrors(t *testing.T) {
	dir := t.TempDir()
	arr := writeFile(t, filepath.Join(dir, "arr.json"), `[1]`)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-template", "nope"}, `no email template "nope" (have approval, notification)`},
		{[]string{"-format", "pdf"}, `"pdf" is neither html nor text`},
		{[]string{"-data", arr}, "want a JSON object"},
		{[]string{"-data", filepath.Join(dir, "missing.json")}, "read data"},
		{[]string{"-templates", filepath.Join(dir, "missing")}, "templates directory"},
	}
	for _, tt := range tests {
		if _, err := runPreview(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("preview %v: err = %v, want %q", tt.args, err, tt.want)
		}
	}
}
