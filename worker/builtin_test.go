package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/templates"
)

// If this fails, an embedded email template changed: change its Go twin
// in builtin.go to write what the new template writes (the tests below
// compare them), then record the new sum.
func TestBuiltinTemplatesPinned(t *testing.T) {
	for name, bt := range builtinTemplates {
		for suffix, want := range map[string]string{htmlSuffix: bt.htmlSum, textSuffix: bt.textSum} {
			src, err := fs.ReadFile(templates.Embedded(), "email/"+name+suffix)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(src); hex.EncodeToString(sum[:]) != want {
				t.Errorf("email/%s%s has SHA-256 %x; builtin.go reproduces %s", name, suffix, sum, want)
			}
		}
	}
	tm := loadTemplates(t, "")
	for name := range builtinTemplates {
		if _, ok := tm.builtin[name]; !ok {
			t.Errorf("embedded %q is not rendered by its Go twin", name)
		}
	}
}

// A template loaded with other bytes than the pinned ones, overlaid or
// changed, goes through html/template and text/template; one whose bytes
// are the embedded ones writes the same either way.
func TestBuiltinOnlyForPinnedSources(t *testing.T) {
	same, err := fs.ReadFile(templates.Embedded(), "email/approval.html.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeTemplates(t, map[string]string{
		"notification.html.tmpl": "<p>{{.Subject}}</p>",
		"approval.html.tmpl":     string(same),
	})
	tm := loadTemplates(t, dir)
	if _, ok := tm.builtin[DefaultNotificationTemplate]; ok {
		t.Error("an overlaid notification.html.tmpl is rendered by the built-in Go twin")
	}
	if _, ok := tm.builtin[DefaultApprovalTemplate]; !ok {
		t.Error("approval.html.tmpl overlaid with the embedded bytes is not rendered by the Go twin")
	}
	d := sampleData()
	d.Actions = nil
	r, err := tm.Render(DefaultNotificationTemplate, d)
	if err != nil || r.HTML != "<p>Deploy &lt;b&gt;42&lt;/b&gt; &amp; friends</p>" {
		t.Errorf("overlaid notification HTML = %q, %v", r.HTML, err)
	}
}

// reference is tm rendering every template through html/template and
// text/template.
func reference(tm *Templates) *Templates {
	ref := *tm
	ref.builtin = nil
	return &ref
}

// hostile holds strings with every character some escaper treats apart.
var hostile = []string{
	"",
	"plain",
	asciiAll(),
	`<b>"it's" & +1</b>`,
	"a\x00b\x00",
	"ünïcødé € 😀 \u2028\u2029 \ufdd0\ufffe\uffff",
	"bad \xff\xfe \xc3 utf-8 \xed\xa0\x80",
	"%41%4g%zz%",
	"{{.Subject}} </title><script>alert(1)</script>",
	"\r\n\t\f\v",
	"&amp;&#43;&lt;&copy",
}

func asciiAll() string {
	var b strings.Builder
	for c := 0; c < 128; c++ {
		b.WriteByte(byte(c))
	}
	return b.String()
}

// linkTail is a link's path of the real length, in base64url as links are.
var linkTail = "/a/" + strings.Repeat("AAAAKgAAAAIAAAAAAAAAAQ-_", 60)

var hostileURLs = []string{
	"https://approvals.example.com" + linkTail,
	"https://approvals.example.com/it's(ours)/ünï&co" + linkTail,
	"http://x.example/a+b%41%4g%/%7e?q=1&r=<2>#f" + linkTail,
	"HTTPS://APPROVALS.EXAMPLE.COM/",
	"mailto:ann@example.com",
	"javascript:alert(1)",
	"JavaScript:alert(1)",
	"data:text/html,<x>",
	"/relative/path:with:colons?x=1",
	"a:b/c",
	"",
	"https://x.example/" + asciiAll() + "\x80\xff",
	"%",
	"%4",
	"%41",
}

var hostileValues = []any{
	nil,
	"",
	`<script>alert("x")</script>`,
	json.Number("12345678901234567890"),
	json.Number("-1.5e+300"),
	true,
	false,
	1.5,
	3,
	int64(-7),
	map[string]any{},
	map[string]any{"a": []any{"<i>", true, nil, json.Number("2")}, "b": map[string]any{"&": "+"}},
	[]any{},
	[]any{nil, "\x00", "ü"},
	"\xff bad",
}

// corpus is EmailData for every escaping-relevant shape: each hostile
// string in each field, each link shape, each data value, every number of
// approvals and action type, with and without expiry and requester.
func corpus() []EmailData {
	exp := time.Date(2026, 3, 4, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	var out []EmailData
	base := func() EmailData {
		return EmailData{
			Subject:   "Approve deployment #42",
			Data:      map[string]any{"service": "payments", "version": json.Number("3")},
			ExpiresAt: exp,
			Recipient: "ben@example.com",
			Actions: []ActionLink{
				{Name: "approve", Label: "Approve", Type: "success", URL: hostileURLs[0]},
				{Name: "reject", Label: "Reject", Type: "failure", URL: hostileURLs[0] + "x"},
			},
		}
	}
	for _, s := range hostile {
		for field := range 6 {
			d := base()
			switch field {
			case 0:
				d.Subject = s
			case 1:
				d.Recipient = s
			case 2:
				d.RequestedBy = s
			case 3:
				d.Actions[0].Label = s
			case 4:
				d.Actions[1].Type = s
			case 5:
				d.Data = map[string]any{s: s, s + "2": "x"}
			}
			out = append(out, d)
		}
	}
	for _, u := range hostileURLs {
		d := base()
		d.Actions[0].URL = u
		out = append(out, d)
		d = base()
		d.Actions[1].URL = u
		d.Actions[1].Type = "heartbeat"
		out = append(out, d)
	}
	for i, v := range hostileValues {
		d := base()
		d.Data = map[string]any{"v": v, fmt.Sprint("k", i): "<&>"}
		out = append(out, d)
	}
	for _, n := range []int{-1, 0, 1, 2, 3, 100} {
		for _, by := range []string{"", "req@example.com", "<r>&+@x"} {
			d := base()
			d.MinApprovals, d.RequestedBy = n, by
			out = append(out, d)
		}
	}
	d := base()
	d.Data, d.Actions, d.ExpiresAt, d.Notification = nil, nil, time.Time{}, true
	out = append(out, d)
	d = base()
	d.Data = map[string]any{}
	d.Actions = []ActionLink{{Name: "only", Label: "Only", Type: "success", URL: hostileURLs[1]}}
	out = append(out, d)
	d = base()
	d.Data = map[string]any{}
	for i := range 20 { // more keys than sortedKeys holds on the stack
		d.Data[fmt.Sprintf("key %02d <%c>", 19-i, 'a'+i)] = i
	}
	d.ExpiresAt = time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC)
	out = append(out, d)
	d = base()
	d.ExpiresAt = time.Date(-5, 12, 31, 23, 59, 0, 0, time.UTC)
	d.Actions = append(d.Actions, ActionLink{Name: "later", Label: "Later", Type: "heartbeat", URL: hostileURLs[2]})
	out = append(out, d)
	return out
}

// The Go twins write exactly what html/template and text/template write,
// and renderEmail decides the same without looking for the links.
func TestBuiltinRenderMatches(t *testing.T) {
	tm := loadTemplates(t, "")
	ref := reference(tm)
	for i, d := range corpus() {
		for name := range builtinTemplates {
			checkBuiltin(t, fmt.Sprintf("%s #%d", name, i), tm, ref, name, d)
		}
	}
}

func checkBuiltin(t *testing.T, what string, tm, ref *Templates, name string, d EmailData) {
	t.Helper()
	want, wantErr := ref.Render(name, d)
	got, err := tm.Render(name, d)
	if err != nil || wantErr != nil {
		t.Fatalf("%s: Render: %v; html/template: %v", what, err, wantErr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("%s: Go twin differs from the templates (-want +got):\n%s\ndata: %#v", what, diff, d)
	}
	want, wantErr = ref.renderEmail(name, d)
	got, err = tm.renderEmail(name, d)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) || want != got {
		t.Fatalf("%s: renderEmail = %v, want %v", what, err, wantErr)
	}
}

// hrefTemplate is what hrefForm reproduces: html/template's own escaping
// of a URL in an href.
var hrefTemplate = htmltemplate.Must(htmltemplate.New("href").Parse(`<a href="{{.}}">`))

func checkHrefForm(t *testing.T, u string) {
	t.Helper()
	var b strings.Builder
	if err := hrefTemplate.Execute(&b, u); err != nil {
		t.Fatal(err)
	}
	want := html.UnescapeString(strings.TrimSuffix(strings.TrimPrefix(b.String(), `<a href="`), `">`))
	if got := hrefForm(u); got != want {
		t.Fatalf("hrefForm(%q) = %q, html/template makes %q", u, got, want)
	}
}

func TestHrefFormMatchesTemplate(t *testing.T) {
	for _, u := range append(hostileURLs, hostile...) {
		checkHrefForm(t, u)
	}
}

func FuzzBuiltinRenderMatches(f *testing.F) {
	for i, s := range hostile {
		// Seeds short, for the fuzzer's minimizing; the second action has
		// a link of the real length.
		u := strings.TrimSuffix(hostileURLs[i%len(hostileURLs)], linkTail)
		f.Add(s, s, s, s, s, u, s, i%4, int64(i)*1e9, uint8(i))
	}
	f.Add("Approve", "service", "web", "Approve", "success", "https://approvals.example.com/a/AAA", "ann@example.com", 2, int64(1772625600), uint8(0x3f))
	tm, err := LoadTemplates("")
	if err != nil {
		f.Fatal(err)
	}
	ref := reference(tm)
	f.Fuzz(func(t *testing.T, subject, key, value, label, typ, url, person string, minApprovals int, expires int64, flags uint8) {
		d := EmailData{
			Subject:      subject,
			Recipient:    person,
			MinApprovals: minApprovals,
			Actions: []ActionLink{
				{Name: "a", Label: label, Type: typ, URL: url},
				{Name: "b", Label: "Reject", Type: "failure", URL: "https://approvals.example.com" + linkTail},
			},
		}
		if flags&1 != 0 {
			d.RequestedBy = person
		}
		if flags&2 != 0 {
			d.ExpiresAt = time.Unix(expires, 0)
		}
		if flags&4 != 0 {
			d.Actions = d.Actions[:1]
		}
		switch flags >> 3 & 7 {
		case 0:
		case 1:
			d.Data = map[string]any{key: value}
		case 2:
			d.Data = map[string]any{key: json.Number(value), value: key}
		case 3:
			d.Data = map[string]any{key: map[string]any{value: []any{value, true, nil}}}
		case 4:
			d.Data = map[string]any{key: nil, value: false, "n": expires}
		default:
			d.Data = map[string]any{key: []any{value}, "x" + key: value}
		}
		name := DefaultApprovalTemplate
		if flags&64 != 0 {
			name, d.Notification = DefaultNotificationTemplate, true
		}
		checkBuiltin(t, name, tm, ref, name, d)
		checkHrefForm(t, url)
	})
}

// BenchmarkRenderEmailOperatorTemplate is renderEmail through
// html/template and text/template: an operator's template (here the
// built-in approval one with a byte changed, so it is not pinned), with
// links of the real length, and the check that each is in both parts.
//
//	go test -run '^$' -bench RenderEmailOperatorTemplate -benchmem ./worker/
func BenchmarkRenderEmailOperatorTemplate(b *testing.B) {
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "email"), 0o755); err != nil {
		b.Fatal(err)
	}
	src, err := fs.ReadFile(templates.Embedded(), "email/approval.html.tmpl")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "email", "approval.html.tmpl"), append(src, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	tm, err := LoadTemplates(dir)
	if err != nil {
		b.Fatal(err)
	}
	if _, ok := tm.builtin[DefaultApprovalTemplate]; ok {
		b.Fatal("the changed approval template is rendered by its Go twin")
	}
	// html/template percent-encodes some characters of the second base URL
	// in an href: the check then looks for the link as html/template
	// writes it there.
	for _, base := range []string{"https://approvals.example.com", "https://approvals.example.com/it's(ours)"} {
		b.Run("base="+base, func(b *testing.B) {
			d := sampleData()
			d.Actions = d.Actions[:2]
			for i := range d.Actions {
				d.Actions[i].URL = base + linkTail + d.Actions[i].Name
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tm.renderEmail(DefaultApprovalTemplate, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
