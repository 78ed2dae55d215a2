package worker

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	htmltemplate "html/template"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	texttemplate "text/template"
	"time"

	"github.com/sfn-approvals/sfn-approvals/templates"
)

// EmailData is what an email template sees, for one recipient.
type EmailData struct {
	Subject string
	// Data is the request's "data" object; numbers are json.Number.
	Data    map[string]any
	Actions []ActionLink // empty for a notification
	// ExpiresAt is when the links stop working (zero for a notification
	// that gives no expiry).
	ExpiresAt     time.Time
	Recipient     string // the bare address the links belong to
	RecipientName string // display name from the request, may be empty
	Notification  bool
	// MinApprovals is how many approvers must approve (1: the first
	// decision decides); RequestedBy the requester's address, or "".
	MinApprovals int
	RequestedBy  string
}

// ActionLink is one button: the action and this recipient's link for it.
type ActionLink struct {
	Name  string
	Label string
	Type  string // success, failure or heartbeat
	URL   string
}

// Rendered is one email's two parts.
type Rendered struct {
	HTML string
	Text string
}

// Templates is the set of email templates, parsed once. Each NAME has
// email/NAME.html.tmpl (html/template: data is escaped for HTML) and
// email/NAME.txt.tmpl (text/template). A key missing from the data is an
// error, not an empty string.
type Templates struct {
	html map[string]*htmltemplate.Template
	text map[string]*texttemplate.Template
	// sizes holds each template's largest output so far, HTML then text:
	// a render starts with a buffer that big, so it grows no further and
	// its bytes become the string without a copy.
	sizes map[string]*[2]atomic.Int64
	// builtin holds the templates rendered by their Go twin (builtin.go):
	// those whose two loaded sources are the embedded ones it reproduces.
	builtin map[string]builtinTemplate
}

const (
	htmlSuffix = ".html.tmpl"
	textSuffix = ".txt.tmpl"
)

// Funcs are the helpers email templates may call.
var funcs = map[string]any{
	// show prints a data value readably: scalars as they are, objects and
	// arrays as compact JSON.
	"show": show,
	// formatTime prints a time for people, in UTC.
	"formatTime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(timeLayout)
	},
}

const timeLayout = "Mon, 2 Jan 2006 15:04 MST"

// LoadTemplates parses the embedded email templates overlaid by dir (see
// templates.FS); an empty dir gives the embedded ones alone.
func LoadTemplates(dir string) (*Templates, error) {
	fsys, err := templates.FS(dir)
	if err != nil {
		return nil, fmt.Errorf("templates directory: %w", err)
	}
	entries, err := fs.ReadDir(fsys, "email")
	if err != nil {
		return nil, fmt.Errorf("read email templates: %w", err)
	}
	t := &Templates{html: map[string]*htmltemplate.Template{}, text: map[string]*texttemplate.Template{}}
	var errs []error
	pinned := map[string]int{} // builtin template name: 1 its HTML part loaded as pinned, | 2 its text part
	for _, e := range entries {
		file := e.Name()
		var name string
		switch {
		case strings.HasSuffix(file, htmlSuffix):
			name = strings.TrimSuffix(file, htmlSuffix)
		case strings.HasSuffix(file, textSuffix):
			name = strings.TrimSuffix(file, textSuffix)
		default:
			continue
		}
		if !templateNameRE.MatchString(name) {
			errs = append(errs, fmt.Errorf("email/%s: template names are letters, digits, '-' and '_'", file))
			continue
		}
		src, err := fs.ReadFile(fsys, "email/"+file)
		if err != nil {
			errs = append(errs, fmt.Errorf("read email/%s: %w", file, err))
			continue
		}
		if bt, ok := builtinTemplates[name]; ok {
			want, part := bt.textSum, 2
			if strings.HasSuffix(file, htmlSuffix) {
				want, part = bt.htmlSum, 1
			}
			if sum := sha256.Sum256(src); hex.EncodeToString(sum[:]) == want {
				pinned[name] |= part
			}
		}
		if strings.HasSuffix(file, htmlSuffix) {
			tt, err := htmltemplate.New(file).Option("missingkey=error").Funcs(funcs).Parse(string(src))
			if err != nil {
				errs = append(errs, fmt.Errorf("parse email/%s: %w", file, err))
				continue
			}
			t.html[name] = tt
		} else {
			tt, err := texttemplate.New(file).Option("missingkey=error").Funcs(funcs).Parse(string(src))
			if err != nil {
				errs = append(errs, fmt.Errorf("parse email/%s: %w", file, err))
				continue
			}
			t.text[name] = tt
		}
	}
	t.builtin = map[string]builtinTemplate{}
	for name, n := range pinned {
		if n == 3 {
			t.builtin[name] = builtinTemplates[name]
		}
	}
	t.sizes = make(map[string]*[2]atomic.Int64, len(t.html))
	for name := range t.html {
		t.sizes[name] = new([2]atomic.Int64)
	}
	// Both parts are required: an email without its text twin is what spam
	// filters and text-only readers punish.
	for name := range t.html {
		if _, ok := t.text[name]; !ok {
			errs = append(errs, fmt.Errorf("email template %q: email/%s%s is missing", name, name, textSuffix))
		}
	}
	for name := range t.text {
		if _, ok := t.html[name]; !ok {
			errs = append(errs, fmt.Errorf("email template %q: email/%s%s is missing", name, name, htmlSuffix))
		}
	}
	for _, name := range []string{DefaultApprovalTemplate, DefaultNotificationTemplate} {
		if _, ok := t.html[name]; !ok {
			errs = append(errs, fmt.Errorf("email template %q is missing", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// embeddedTemplates are parsed on first use by DecodeRequest with zero options.
var embeddedTemplates = sync.OnceValues(func() (*Templates, error) { return LoadTemplates("") })

// Has reports whether a template called name exists.
func (t *Templates) Has(name string) bool {
	_, ok := t.html[name]
	return ok
}

// Names lists the templates, sorted.
func (t *Templates) Names() []string {
	names := make([]string, 0, len(t.html))
	for n := range t.html {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Render executes both parts of template name with d.
func (t *Templates) Render(name string, d EmailData) (Rendered, error) {
	r, _, err := t.render(name, &d)
	return r, err
}

// render is Render; linked reports that the email holds every action's
// link in both parts, known without looking (a builtin template).
func (t *Templates) render(name string, d *EmailData) (r Rendered, linked bool, err error) {
	h, ok := t.html[name]
	if !ok {
		return Rendered{}, false, fmt.Errorf("no email template %q", name)
	}
	size := t.sizes[name]
	if size == nil {
		size = new([2]atomic.Int64) // a template added after loading: no hints
	}
	if bt, ok := t.builtin[name]; ok {
		// Both parts in one buffer, one string: the SendEmail input holds
		// them together anyway.
		var b strings.Builder
		b.Grow(int(size[0].Load() + size[1].Load()))
		n, linked := bt.write(&b, d)
		s := b.String()
		growHint(&size[0], n)
		growHint(&size[1], len(s)-n)
		return Rendered{HTML: s[:n], Text: s[n:]}, linked, nil
	}
	var hb, tb strings.Builder
	hb.Grow(int(size[0].Load()))
	if err := h.Execute(&hb, *d); err != nil {
		return Rendered{}, false, fmt.Errorf("render %s%s: %w", name, htmlSuffix, err)
	}
	tb.Grow(int(size[1].Load()))
	if err := t.text[name].Execute(&tb, *d); err != nil {
		return Rendered{}, false, fmt.Errorf("render %s%s: %w", name, textSuffix, err)
	}
	growHint(&size[0], hb.Len())
	growHint(&size[1], tb.Len())
	return Rendered{HTML: hb.String(), Text: tb.String()}, false, nil
}

// maxSizeHint caps the hints, so one request with a huge data table does
// not make every later render reserve that much.
const maxSizeHint = 64 << 10

// growHint raises a size hint to n, with some room for the next render's
// longer data or links.
func growHint(h *atomic.Int64, n int) {
	want := min(int64(n+n/8), maxSizeHint)
	for {
		old := h.Load()
		if want <= old || h.CompareAndSwap(old, want) {
			return
		}
	}
}

// renderEmail renders template name for one recipient like Render, and
// refuses an email that would not carry every action's link in both parts:
// such an approval email could never be answered, and its execution would
// wait for nothing. A notification has no actions, so nothing to check;
// nor has an email whose builtin renderer wrote every link (linked).
func (t *Templates) renderEmail(name string, d EmailData) (Rendered, error) {
	r, linked, err := t.render(name, &d)
	if err != nil || len(d.Actions) == 0 || linked {
		return r, err
	}
	if missing := missingLinks(r, d.Actions); len(missing) > 0 {
		return Rendered{}, &MissingLinksError{Template: name, Recipient: d.Recipient, Missing: missing}
	}
	return r, nil
}

// MissingLinksError is an approval email that lacks some of its links.
type MissingLinksError struct {
	Template  string
	Recipient string
	// Missing says, per action without its link in both parts, where it
	// is missing: `"approve" (HTML and text)`.
	Missing []string
}

func (e *MissingLinksError) Error() string {
	return fmt.Sprintf("template %q: the email to %s lacks the link of %s; an approval email needs every action's {{.URL}} in both its HTML and text parts",
		e.Template, e.Recipient, strings.Join(e.Missing, ", "))
}

// missingLinks lists the actions whose URL is not in the HTML part (as
// text or in an attribute: html/template escapes it either way, and
// normalises it in an href) or not verbatim in the text part.
func missingLinks(r Rendered, actions []ActionLink) []string {
	htmlText := html.UnescapeString(r.HTML)
	var missing []string
	for _, a := range actions {
		inHTML := strings.Contains(htmlText, a.URL) || strings.Contains(htmlText, hrefForm(a.URL))
		inText := strings.Contains(r.Text, a.URL)
		var where string
		switch {
		case !inHTML && !inText:
			where = "HTML and text"
		case !inHTML:
			where = "HTML"
		case !inText:
			where = "text"
		default:
			continue
		}
		missing = append(missing, fmt.Sprintf("%q (%s)", a.Name, where))
	}
	return missing
}

// hrefForm is what html/template makes of a URL in an href, unescaped: it
// percent-encodes characters such as ' ( ) and non-ASCII ones, which a base
// URL's path may hold. writeHref writes the same bytes as html/template.
func hrefForm(u string) string {
	var b strings.Builder
	b.Grow(len(u) + len(u)/8)
	writeHref(&b, u)
	return html.UnescapeString(b.String())
}

func show(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool, float64, int, int64:
		return fmt.Sprint(v)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the HTML template escapes; the text part wants it raw
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
