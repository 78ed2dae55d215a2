package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sfn-approvals/sfn-approvals/channel"
)

// The channels the local stack configures, one of each type, named as in
// the README's example. Their receivers run in this process.
const (
	SlackChannel   = "ops"
	TeamsChannel   = "release"
	WebhookChannel = "ci"
)

// ChannelNames are the stack's channels in the order a request lists them.
var ChannelNames = []string{SlackChannel, TeamsChannel, WebhookChannel}

// maxChannelMessages bounds what the receivers keep: the inbox is for the
// last few approvals, not a log.
const maxChannelMessages = 100

// ChannelMessage is one post a receiver got, as it got it.
type ChannelMessage struct {
	ID      int          `json:"id"`
	At      time.Time    `json:"at"`
	Channel string       `json:"channel"`
	Type    channel.Type `json:"type"`
	Body    []byte       `json:"body"`
	// Status is what the receiver answered; Problem says why it refused
	// the post (what the real service would have answered), if it did.
	Status  int    `json:"status"`
	Problem string `json:"problem,omitempty"`
	// Verified: a webhook post's signature checks out with the secret.
	Verified bool `json:"verified,omitempty"`
}

// receivers stand in for Slack, Teams and a webhook endpoint: they check
// what those services check, answer as they do, and keep every post.
type receivers struct {
	types  map[string]channel.Type // by channel name, the URL path
	secret string
	now    func() time.Time

	mu   sync.Mutex
	seq  int
	msgs []ChannelMessage // oldest first
}

func newReceivers(secret string) *receivers {
	return &receivers{
		types:  map[string]channel.Type{SlackChannel: channel.Slack, TeamsChannel: channel.Teams, WebhookChannel: channel.Webhook},
		secret: secret,
		now:    time.Now,
	}
}

// config is APPROVALS_CHANNELS for receivers reachable at base.
func (rc *receivers) config(base string) (string, error) {
	cfg := map[string]map[string]string{}
	for name, t := range rc.types {
		e := map[string]string{"type": string(t), "url": base + "/" + name}
		if t == channel.Webhook {
			e["secret"] = rc.secret
		}
		cfg[name] = e
	}
	b, err := json.Marshal(cfg)
	return string(b), err
}

func (rc *receivers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	t, ok := rc.types[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	// Slack takes 1 MB at most, Teams and most webhooks far less.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	m := ChannelMessage{At: rc.now(), Channel: name, Type: t, Body: body}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err != nil:
		m.Status, m.Problem = http.StatusRequestEntityTooLarge, "request_too_large"
	case r.Method != http.MethodPost:
		m.Status, m.Problem = http.StatusMethodNotAllowed, "method_not_allowed"
	case mt != "application/json":
		m.Status, m.Problem = http.StatusUnsupportedMediaType, "invalid_content_type"
	case !json.Valid(body):
		m.Status, m.Problem = http.StatusBadRequest, "invalid_payload"
	default:
		m.Status, m.Problem = rc.check(t, r.Header, body)
		m.Verified = t == channel.Webhook && m.Problem == ""
	}
	rc.record(m)
	switch {
	case m.Problem != "":
		http.Error(w, m.Problem, m.Status)
	case t == channel.Slack:
		w.WriteHeader(m.Status)
		_, _ = io.WriteString(w, "ok") // what Slack answers
	default:
		w.WriteHeader(m.Status)
	}
}

// check is what each service checks of a well-formed JSON post, answered
// with its status and, for a refusal, its reason.
func (rc *receivers) check(t channel.Type, h http.Header, body []byte) (int, string) {
	switch t {
	case channel.Slack:
		var m struct {
			Text   string            `json:"text"`
			Blocks []json.RawMessage `json:"blocks"`
		}
		if json.Unmarshal(body, &m) != nil {
			return http.StatusBadRequest, "invalid_payload"
		}
		if m.Text == "" && len(m.Blocks) == 0 {
			return http.StatusBadRequest, "no_text"
		}
		if len(m.Blocks) > channel.SlackMaxBlocks {
			return http.StatusBadRequest, "invalid_blocks"
		}
		return http.StatusOK, ""
	case channel.Teams:
		if len(body) > channel.TeamsMaxBytes {
			return http.StatusRequestEntityTooLarge, "card larger than 28 KB"
		}
		var m teamsDoc
		if json.Unmarshal(body, &m) != nil || len(m.Attachments) == 0 ||
			m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
			return http.StatusBadRequest, "no Adaptive Card attachment"
		}
		return http.StatusAccepted, "" // what a Workflows webhook answers
	default:
		err := channel.Verify(rc.secret, h.Get(channel.HeaderTimestamp), h.Get(channel.HeaderSignature), body, rc.now(), 0)
		if err != nil {
			return http.StatusUnauthorized, err.Error()
		}
		return http.StatusNoContent, ""
	}
}

func (rc *receivers) record(m ChannelMessage) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seq++
	m.ID = rc.seq
	rc.msgs = append(rc.msgs, m)
	if len(rc.msgs) > maxChannelMessages {
		rc.msgs = slices.Delete(rc.msgs, 0, len(rc.msgs)-maxChannelMessages)
	}
}

// messages returns the posts kept, newest first.
func (rc *receivers) messages() []ChannelMessage {
	rc.mu.Lock()
	out := slices.Clone(rc.msgs)
	rc.mu.Unlock()
	slices.Reverse(out)
	return out
}

// ChannelMessages returns what the stack's channels received, newest first.
func (s *Stack) ChannelMessages() []ChannelMessage {
	if s.channels == nil {
		return nil
	}
	return s.channels.messages()
}

// startChannels serves the receivers on addr and returns the worker's
// APPROVALS_CHANNELS pointing at them.
func (s *Stack) startChannels(addr string) (string, error) {
	var key [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", err
	}
	s.channels = newReceivers(hex.EncodeToString(key[:]))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("channel receivers: %w", err)
	}
	srv := &http.Server{Handler: s.channels, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.procs = append(s.procs, &proc{name: "channels", stopFn: func() { _ = srv.Close() }})
	return s.channels.config("http://" + ln.Addr().String())
}

// ChannelDefinition is the example state machine with the request's
// "channels" taken from the execution input's: the same flow, posted to
// the channels the input names besides the approvers' emails.
func ChannelDefinition(def string) (string, error) {
	return editMessageBody(def, func(body map[string]any) {
		body["channels.$"] = "$.channels"
	})
}

// ChannelInput is DefaultInput posted to the stack's channels too.
func ChannelInput(n int64) map[string]any {
	in := DefaultInput(n)
	in["channels"] = ChannelNames
	in["subject"] = fmt.Sprintf("Approve deployment #%d of web-frontend to production (Slack, Teams, webhook)", n)
	return in
}

// StartChannelExecution starts the channels state machine with input,
// which names its "channels".
func (s *Stack) StartChannelExecution(ctx context.Context, input any) (string, error) {
	return s.startExecution(ctx, s.ChannelStateMachineARN, input)
}

// channelRoutes adds the channel pages to the inbox:
//
//	GET  /channel/{id}     one channel message, rendered alone
//	POST /start/channels   start an execution that posts to the channels
//	GET  /api/channels     the channel messages as JSON
func (s *Stack) channelRoutes(mux *http.ServeMux, started *atomic.Int64) {
	mux.HandleFunc("GET /channel/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		for _, m := range s.ChannelMessages() {
			if m.ID == id {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Header().Set("Cache-Control", "no-store")
				if err := inboxPage.ExecuteTemplate(w, "channel-page", renderChannel(m)); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
				}
				return
			}
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("POST /start/channels", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.StartChannelExecution(r.Context(), ChannelInput(started.Add(1))); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /api/channels", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.ChannelMessages(), nil)
	})
}

// channelViews renders every message kept, newest first, for the inbox.
func (s *Stack) channelViews() []channelView {
	msgs := s.ChannelMessages()
	out := make([]channelView, len(msgs))
	for i, m := range msgs {
		out[i] = renderChannel(m)
	}
	return out
}

// channelView is one message as the inbox draws it: Slack's and Teams'
// bodies laid out as those clients do, a webhook's as its JSON. Every
// text stays text here, for html/template to escape; only the layout is
// the template's.
type channelView struct {
	ChannelMessage
	Slack *slackView
	Teams *teamsView
	// JSON is the webhook's body, indented, or any body the view could
	// not lay out.
	JSON string
}

// span is a run of text with one style: Slack's mrkdwn and Teams' date
// functions become these, never HTML.
type span struct {
	Text         string
	Bold, Italic bool
	URL          string // a link
}

type buttonView struct {
	Text, URL, Style string
}

type slackView struct {
	Blocks []slackBlockView
}

type slackBlockView struct {
	Type    string // header, section, actions, context; others are skipped
	Text    []span
	Fields  [][]span
	Buttons []buttonView
	Context [][]span
}

type teamsView struct {
	Body    []teamsElement
	Actions []buttonView
}

type teamsElement struct {
	Type   string // TextBlock or FactSet
	Text   []span // one span, bold for weight Bolder
	Size   string // lowercased: the template's class
	Subtle bool
	Facts  []channel.Fact
}

type slackDoc struct {
	Blocks []struct {
		Type     string         `json:"type"`
		Text     *slackTextDoc  `json:"text"`
		Fields   []slackTextDoc `json:"fields"`
		Elements []slackElemDoc `json:"elements"`
	} `json:"blocks"`
}

type slackTextDoc struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// slackElemDoc is a button (Text an object) or a context text (Text a
// string).
type slackElemDoc struct {
	Type  string          `json:"type"`
	Text  json.RawMessage `json:"text"`
	URL   string          `json:"url"`
	Style string          `json:"style"`
}

type teamsDoc struct {
	Attachments []struct {
		ContentType string `json:"contentType"`
		Content     struct {
			Body []struct {
				Type     string         `json:"type"`
				Text     string         `json:"text"`
				Size     string         `json:"size"`
				Weight   string         `json:"weight"`
				IsSubtle bool           `json:"isSubtle"`
				Facts    []channel.Fact `json:"facts"`
			} `json:"body"`
			Actions []struct {
				Type  string `json:"type"`
				Title string `json:"title"`
				URL   string `json:"url"`
				Style string `json:"style"`
			} `json:"actions"`
		} `json:"content"`
	} `json:"attachments"`
}

func renderChannel(m ChannelMessage) channelView {
	v := channelView{ChannelMessage: m}
	switch m.Type {
	case channel.Slack:
		v.Slack = renderSlack(m.Body)
	case channel.Teams:
		v.Teams = renderTeams(m.Body)
	}
	if v.Slack == nil && v.Teams == nil {
		var b bytes.Buffer
		if json.Indent(&b, m.Body, "", "  ") == nil {
			v.JSON = b.String()
		} else {
			v.JSON = string(m.Body)
		}
	}
	return v
}

func renderSlack(body []byte) *slackView {
	var d slackDoc
	if json.Unmarshal(body, &d) != nil || len(d.Blocks) == 0 {
		return nil
	}
	v := &slackView{}
	for _, b := range d.Blocks {
		bv := slackBlockView{Type: b.Type}
		switch b.Type {
		case "header":
			if b.Text == nil {
				continue
			}
			bv.Text = slackText(*b.Text)
		case "section":
			if b.Text != nil {
				bv.Text = slackText(*b.Text)
			}
			for _, f := range b.Fields {
				bv.Fields = append(bv.Fields, slackText(f))
			}
		case "actions":
			for _, e := range b.Elements {
				var t slackTextDoc
				if e.Type != "button" || json.Unmarshal(e.Text, &t) != nil {
					continue
				}
				bv.Buttons = append(bv.Buttons, buttonView{Text: t.Text, URL: e.URL, Style: e.Style})
			}
		case "context":
			for _, e := range contextTexts(b.Elements) {
				bv.Context = append(bv.Context, slackText(e))
			}
		default:
			continue
		}
		v.Blocks = append(v.Blocks, bv)
	}
	return v
}

// contextTexts keeps a context block's text elements (images are left out).
func contextTexts(elems []slackElemDoc) []slackTextDoc {
	var out []slackTextDoc
	for _, e := range elems {
		var s string
		if json.Unmarshal(e.Text, &s) == nil {
			out = append(out, slackTextDoc{Type: e.Type, Text: s})
		}
	}
	return out
}

func slackText(t slackTextDoc) []span {
	if t.Type == "mrkdwn" {
		return mrkdwn(t.Text)
	}
	return []span{{Text: t.Text}}
}

var slackUnescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// mrkdwn reads the part of Slack's mrkdwn the messages use: *bold*,
// _italic_, <url|text> links, <!date^ts^format|fallback> dates, and the
// &amp; &lt; &gt; escapes. A * or _ formats only at a word's edge with a
// partner on the same line, as in Slack, so "web_frontend" stays as is.
func mrkdwn(s string) []span {
	var (
		out          []span
		bold, italic bool
		buf          strings.Builder
	)
	flush := func() {
		if buf.Len() > 0 {
			out = append(out, span{Text: slackUnescaper.Replace(buf.String()), Bold: bold, Italic: italic})
			buf.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '<':
			if j := strings.IndexByte(s[i:], '>'); j > 1 {
				flush()
				sp := slackRef(s[i+1 : i+j])
				sp.Bold, sp.Italic = bold, italic
				out = append(out, sp)
				i += j
				continue
			}
		case '*', '_':
			on := bold
			if c == '_' {
				on = italic
			}
			if (on && closes(s, i)) || (!on && opens(s, i)) {
				flush()
				if c == '*' {
					bold = !bold
				} else {
					italic = !italic
				}
				continue
			}
		}
		buf.WriteByte(c)
	}
	flush()
	return out
}

func edge(c byte) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80)
}

// opens: s[i] starts a run: at a word's start, followed by text, and closed
// later on the same line.
func opens(s string, i int) bool {
	if (i > 0 && !edge(s[i-1])) || i+1 >= len(s) || s[i+1] == ' ' || s[i+1] == '\n' {
		return false
	}
	for k := i + 2; k < len(s) && s[k] != '\n'; k++ {
		if s[k] == s[i] && closes(s, k) {
			return true
		}
	}
	return false
}

// closes: s[i] ends a run: after text, at a word's end.
func closes(s string, i int) bool {
	return i > 0 && s[i-1] != ' ' && s[i-1] != '\n' && (i+1 == len(s) || edge(s[i+1]))
}

// slackRef is what Slack shows for <...>: a date in the reader's time
// zone, or a link.
func slackRef(ref string) span {
	spec, fallback, _ := strings.Cut(ref, "|")
	if rest, ok := strings.CutPrefix(spec, "!date^"); ok {
		ts, _, _ := strings.Cut(rest, "^")
		if sec, err := strconv.ParseInt(ts, 10, 64); err == nil {
			return span{Text: time.Unix(sec, 0).Local().Format("Jan 2, 2006 at 15:04")}
		}
		return span{Text: slackUnescaper.Replace(fallback)}
	}
	text := fallback
	if text == "" {
		text = spec
	}
	return span{Text: slackUnescaper.Replace(text), URL: spec}
}

func renderTeams(body []byte) *teamsView {
	var d teamsDoc
	if json.Unmarshal(body, &d) != nil || len(d.Attachments) == 0 {
		return nil
	}
	c := d.Attachments[0].Content
	v := &teamsView{}
	for _, e := range c.Body {
		switch e.Type {
		case "TextBlock":
			v.Body = append(v.Body, teamsElement{Type: e.Type, Text: []span{{Text: cardFunctions(e.Text), Bold: e.Weight == "Bolder"}},
				Size: strings.ToLower(e.Size), Subtle: e.IsSubtle})
		case "FactSet":
			v.Body = append(v.Body, teamsElement{Type: e.Type, Facts: e.Facts})
		}
	}
	for _, a := range c.Actions {
		if a.Type == "Action.OpenUrl" {
			v.Actions = append(v.Actions, buttonView{Text: a.Title, URL: a.URL, Style: a.Style})
		}
	}
	return v
}

// cardFunctions evaluates the Adaptive Card date functions
// {{DATE(t, SHORT)}} and {{TIME(t)}} in this machine's time zone, as Teams
// does in the reader's.
func cardFunctions(s string) string {
	for _, f := range []struct{ prefix, layout string }{
		{"{{DATE(", "Mon, Jan 2, 2006"},
		{"{{TIME(", "15:04"},
	} {
		for {
			i := strings.Index(s, f.prefix)
			if i < 0 {
				break
			}
			j := strings.Index(s[i:], ")}}")
			if j < 0 {
				break
			}
			arg, _, _ := strings.Cut(s[i+len(f.prefix):i+j], ",")
			text := arg
			if t, err := time.Parse(time.RFC3339, strings.TrimSpace(arg)); err == nil {
				text = t.Local().Format(f.layout)
			}
			s = s[:i] + text + s[i+j+len(")}}"):]
		}
	}
	return s
}

// The channel templates join the inbox page's set: "channels" is its
// section, "channel-page" one message alone.
func init() {
	template.Must(inboxPage.New("channels").Parse(channelsHTML))
}

const channelsHTML = `{{define "channel-css"}}<style>
.msgs{display:grid;grid-template-columns:repeat(auto-fill,minmax(26rem,1fr));gap:1rem;align-items:start;margin-top:1rem}
.msg-meta{font-size:12px;color:#656d76;margin-bottom:.3rem}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
.sk{background:#fff;border:1px solid #dddddd;border-radius:8px;padding:12px 16px;max-width:36rem;font:15px/1.46 Lato,system-ui,sans-serif;color:#1d1c1d}
.sk-avatar{display:inline-block;width:36px;height:36px;border-radius:6px;background:#4a154b;color:#fff;text-align:center;line-height:36px;font-weight:700;margin-right:8px;vertical-align:middle}
.sk-app{background:#e8e8e8;color:#616061;font-size:10px;padding:1px 3px;border-radius:2px;font-weight:700}
.sk-time{color:#616061;font-size:12px}
.sk-body{margin-left:44px}
.sk-header{font-size:18px;font-weight:900;margin:2px 0 8px}
.sk-fields{display:grid;grid-template-columns:1fr 1fr;gap:8px 16px;margin:8px 0}
.sk-field{white-space:pre-wrap;overflow-wrap:anywhere}
.sk-actions{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0 8px}
.sk-button{display:inline-block;padding:0 12px;height:28px;line-height:28px;border:1px solid #bbbabb;border-radius:4px;font-weight:700;font-size:13px;color:#1d1c1d;text-decoration:none;background:#fff}
.sk-button.primary{background:#007a5a;border-color:#007a5a;color:#fff}
.sk-button.danger{background:#e01e5a;border-color:#e01e5a;color:#fff}
.sk-context{color:#616061;font-size:12px}
.tm{background:#fff;border:1px solid #e0e0e0;border-top:4px solid #5b5fc7;border-radius:4px;box-shadow:0 1px 2px rgba(0,0,0,.12);padding:14px 16px;max-width:36rem;font:14px/1.43 "Segoe UI",system-ui,sans-serif;color:#242424}
.tm-head{font-size:12px;color:#616161;margin-bottom:6px}
.tm-text{margin:4px 0;white-space:pre-wrap;overflow-wrap:anywhere}.tm-large{font-size:20px}.tm-small{font-size:12px}.tm-subtle{color:#616161}
.tm-facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:8px 0}.tm-fact{overflow-wrap:anywhere}.tm-title{font-weight:600}
.tm-actions{display:flex;flex-wrap:wrap;gap:8px;margin-top:12px}
.tm-button{flex:1;text-align:center;padding:5px 12px;border:1px solid #d1d1d1;border-radius:4px;color:#242424;text-decoration:none;font-weight:600;background:#fff}
.tm-button.positive{background:#5b5fc7;border-color:#5b5fc7;color:#fff}.tm-button.destructive{color:#c4314b;border-color:#c4314b}
.wh pre{background:#f6f8fa;padding:8px;border-radius:6px;overflow-wrap:anywhere}
</style>{{end}}
{{define "spans"}}{{range .}}{{if .URL}}<a href="{{.URL}}">{{end}}{{if .Bold}}<b>{{end}}{{if .Italic}}<i>{{end}}{{.Text}}{{if .Italic}}</i>{{end}}{{if .Bold}}</b>{{end}}{{if .URL}}</a>{{end}}{{end}}{{end}}
{{define "channel-msg"}}<article class="msg {{.Type}}" id="channel-{{.ID}}" data-channel="{{.Channel}}">
<div class="msg-meta">{{when .At}} · {{.Type}} channel <b>{{.Channel}}</b> · answered {{.Status}}{{if .Problem}} <span class="bad">{{.Problem}}</span>{{end}} · <a class="open" href="/channel/{{.ID}}">open</a></div>
{{with .Slack}}<div class="sk"><div><span class="sk-avatar">A</span><b>sfn-approvals</b> <span class="sk-app">APP</span> <span class="sk-time">{{when $.At}}</span></div>
<div class="sk-body">{{range .Blocks}}{{if eq .Type "header"}}<div class="sk-header">{{template "spans" .Text}}</div>
{{else if eq .Type "section"}}<div class="sk-section">{{with .Text}}<div class="sk-field">{{template "spans" .}}</div>{{end}}{{with .Fields}}<div class="sk-fields">{{range .}}<div class="sk-field">{{template "spans" .}}</div>{{end}}</div>{{end}}</div>
{{else if eq .Type "actions"}}<div class="sk-actions">{{range .Buttons}}<a class="sk-button {{.Style}}" href="{{.URL}}">{{.Text}}</a>{{end}}</div>
{{else if eq .Type "context"}}<div class="sk-context">{{range $i, $e := .Context}}{{if $i}} | {{end}}<span>{{template "spans" $e}}</span>{{end}}</div>
{{end}}{{end}}</div></div>{{end}}
{{with .Teams}}<div class="tm"><div class="tm-head">Workflows</div>
{{range .Body}}{{if eq .Type "FactSet"}}<div class="tm-facts">{{range .Facts}}<div class="tm-title">{{.Title}}</div><div class="tm-fact">{{.Value}}</div>{{end}}</div>
{{else}}<div class="tm-text tm-{{.Size}}{{if .Subtle}} tm-subtle{{end}}">{{template "spans" .Text}}</div>
{{end}}{{end}}{{with .Actions}}<div class="tm-actions">{{range .}}<a class="tm-button {{.Style}}" href="{{.URL}}">{{.Text}}</a>{{end}}</div>{{end}}</div>{{end}}
{{if .JSON}}<div class="wh">{{if eq .Type "webhook"}}{{if .Verified}}<p class="ok verified">✓ signature verified</p>{{else}}<p class="bad">✗ signature not verified</p>{{end}}{{end}}<pre>{{.JSON}}</pre></div>{{end}}
</article>{{end}}
{{define "channels"}}{{template "channel-css"}}
<h2>Channel messages ({{len .}})</h2>
<p class="muted">What the worker posted to the local Slack (<b>ops</b>), Teams (<b>release</b>) and webhook (<b>ci</b>) receivers, drawn as those apps show it. Their buttons are the real links: whoever clicks decides as channel:NAME.</p>
<form method="post" action="/start/channels"><button type="submit">Start another approval, to the channels too</button></form>
<div class="msgs" id="channel-messages">{{range .}}{{template "channel-msg" .}}{{else}}<p class="muted">No channel message yet.</p>{{end}}</div>
{{end}}
{{define "channel-page"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Type}} message to {{.Channel}}</title>
{{template "channel-css"}}
<style>body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:40rem;color:#1f2328;padding:0 1rem;background:#f8f8f8} pre{margin:0;white-space:pre-wrap;font-size:12px} .msg-meta{margin-bottom:1.5rem}</style></head><body>
<p><a href="/">← the inbox</a></p>
{{template "channel-msg" .}}
</body></html>{{end}}`
