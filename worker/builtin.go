package worker

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The built-in email templates are also written out here as plain Go,
// which produces exactly the bytes html/template and text/template produce
// from the same EmailData, without their reflection and their escapers'
// per-call allocations (most of an email's rendering cost). Each renderer
// is pinned to the embedded source it reproduces by a SHA-256: a template
// loaded with other bytes (changed, or overlaid from
// APPROVALS_TEMPLATES_DIR) goes through html/template and text/template as
// any operator's template does. TestBuiltinTemplatesPinned fails when an
// embedded file changes, so the Go below is re-checked with it;
// TestBuiltinRenderMatches and FuzzBuiltinRenderMatches compare the bytes.

// builtinTemplate is one built-in template written out in Go.
type builtinTemplate struct {
	htmlSum, textSum string // hex SHA-256 of email/NAME.html.tmpl and NAME.txt.tmpl
	notification     bool   // notification.*, else approval.*
}

var builtinTemplates = map[string]builtinTemplate{
	DefaultApprovalTemplate: {
		htmlSum: "40f467bc28ec02482a1207dbcff92a01b971d6c74a987e25390ddf789b8d8a58",
		textSum: "73908a9e8dd0899d9388dabd6112aa43caac281a1a0d3d5d36b70497bb73b20c",
	},
	DefaultNotificationTemplate: {
		htmlSum:      "f096f3b08f1f9120afe627470ebf2a52cfe1c04f0ea2566f241a98badecaf4a2",
		textSum:      "b020513e830f422b0316f2552c1c0d58bf189a86169dae7b7bd378551a5d032f",
		notification: true,
	},
}

// write writes the HTML part, then the text part, and returns the HTML
// part's length; linked reports whether the email holds every action's link
// as missingLinks would find it. (Direct calls, not function values, so
// that neither the buffer nor d escapes to the heap.)
func (bt builtinTemplate) write(b *strings.Builder, d *EmailData) (htmlLen int, linked bool) {
	if bt.notification {
		linked = notificationHTML(b, d)
		htmlLen = b.Len()
		notificationText(b, d)
		return htmlLen, linked
	}
	linked = approvalHTML(b, d)
	htmlLen = b.Len()
	approvalText(b, d)
	return htmlLen, linked
}

// approvalHTML is email/approval.html.tmpl.
func approvalHTML(b *strings.Builder, d *EmailData) bool {
	b.WriteString(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>`)
	writeHTML(b, d.Subject)
	b.WriteString(`</title>
</head>
<body style="margin:0;padding:0;background-color:#f4f5f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:#f4f5f7;">
<tr>
<td align="center" style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="width:100%;max-width:600px;background-color:#ffffff;border:1px solid #dfe1e6;">
<tr>
<td style="padding:24px 28px 4px 28px;font-family:Arial,Helvetica,sans-serif;font-size:20px;line-height:28px;font-weight:bold;color:#172b4d;">`)
	writeHTML(b, d.Subject)
	b.WriteString(`</td>
</tr>
<tr>
<td style="padding:0 28px 16px 28px;font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:20px;color:#42526e;">Your decision is requested.`)
	if d.MinApprovals > 1 {
		b.WriteString(` It needs `)
		writeInt(b, d.MinApprovals)
		b.WriteString(` approvals; any rejection decides at once.`)
	}
	if d.RequestedBy != "" {
		b.WriteString(` Requested by `)
		writeHTML(b, d.RequestedBy)
		b.WriteString(`.`)
	}
	b.WriteString(`</td>
</tr>`)
	dataHTML(b, d.Data)
	b.WriteString(`
<tr>
<td style="padding:8px 28px 4px 28px;">
<table role="presentation" cellpadding="0" cellspacing="0" border="0">
<tr>`)
	linked := true
	for i := range d.Actions {
		a := &d.Actions[i]
		color := actionColor(a.Type)
		b.WriteString(`
<td style="padding:0 12px 12px 0;">
<table role="presentation" cellpadding="0" cellspacing="0" border="0">
<tr>
<td bgcolor="`)
		b.WriteString(color)
		b.WriteString(`" style="background-color:`)
		b.WriteString(color)
		b.WriteString(`;">
<a href="`)
		if !writeHref(b, a.URL) {
			linked = false
		}
		b.WriteString(`" target="_blank" style="display:inline-block;padding:12px 24px;font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:20px;font-weight:bold;color:#ffffff;text-decoration:none;">`)
		writeHTML(b, a.Label)
		b.WriteString(`</a>
</td>
</tr>
</table>
</td>`)
	}
	b.WriteString(`
</tr>
</table>
</td>
</tr>
<tr>
<td style="padding:0 28px 24px 28px;font-family:Arial,Helvetica,sans-serif;font-size:13px;line-height:19px;color:#6b778c;">
Each button opens a page where you confirm, and may add a comment; nothing is decided until you do.<br>
The links expire on `)
	writeTime(b, d.ExpiresAt)
	b.WriteString(`.<br>
These links are personal to `)
	writeHTML(b, d.Recipient)
	b.WriteString(`: your decision is recorded under this address, so do not forward this email.
</td>
</tr>
</table>
</td>
</tr>
</table>
</body>
</html>
`)
	return linked
}

// approvalText is email/approval.txt.tmpl.
func approvalText(b *strings.Builder, d *EmailData) {
	b.WriteString(d.Subject)
	b.WriteString("\n\nYour decision is requested.")
	if d.MinApprovals > 1 {
		b.WriteString(" It needs ")
		writeInt(b, d.MinApprovals)
		b.WriteString(" approvals; any rejection decides at once.")
	}
	if d.RequestedBy != "" {
		b.WriteString(" Requested by ")
		b.WriteString(d.RequestedBy)
		b.WriteString(".")
	}
	dataText(b, d.Data)
	b.WriteString("\n")
	for i := range d.Actions {
		b.WriteString("\n")
		b.WriteString(d.Actions[i].Label)
		b.WriteString(":\n")
		b.WriteString(d.Actions[i].URL)
		b.WriteString("\n")
	}
	b.WriteString(`
Each link opens a page where you confirm, and may add a comment; nothing is
decided until you do.
The links expire on `)
	writeTime(b, d.ExpiresAt)
	b.WriteString(`.
These links are personal to `)
	b.WriteString(d.Recipient)
	b.WriteString(`: your decision is recorded under
this address, so do not forward this email.
`)
}

// notificationHTML is email/notification.html.tmpl. It carries no links.
func notificationHTML(b *strings.Builder, d *EmailData) bool {
	b.WriteString(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>`)
	writeHTML(b, d.Subject)
	b.WriteString(`</title>
</head>
<body style="margin:0;padding:0;background-color:#f4f5f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:#f4f5f7;">
<tr>
<td align="center" style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="width:100%;max-width:600px;background-color:#ffffff;border:1px solid #dfe1e6;">
<tr>
<td style="padding:24px 28px 16px 28px;font-family:Arial,Helvetica,sans-serif;font-size:20px;line-height:28px;font-weight:bold;color:#172b4d;">`)
	writeHTML(b, d.Subject)
	b.WriteString(`</td>
</tr>`)
	dataHTML(b, d.Data)
	b.WriteString(`
<tr>
<td style="padding:0 28px 24px 28px;font-family:Arial,Helvetica,sans-serif;font-size:13px;line-height:19px;color:#6b778c;">This is a notification; nothing needs to be done.</td>
</tr>
</table>
</td>
</tr>
</table>
</body>
</html>
`)
	return len(d.Actions) == 0
}

// notificationText is email/notification.txt.tmpl.
func notificationText(b *strings.Builder, d *EmailData) {
	b.WriteString(d.Subject)
	dataText(b, d.Data)
	b.WriteString("\n\nThis is a notification; nothing needs to be done.\n")
}

// dataHTML is the data table both HTML templates share: `{{- if .Data}}`
// with its `{{- range $key, $value := .Data}}` rows.
func dataHTML(b *strings.Builder, data map[string]any) {
	if len(data) == 0 {
		return
	}
	b.WriteString(`
<tr>
<td style="padding:0 28px 16px 28px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;">`)
	var buf [16]string
	for _, k := range sortedKeys(data, buf[:0]) {
		b.WriteString(`
<tr>
<td valign="top" style="padding:6px 16px 6px 0;border-bottom:1px solid #ebecf0;font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:20px;color:#6b778c;">`)
		writeHTML(b, k)
		b.WriteString(`</td>
<td valign="top" style="padding:6px 0;border-bottom:1px solid #ebecf0;font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:20px;color:#172b4d;">`)
		writeShow(b, data[k], true)
		b.WriteString(`</td>
</tr>`)
	}
	b.WriteString(`
</table>
</td>
</tr>`)
}

// dataText is the data lines both text templates share.
func dataText(b *strings.Builder, data map[string]any) {
	if len(data) == 0 {
		return
	}
	b.WriteString("\n")
	var buf [16]string
	for _, k := range sortedKeys(data, buf[:0]) {
		b.WriteString("\n")
		b.WriteString(k)
		b.WriteString(": ")
		writeShow(b, data[k], false)
	}
}

// sortedKeys appends m's keys to dst in the order text/template ranges
// over a map with string keys.
func sortedKeys(m map[string]any, dst []string) []string {
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}

// actionColor is the "color" sub-template of approval.html.tmpl.
func actionColor(typ string) string {
	switch typ {
	case "failure":
		return "#c9372c"
	case "heartbeat":
		return "#626f86"
	}
	return "#1f845a"
}

// writeShow writes show(v), HTML-escaped if esc; the common scalars
// without show's allocation.
func writeShow(b *strings.Builder, v any, esc bool) {
	var s string
	switch v := v.(type) {
	case nil:
		return
	case string:
		s = v
	case json.Number:
		s = string(v)
	case bool:
		s = strconv.FormatBool(v)
	default:
		s = show(v)
	}
	if esc {
		writeHTML(b, s)
	} else {
		b.WriteString(s)
	}
}

// writeTime writes formatTime(t). In UTC it has no character html/template
// escapes, so both parts write it as it is.
func writeTime(b *strings.Builder, t time.Time) {
	if t.IsZero() {
		return
	}
	var buf [64]byte
	b.Write(t.UTC().AppendFormat(buf[:0], timeLayout))
}

func writeInt(b *strings.Builder, n int) {
	var buf [20]byte
	b.Write(strconv.AppendInt(buf[:0], int64(n), 10))
}

// htmlEscapes is html/template's replacement table for text, RCDATA and
// quoted attribute values, given a string (not template.HTML). It works
// rune by rune, but every rune it replaces is ASCII, and no byte of another
// rune, or of invalid UTF-8 (passed through as it is), is below 0x80: a
// byte scan writes the same bytes.
var htmlEscapes = [256]string{
	0:    "\uFFFD",
	'"':  "&#34;",
	'&':  "&amp;",
	'\'': "&#39;",
	'+':  "&#43;",
	'<':  "&lt;",
	'>':  "&gt;",
}

// writeHTML writes s as html/template does in element text, RCDATA such as
// <title>, or a quoted attribute.
func writeHTML(b *strings.Builder, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		if r := htmlEscapes[s[i]]; r != "" {
			b.WriteString(s[last:i])
			b.WriteString(r)
			last = i + 1
		}
	}
	b.WriteString(s[last:])
}

// How html/template's URL normaliser and then its attribute escaper treat
// each byte of a URL in a quoted href.
const (
	urlEncode  = iota // percent-encoded, lower-case hex
	urlKeep           // written as it is
	urlPercent        // kept if it starts a valid escape, else encoded
	urlAmp            // kept by the normaliser, &amp; from the attribute escaper
	urlPlus           // kept by the normaliser, &#43; from the attribute escaper
)

var urlClass = func() (c [256]uint8) {
	for _, b := range []byte("!#$*,/:;=?@[]-._~") {
		c[b] = urlKeep
	}
	for b := 'a'; b <= 'z'; b++ {
		c[b] = urlKeep
	}
	for b := 'A'; b <= 'Z'; b++ {
		c[b] = urlKeep
	}
	for b := '0'; b <= '9'; b++ {
		c[b] = urlKeep
	}
	c['%'], c['&'], c['+'] = urlPercent, urlAmp, urlPlus
	return c
}()

// writeHref writes u as html/template does for {{.URL}} at the start of a
// double-quoted href: its URL filter (a scheme other than http, https or
// mailto becomes "#ZgotmplZ"), normaliser and attribute escaper. It
// reports whether u passed the filter.
func writeHref(b *strings.Builder, u string) bool {
	if !isSafeURL(u) {
		b.WriteString("#ZgotmplZ")
		return false
	}
	const hex = "0123456789abcdef"
	last := 0
	for i := 0; i < len(u); i++ {
		c := u[i]
		var repl string
		switch urlClass[c] {
		case urlKeep:
			continue
		case urlPercent:
			if i+2 < len(u) && isHexDigit(u[i+1]) && isHexDigit(u[i+2]) {
				continue
			}
		case urlAmp:
			repl = "&amp;"
		case urlPlus:
			repl = "&#43;"
		}
		b.WriteString(u[last:i])
		if repl != "" {
			b.WriteString(repl)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
		last = i + 1
	}
	b.WriteString(u[last:])
	return true
}

// isSafeURL is html/template's test: a URL with a scheme must be http,
// https or mailto.
func isSafeURL(s string) bool {
	if protocol, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(protocol, "/") {
		if !strings.EqualFold(protocol, "http") && !strings.EqualFold(protocol, "https") && !strings.EqualFold(protocol, "mailto") {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
