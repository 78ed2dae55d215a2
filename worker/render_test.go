package worker

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadTemplates(t *testing.T, dir string) *Templates {
	t.Helper()
	tm, err := LoadTemplates(dir)
	if err != nil {
		t.Fatalf("LoadTemplates(%q): %v", dir, err)
	}
	return tm
}

func sampleData() EmailData {
	return EmailData{
		Subject: "Deploy <b>42</b> & friends",
		Data: map[string]any{
			"service": "payments",
			"hostile": `<script>alert("x")</script><img src=x onerror=alert(1)>`,
			"count":   json.Number("12345678901234567890"),
			"nested":  map[string]any{"a": []any{"<i>", true}},
		},
		Actions: []ActionLink{
			{Name: "approve", Label: "Approve", Type: "success", URL: "https://approvals.example.com/a/AAA-approve_1"},
			{Name: "reject", Label: "Reject <now>", Type: "failure", URL: "https://approvals.example.com/a/BBB-reject_2"},
			{Name: "later", Label: "Ask me later", Type: "heartbeat", URL: "https://approvals.example.com/a/CCC-later_3"},
		},
		ExpiresAt: time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC),
		Recipient: "ben@example.com",
	}
}

func TestRenderApproval(t *testing.T) {
	tm := loadTemplates(t, "")
	d := sampleData()
	r, err := tm.Render("approval", d)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range d.Actions {
		if n := strings.Count(r.HTML, `href="`+a.URL+`"`); n != 1 {
			t.Errorf("HTML has %d links for %s, want 1", n, a.Name)
		}
		if n := strings.Count(r.Text, a.URL); n != 1 {
			t.Errorf("text has %d links for %s, want 1", n, a.Name)
		}
	}
	wantHTML := []string{
		"Deploy &lt;b&gt;42&lt;/b&gt; &amp; friends",
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;",
		"12345678901234567890",
		`{&#34;a&#34;:[&#34;&lt;i&gt;&#34;,true]}`,
		">Reject &lt;now&gt;</a>",
		"#1f845a", "#c9372c", "#626f86", // one colour per action type
		"Wed, 4 Mar 2026 12:00 UTC",
		"personal to ben@example.com",
		`role="presentation"`,
	}
	for _, w := range wantHTML {
		if !strings.Contains(r.HTML, w) {
			t.Errorf("HTML lacks %q", w)
		}
	}
	for _, bad := range []string{"<script", "<img", "<b>42", "<i>", "<style", "<now>"} {
		if strings.Contains(r.HTML, bad) {
			t.Errorf("HTML contains unescaped %q", bad)
		}
	}
	wantText := []string{
		"Deploy <b>42</b> & friends\n",
		`hostile: <script>alert("x")</script>`,
		"count: 12345678901234567890\n",
		`nested: {"a":["<i>",true]}`,
		"Reject <now>:\n" + d.Actions[1].URL + "\n",
		"Wed, 4 Mar 2026 12:00 UTC",
		"personal to ben@example.com",
	}
	for _, w := range wantText {
		if !strings.Contains(r.Text, w) {
			t.Errorf("text lacks %q:\n%s", w, r.Text)
		}
	}
	if strings.Contains(r.Text, "&lt;") || strings.Contains(r.Text, "&amp;") {
		t.Errorf("text part is HTML-escaped:\n%s", r.Text)
	}
}

func TestRenderNotification(t *testing.T) {
	tm := loadTemplates(t, "")
	d := sampleData()
	d.Actions, d.ExpiresAt, d.Notification = nil, time.Time{}, true
	r, err := tm.Render("notification", d)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{r.HTML, r.Text} {
		if strings.Contains(part, "/a/") || !strings.Contains(part, "payments") {
			t.Errorf("notification: links present or data missing:\n%s", part)
		}
	}
	if strings.Contains(r.HTML, "<script") {
		t.Error("notification HTML not escaped")
	}
}

func TestRenderOverrideAndMissingKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "email"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "email", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("deploy.html.tmpl", `<p>{{.Data.service}} by {{.Data.owner}}</p>{{range .Actions}}<a href="{{.URL}}">{{.Label}}</a>{{end}}`)
	write("deploy.txt.tmpl", `{{.Data.service}} by {{.Data.owner}}`)
	write("notification.txt.tmpl", `custom {{.Subject}}`)
	tm := loadTemplates(t, dir)
	if got := strings.Join(tm.Names(), ","); got != "approval,deploy,notification" {
		t.Errorf("Names = %s", got)
	}
	d := sampleData()
	d.Data["owner"] = "ann"
	r, err := tm.Render("deploy", d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.HTML, "payments by ann") || !strings.Contains(r.HTML, `href="https://approvals.example.com/a/AAA-approve_1"`) {
		t.Errorf("custom HTML = %q", r.HTML)
	}
	r, err = tm.Render("notification", d)
	if err != nil || r.Text != "custom "+d.Subject || !strings.Contains(r.HTML, "<!DOCTYPE html>") {
		t.Errorf("overridden text part %q (html from embedded: %t), %v", r.Text, strings.Contains(r.HTML, "<!DOCTYPE"), err)
	}

	delete(d.Data, "owner")
	if _, err := tm.Render("deploy", d); err == nil || !strings.Contains(err.Error(), `"owner"`) {
		t.Errorf("missing key: err = %v, want an error naming the key", err)
	}
}

func TestLoadTemplatesErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"html without text", map[string]string{"solo.html.tmpl": "x"}, "email/solo.txt.tmpl is missing"},
		{"text without html", map[string]string{"solo.txt.tmpl": "x"}, "email/solo.html.tmpl is missing"},
		{"parse error", map[string]string{"bad.html.tmpl": "{{.X", "bad.txt.tmpl": "x"}, "parse email/bad.html.tmpl"},
		{"bad name", map[string]string{"a b.html.tmpl": "x", "a b.txt.tmpl": "x"}, "template names are letters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "email"), 0o755)
			for n, b := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, "email", n), []byte(b), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadTemplates(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := LoadTemplates(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing directory accepted")
	}
}

func TestShow(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"a<b", "a<b"},
		{json.Number("1.50"), "1.50"},
		{true, "true"},
		{[]any{"x", json.Number("2")}, `["x",2]`},
		{map[string]any{"k": "<v>"}, `{"k":"<v>"}`},
	}
	for _, tt := range tests {
		if got := show(tt.in); got != tt.want {
			t.Errorf("show(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// writeTemplates puts email templates into a directory for LoadTemplates.
func writeTemplates(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "email"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, "email", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// An approval email is sent only when it carries every action's link in
// both parts; anything else could never be answered.
func TestRenderEmailNeedsEveryLink(t *testing.T) {
	const links = `{{range .Actions}}{{.URL}} {{end}}`
	tm := loadTemplates(t, writeTemplates(t, map[string]string{
		"html-only.html.tmpl":  `{{range .Actions}}<a href="{{.URL}}">{{.Label}}</a>{{end}}`,
		"html-only.txt.tmpl":   `{{.Subject}}`,
		"text-only.html.tmpl":  `<p>{{.Subject}}</p>`,
		"text-only.txt.tmpl":   links,
		"first-only.html.tmpl": `{{with index .Actions 0}}<a href="{{.URL}}">x</a>{{end}}`,
		"first-only.txt.tmpl":  links,
		"as-text.html.tmpl":    `<p>{{range .Actions}}{{.URL}}<br>{{end}}</p>`,
		"as-text.txt.tmpl":     links,
		"quoted.html.tmpl":     `{{range .Actions}}<a href="{{.URL | urlquery}}">x</a>{{end}}`,
		"quoted.txt.tmpl":      links,
	}))
	tests := []struct {
		template string
		baseURL  string // "" for the sample's links
		want     string // "" for accepted
	}{
		{template: "approval"},
		{template: "as-text"},
		{template: "notification",
			want: `template "notification": the email to ben@example.com lacks the link of "approve" (HTML and text), "reject" (HTML and text), "later" (HTML and text); an approval email needs every action's {{.URL}} in both its HTML and text parts`},
		{template: "html-only", want: `"approve" (text), "reject" (text), "later" (text);`},
		{template: "text-only", want: `"approve" (HTML), "reject" (HTML), "later" (HTML);`},
		{template: "first-only", want: `lacks the link of "reject" (HTML), "later" (HTML);`},
		{template: "quoted", want: `"approve" (HTML), "reject" (HTML), "later" (HTML);`},
		// html/template percent-encodes these in an href, and escapes & as
		// &amp;: the link is still there.
		{template: "approval", baseURL: "https://approvals.example.com/it's(ours)/ünï&co"},
		{template: "as-text", baseURL: "https://approvals.example.com/it's(ours)/ünï&co"},
	}
	for _, tt := range tests {
		t.Run(tt.template+tt.baseURL, func(t *testing.T) {
			d := sampleData()
			if tt.baseURL != "" {
				for i := range d.Actions {
					d.Actions[i].URL = strings.Replace(d.Actions[i].URL, "https://approvals.example.com", tt.baseURL, 1)
				}
			}
			r, err := tm.renderEmail(tt.template, d)
			if tt.want == "" {
				if err != nil || r.HTML == "" || r.Text == "" {
					t.Fatalf("renderEmail = %+v, %v; want both parts", r, err)
				}
				return
			}
			var me *MissingLinksError
			if !errors.As(err, &me) || me.Template != tt.template || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("renderEmail error = %v, want a *MissingLinksError for %q containing %q", err, tt.template, tt.want)
			}
		})
	}

	// A notification has no actions: nothing to look for.
	d := sampleData()
	d.Actions, d.Notification = nil, true
	if _, err := tm.renderEmail("notification", d); err != nil {
		t.Errorf("notification: %v", err)
	}
}
