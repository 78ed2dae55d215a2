package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/channel"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// post sends m to the receivers' channel name as the worker does and
// returns the poster's error.
func post(t *testing.T, srv *httptest.Server, name string, typ channel.Type, secret string, m channel.Message) error {
	t.Helper()
	var p channel.Poster
	return p.Post(context.Background(), channel.Channel{Name: name, Type: typ, URL: srv.URL + "/" + name, Secret: secret}, m)
}

func hostileMessage(expires time.Time) channel.Message {
	return channel.Message{
		Subject: `Deploy <script>alert(1)</script> & "friends"`,
		Data: []channel.Field{
			{Name: "service", Value: json.RawMessage(`"web_frontend"`)},
			{Name: "<b>note</b>", Value: json.RawMessage(`"<img src=x onerror=alert(1)>"`)},
		},
		Actions: []channel.Action{
			{Name: "approve", Label: "Approve", Type: approval.Success, URL: "https://approvals.example.com/a/APPROVE"},
			{Name: "reject", Label: "Reject", Type: approval.Failure, URL: "https://approvals.example.com/a/REJECT"},
		},
		ExpiresAt:    expires,
		RequestedBy:  "ana@example.com",
		MinApprovals: 2,
	}
}

// The receivers keep what the worker's poster sends, and the inbox draws
// each as its app would, with every text escaped and the buttons linking
// to the URLs in the message.
func TestChannelRendering(t *testing.T) {
	rc := newReceivers(testSecret)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	expires := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	m := hostileMessage(expires)
	for _, c := range []struct {
		name string
		typ  channel.Type
	}{{SlackChannel, channel.Slack}, {TeamsChannel, channel.Teams}, {WebhookChannel, channel.Webhook}} {
		secret := ""
		if c.typ == channel.Webhook {
			secret = testSecret
		}
		if err := post(t, srv, c.name, c.typ, secret, m); err != nil {
			t.Fatalf("post to %s: %v", c.name, err)
		}
	}
	// A webhook post signed with another secret is refused as a receiver
	// must, and shown as not verified.
	if err := post(t, srv, WebhookChannel, channel.Webhook, "another-secret-of-sixteen", m); !channel.Rejected(err) {
		t.Fatalf("forged webhook post: %v, want rejected", err)
	}

	msgs := rc.messages()
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Type)+" "+http.StatusText(m.Status))
	}
	want := []string{"webhook Unauthorized", "webhook No Content", "teams Accepted", "slack OK"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("messages kept, newest first (-want +got):\n%s", diff)
	}

	views := make([]channelView, len(msgs))
	for i, m := range msgs {
		views[i] = renderChannel(m)
	}
	var b bytes.Buffer
	if err := inboxPage.ExecuteTemplate(&b, "channels", views); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	expiry := expires.Local()
	for _, w := range []string{
		// Slack: the header, the fields (names bold), the buttons styled
		// by action type, the context line.
		`<div class="sk-header">Deploy &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;friends&#34;</div>`,
		`<div class="sk-field"><b>service</b>` + "\nweb_frontend</div>",
		`<div class="sk-field"><b>&lt;b&gt;note&lt;/b&gt;</b>` + "\n&lt;img src=x onerror=alert(1)&gt;</div>",
		`<a class="sk-button primary" href="https://approvals.example.com/a/APPROVE">Approve</a>`,
		`<a class="sk-button danger" href="https://approvals.example.com/a/REJECT">Reject</a>`,
		`<span>Expires ` + expiry.Format("Jan 2, 2006 at 15:04") + `</span> | <span>Requested by ana@example.com</span> | <span>Needs 2 approvals</span>`,
		// Teams: the title, the facts, the context line with the card's
		// date functions evaluated, the actions.
		`<div class="tm-text tm-large"><b>Deploy &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;friends&#34;</b></div>`,
		`<div class="tm-title">service</div><div class="tm-fact">web_frontend</div>`,
		`Expires ` + expiry.Format("Mon, Jan 2, 2006") + ` ` + expiry.Format("15:04") + ` · Requested by ana@example.com · Needs 2 approvals`,
		`<a class="tm-button positive" href="https://approvals.example.com/a/APPROVE">Approve</a>`,
		`<a class="tm-button destructive" href="https://approvals.example.com/a/REJECT">Reject</a>`,
		// Webhook: the signature checked, the JSON indented.
		`<p class="ok verified">✓ signature verified</p>`,
		`<p class="bad">✗ signature not verified</p>`,
		"\n  &#34;subject&#34;: &#34;Deploy &lt;script&gt;alert(1)&lt;/script&gt; &amp; \\&#34;friends\\&#34;&#34;,\n",
		`<span class="bad">webhook: signature does not match</span>`,
	} {
		if !strings.Contains(page, w) {
			t.Errorf("the rendering lacks %q", w)
		}
	}
	for _, bad := range []string{"<script", "<img"} {
		if strings.Contains(page, bad) {
			t.Errorf("the rendering has an unescaped %q", bad)
		}
	}
}

// A button whose URL is not http(s) in a Slack body posted straight to
// the receiver is drawn without it: html/template neutralises the link.
func TestChannelRenderingUnsafeURL(t *testing.T) {
	rc := newReceivers(testSecret)
	body := `{"text":"x","blocks":[{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Go"},"url":"javascript:alert(1)"}]}]}`
	r := httptest.NewRequest(http.MethodPost, "/"+SlackChannel, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	rc.ServeHTTP(httptest.NewRecorder(), r)
	var b bytes.Buffer
	if err := inboxPage.ExecuteTemplate(&b, "channel-page", renderChannel(rc.messages()[0])); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); strings.Contains(s, "javascript:") || !strings.Contains(s, `href="#ZgotmplZ">Go</a>`) {
		t.Errorf("unsafe button rendered as:\n%s", s)
	}
}

// What the receivers refuse, they refuse as the service would, and keep.
func TestChannelReceiverChecks(t *testing.T) {
	tests := []struct {
		name, path, contentType, body string
		want                          int
	}{
		{"slack ok", "/ops", "application/json", `{"text":"hi"}`, http.StatusOK},
		{"slack form", "/ops", "application/x-www-form-urlencoded", `payload={}`, http.StatusUnsupportedMediaType},
		{"slack empty", "/ops", "application/json", `{}`, http.StatusBadRequest},
		{"slack 51 blocks", "/ops", "application/json", `{"blocks":[` + strings.Repeat(`{"type":"divider"},`, 50) + `{"type":"divider"}]}`, http.StatusBadRequest},
		{"teams no card", "/release", "application/json", `{"type":"message","attachments":[]}`, http.StatusBadRequest},
		{"teams too large", "/release", "application/json", `{"x":"` + strings.Repeat("a", channel.TeamsMaxBytes) + `"}`, http.StatusRequestEntityTooLarge},
		{"webhook unsigned", "/ci", "application/json", `{}`, http.StatusUnauthorized},
		{"not json", "/ci", "application/json", `{`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceivers(testSecret)
			r := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.contentType)
			w := httptest.NewRecorder()
			rc.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("answer %d, want %d", w.Code, tt.want)
			}
			if m := rc.messages(); len(m) != 1 || m[0].Status != tt.want || m[0].Verified {
				t.Errorf("kept %+v", m)
			}
		})
	}
}

func TestMrkdwn(t *testing.T) {
	tests := []struct {
		in   string
		want []span
	}{
		{"*name*\nvalue", []span{{Text: "name", Bold: true}, {Text: "\nvalue"}}},
		{"web_frontend_v2", []span{{Text: "web_frontend_v2"}}},
		{"2*3*4", []span{{Text: "2*3*4"}}},
		{"_…and 2 more fields_", []span{{Text: "…and 2 more fields", Italic: true}}},
		{"&lt;b&gt; &amp;amp;", []span{{Text: "<b> &amp;"}}},
		{"see <https://example.com/x|the docs>", []span{{Text: "see "}, {Text: "the docs", URL: "https://example.com/x"}}},
		{"Expires <!date^notanumber^{time}|2026-12-04 12:00 UTC>", []span{{Text: "Expires "}, {Text: "2026-12-04 12:00 UTC"}}},
		{"a < b", []span{{Text: "a < b"}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, mrkdwn(tt.in)); diff != "" {
			t.Errorf("mrkdwn(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// The channels state machine is the example with the request's channels
// taken from the input, and nothing else changed.
func TestChannelDefinition(t *testing.T) {
	diff := variantDiff(t, ChannelDefinition, func(body map[string]any) {
		body["channels.$"] = "$.channels"
	})
	if diff != "" {
		t.Errorf("channel definition (-want +got):\n%s", diff)
	}
}
