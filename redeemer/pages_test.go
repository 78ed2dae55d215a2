package redeemer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/templates"
)

// hostileStrings hold every character an escaper treats specially, in
// every position: ASCII controls and punctuation, NUL, invalid UTF-8 (a
// lone continuation byte, a cut sequence, a surrogate, an overlong form),
// non-ASCII (including the noncharacters html/template escapes elsewhere),
// HTML that looks like markup or entities, and URLs of every scheme and
// escape shape the URL filter and normalizer decide on.
func hostileStrings() []string {
	var all strings.Builder
	for c := 0; c < 0x80; c++ {
		all.WriteByte(byte(c))
	}
	return []string{
		"", "plain", all.String(), "\x00", "a\x00b",
		`<script>alert("x")</script>`, `"'&<>+`, "&amp; &#43; &lt;", "a+b=c&d",
		"\xff", "\x80abc", "\xc3", "a\xc3<b", "\xed\xa0\x80", "\xc0\xaf", "\xf0\x9f\x98", "é ü 日本 😀",
		"\ufdd0\ufffe\uffff\u2028\u2029\ufeff",
		"javascript:alert(1)", "JavaScript:x", "data:text/html,x", "vbscript:x", " javascript:x",
		"http://x/?a=1&b=2+3#f", "HTTPS://X", "mailto:a@b", "mailto:a@b?subject=x y",
		"/a/b:c", "a/b:c", "a:b/c", ":x", "x:", "//host/p",
		"%", "%4", "%41", "%zz", "a%", "a%4", "%%41", "%E2%82%AC", "%e2%82%ac", "%g1",
		"/a/" + strings.Repeat("AbC-_09", 200),
		"!#$&'()*+,/:;=?@[]", "{|}\\^`\"", "\t\n\r\f\v ",
		"UTC", "Mon 2 Jan 2006, 15:04 MST", "2026-11-25T09:30:15Z", "2026-11-25T09:30:15+01:00",
	}
}

// confirmData returns page data for the confirmation page with every string
// field set to s, and the variations the template branches on.
func confirmData(s string) []pageData {
	base := pageData{
		Title: s, Message: s, Hint: s, Outcome: "confirm", StyleURL: s,
		Action: s, Label: s, Type: s, Approver: s,
		ExpiresAt: s, ExpiresAtISO: s, FormAction: s, Comment: s,
		MaxComment: MaxCommentRunes,
	}
	var out []pageData
	for _, typ := range []string{s, "success", "failure", "heartbeat"} {
		for _, signedIn := range []string{"", s, "a user without an email address"} {
			for _, commentErr := range []string{"", s, "The comment is too long: 1,001 characters, up to 1,000."} {
				d := base
				d.Type, d.SignedInAs, d.CommentError = typ, signedIn, commentErr
				out = append(out, d)
			}
		}
	}
	for _, t := range []struct {
		tallied             bool
		approvals, required int
	}{
		{false, 0, 0}, {true, 0, 1}, {true, 1, 1}, {true, 0, 2}, {true, 1, 2}, {true, 2, 3}, {true, -1, 0},
	} {
		d := base
		d.Type = "success"
		d.Tallied, d.Approvals, d.Required = t.tallied, t.approvals, t.required
		out = append(out, d)
	}
	d := base
	d.MaxComment = -7
	return append(out, d)
}

func builtinTemplates(t testing.TB) *template.Template {
	t.Helper()
	pages, _, err := parsePages(templates.Embedded())
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

// checkPage fails t unless the compiled writer of the page name writes for
// d exactly what html/template writes.
func checkPage(t *testing.T, pages *template.Template, name string, d pageData) {
	t.Helper()
	var want bytes.Buffer
	if err := pages.ExecuteTemplate(&want, name, d); err != nil {
		t.Fatal(err)
	}
	write := writeOutcome
	if name == "confirm.html.tmpl" {
		write = writeConfirm
	}
	got := write(nil, &d, styleHref(d.StyleURL))
	if !bytes.Equal(got, want.Bytes()) {
		i := 0
		for i < len(got) && i < len(want.Bytes()) && got[i] == want.Bytes()[i] {
			i++
		}
		t.Fatalf("%s, data %+v:\nfirst difference at byte %d\ngot  %q\nwant %q", name, d, i,
			tail(got, i), tail(want.Bytes(), i))
	}
}

func checkConfirm(t *testing.T, pages *template.Template, d pageData) {
	t.Helper()
	checkPage(t, pages, "confirm.html.tmpl", d)
	if plainPrefix(d.FormAction, &pathPlain) == len(d.FormAction) {
		// What formAction reports for such a path.
		d.formActionPlain = true
		checkPage(t, pages, "confirm.html.tmpl", d)
	}
}

func tail(b []byte, i int) []byte {
	if i > 20 {
		b = b[i-20:]
	}
	if len(b) > 80 {
		b = b[:80]
	}
	return b
}

// The compiled confirmation page is byte for byte what html/template writes
// from the built-in templates, for hostile data in every field and every
// branch of the template.
func TestCompiledConfirmPage(t *testing.T) {
	pages := builtinTemplates(t)
	n := 0
	for _, s := range hostileStrings() {
		for _, d := range confirmData(s) {
			checkConfirm(t, pages, d)
			n++
		}
	}
	t.Logf("%d pages compared", n)
}

// outcomeNames are the outcomes the outcome template branches on, and the
// others a page can show.
var outcomeNames = []string{"recorded", "extended", "vote_recorded", "already_voted", "gone", "expired",
	"invalid", "unavailable", "error", "rate_limited", "sign_in_required", "forbidden", "not_found",
	"method_not_allowed", "comment_invalid", "body_invalid", "busy", "confirm", ""}

// outcomeData returns page data for the outcome page with the given
// outcome, s in every string field that mask selects (bit i: field i of
// the list below) and "" in the others.
func outcomeData(outcome, s string, mask int) pageData {
	d := pageData{Outcome: outcome, Title: s, Message: s, StyleURL: s, Type: s, MaxComment: MaxCommentRunes}
	fields := []*string{&d.Label, &d.Action, &d.Approver, &d.SignedInAs, &d.DecidedAt, &d.ExpiresAt,
		&d.EarlierAction, &d.DecidedBy, &d.Hint}
	for i, f := range fields {
		if mask&(1<<i) != 0 {
			*f = s
		}
	}
	d.DecidedAtISO, d.ExpiresAtISO, d.DecidedAction = s+"iso", s+"ISO", s+"action"
	d.Tallied, d.Approvals, d.Required = mask&(1<<len(fields)) != 0, 1, 2
	return d
}

// The compiled outcome page is byte for byte what html/template writes:
// every outcome with every field present or absent, and hostile data in
// every field.
func TestCompiledOutcomePage(t *testing.T) {
	pages := builtinTemplates(t)
	n := 0
	hostile := hostileStrings()
	for _, o := range outcomeNames {
		for mask := 0; mask < 1<<10; mask++ {
			checkPage(t, pages, "outcome.html.tmpl", outcomeData(o, hostile[2]+"\xff é", mask))
			n++
		}
	}
	for _, s := range hostile {
		for _, o := range append([]string{s}, outcomeNames...) {
			for _, mask := range []int{0, 1<<10 - 1, 1 | 1<<4 | 1<<10} {
				checkPage(t, pages, "outcome.html.tmpl", outcomeData(o, s, mask))
				n++
			}
		}
	}
	t.Logf("%d pages compared", n)
}

// The escapers alone, over every byte pair: a difference in one character
// would hide in the page comparison behind the first.
func TestCompiledEscapers(t *testing.T) {
	pages := builtinTemplates(t)
	var pairs []string
	for a := 0; a < 256; a++ {
		for _, b := range []byte{0, '%', '4', '1', 'a', '<', 0x80, 0xff} {
			pairs = append(pairs, string([]byte{byte(a), b}), string([]byte{'%', byte(a), b}))
		}
	}
	for _, s := range pairs {
		checkConfirm(t, pages, pageData{Title: s, Label: s, StyleURL: s, FormAction: s, Comment: s, ExpiresAtISO: s})
	}
}

// builtinPages holds the sums of the embedded page templates. A change to
// one of them fails here: check writeConfirm against the new template
// (TestCompiledConfirmPage must pass with the compiled page in use), then
// record the new sum.
func TestBuiltinPagesPinned(t *testing.T) {
	names, err := fs.Glob(templates.Embedded(), "pages/*.html.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(builtinPages) {
		t.Errorf("embedded page templates %v, pinned %d", names, len(builtinPages))
	}
	for _, name := range names {
		src, err := fs.ReadFile(templates.Embedded(), name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(src)
		if got := hex.EncodeToString(sum[:]); got != builtinPages[name] {
			t.Errorf("%s changed (sha256 %s, pinned %q): check writeConfirm against it, then pin the new sum", name, got, builtinPages[name])
		}
	}
	if !isBuiltinPages(templates.Embedded()) {
		t.Error("the embedded templates are not recognised as the built-in ones")
	}
}

// Only the built-in templates get the compiled page: an overlay that
// changes any page template, or adds one (it could redefine "top"), is
// rendered by html/template, and its page is the overlay's.
func TestCompiledPageOnlyForBuiltinTemplates(t *testing.T) {
	embedded := templates.Embedded()
	read := func(name string) string {
		b, err := fs.ReadFile(embedded, name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	changedConfirm := strings.Replace(read("pages/confirm.html.tmpl"), "<h1>", "<h1 class=\"custom\">", 1)
	cases := []struct {
		name     string
		files    map[string]string // written into an overlay directory
		compiled bool
		want     string // in the page
	}{
		{"no overlay", nil, true, "<h1>Confirm your decision</h1>"},
		{"email overlay only", map[string]string{"email/custom.txt.tmpl": "x"}, true, "<h1>Confirm your decision</h1>"},
		{"same confirm page", map[string]string{"pages/confirm.html.tmpl": read("pages/confirm.html.tmpl")}, true, "<h1>Confirm your decision</h1>"},
		{"changed confirm page", map[string]string{"pages/confirm.html.tmpl": changedConfirm}, false, `<h1 class="custom">`},
		{"changed layout", map[string]string{"pages/layout.html.tmpl": strings.Replace(read("pages/layout.html.tmpl"), "<main>", "<main id=\"m\">", 1)}, false, `<main id="m">`},
		{"added page redefining top", map[string]string{"pages/zz.html.tmpl": `{{define "top"}}<p>mine</p>{{end}}`}, false, "<p>mine</p>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, src := range tc.files {
				if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			fsys, err := templates.FS(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tc.files == nil {
				fsys = nil // Config's default
			}
			b := setup(t, func(c *Config) { c.Templates = fsys })
			if got := b.srv.styleHref != ""; got != tc.compiled {
				t.Errorf("compiled page in use: %t, want %t", got, tc.compiled)
			}
			w := b.do(req{method: "GET", path: b.path(t, approve)})
			if w.Code != 200 || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("status %d, page without %q:\n%s", w.Code, tc.want, w.Body.String())
			}
		})
	}
}

// A page served through the compiled path is the page html/template writes
// for the same request, confirmation and outcome pages alike.
func TestCompiledPagesServed(t *testing.T) {
	compiled := setup(t)
	templated := setup(t, func(c *Config) {
		// The same files under other names than the embedded FS's: equal
		// sources, but a map FS is taken at its word only through the sums.
		m := fstest.MapFS{}
		_ = fs.WalkDir(templates.Embedded(), "pages", func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				src, _ := fs.ReadFile(templates.Embedded(), p)
				m[p] = &fstest.MapFile{Data: src}
			}
			return nil
		})
		m["pages/extra.html.tmpl"] = &fstest.MapFile{Data: []byte(`{{define "extra"}}{{end}}`)}
		c.Templates = m
	})
	if compiled.srv.styleHref == "" || templated.srv.styleHref != "" {
		t.Fatalf("compiled: %q, templated: %q", compiled.srv.styleHref, templated.srv.styleHref)
	}
	for _, r := range []req{
		{method: "GET", path: compiled.path(t, approve)},
		{method: "GET", path: compiled.path(t, reject)},
		{method: "HEAD", path: compiled.path(t, approve)},
		{method: "POST", path: compiled.path(t, approve), form: map[string][]string{"comment": {strings.Repeat("<x>&+", 300)}}},
		{method: "POST", path: compiled.path(t, extend), form: map[string][]string{"comment": {"ok"}}},
		{method: "POST", path: compiled.path(t, reject), form: map[string][]string{"comment": {"no"}}},
		{method: "GET", path: compiled.path(t, approve, func(c *link.Claims) { c.ExpiresAt = compiled.now.Add(-time.Hour) })},
		{method: "GET", path: "/a/not-a-link"},
		{method: "GET", path: "/nowhere"},
		{method: "PUT", path: compiled.path(t, approve)},
	} {
		got, want := compiled.do(r), templated.do(r)
		if got.Code != want.Code || got.Body.String() != want.Body.String() {
			t.Errorf("%s: compiled %d %q\ntemplated %d %q", r.method, got.Code, got.Body.String(), want.Code, want.Body.String())
		}
		for _, h := range []string{"Content-Type", "Content-Length", "Content-Security-Policy"} {
			if got.Header().Get(h) != want.Header().Get(h) {
				t.Errorf("%s %s: compiled %q, templated %q", r.method, h, got.Header().Get(h), want.Header().Get(h))
			}
		}
	}
}

// FuzzCompiledPages compares the compiled pages with html/template's for
// arbitrary strings in their fields, an arbitrary outcome and any fields
// present or absent.
func FuzzCompiledPages(f *testing.F) {
	for _, s := range hostileStrings() {
		f.Add(s, s, s, "success", false, 0, 1, 0)
	}
	f.Add("Approve", "https://x/a/b?c=%zz", "<&>", "heartbeat", true, 1, 2, 1<<10-1)
	f.Add("Reject", "/a/%4", "", "failure", true, 0, 1, 1)
	f.Add("vote_recorded", "/a/x", "2026", "success", true, 1, 2, 1<<10-1)
	pages := builtinTemplates(f)
	f.Fuzz(func(t *testing.T, label, url, other, typ string, tallied bool, approvals, required, mask int) {
		d := pageData{
			Title: other, Label: label, Action: other, Type: typ, Approver: other, SignedInAs: other,
			ExpiresAt: other, ExpiresAtISO: other, FormAction: url, StyleURL: url,
			Comment: label, CommentError: other, MaxComment: MaxCommentRunes,
			Tallied: tallied, Approvals: approvals, Required: required,
		}
		checkConfirm(t, pages, d)
		o := outcomeData(label, other, mask)
		o.StyleURL, o.Approvals, o.Required = url, approvals, required
		if i := mask >> 11; i >= 0 && i < len(outcomeNames) {
			o.Outcome = outcomeNames[i]
		}
		checkPage(t, pages, "outcome.html.tmpl", o)
	})
}

// formAction is EscapedPath, for paths with and without a RawPath and
// every character that escaping treats specially.
func TestFormAction(t *testing.T) {
	paths := []string{"/a/" + strings.Repeat("AbC-_09x", 200), "/a/x%20y", "/a/x%2Fy", "/a/%41", "/a/x y", "/a/x?y", "*", "",
		"/a/\r\n", "/a/é", "/a/%zz", "/a/;x=1", "/a/AbC-_09x~."}
	for _, s := range hostileStrings() {
		paths = append(paths, "/a/"+url.PathEscape(s), "/a/"+s)
	}
	for _, p := range paths {
		u, err := url.Parse("https://approvals.example.com" + p)
		if err != nil {
			u = &url.URL{Path: p}
		}
		got, plain := formAction(u)
		if want := u.EscapedPath(); got != want {
			t.Errorf("formAction(%q) = %q, want %q", p, got, want)
		}
		if plain {
			if attr := string(appendURLAttr(nil, got)); attr != got {
				t.Errorf("formAction(%q) is plain, but its attribute is %q", p, attr)
			}
		}
	}
}

// Every pathPlain byte is one appendURLAttr copies as it is, and none is
// the colon that could make a path a scheme to filter: a plain form action
// is its own attribute value.
func TestPathPlainIsURLPlain(t *testing.T) {
	for c := 0; c < 256; c++ {
		if pathPlain[c] != 0 && (urlPlain[c] == 0 || c == ':') {
			t.Errorf("%q is pathPlain but not urlPlain, or a colon", rune(c))
		}
		if s := string([]byte{'/', byte(c)}); pathPlain[c] != 0 && string(appendURLAttr(nil, s)) != s {
			t.Errorf("%q changed by appendURLAttr", s)
		}
	}
}

// BenchmarkURLAttr is the form action of a 1,024-byte task token's link.
func BenchmarkURLAttr(b *testing.B) {
	s := "/a/" + strings.Repeat("AbC-_09x", 1800/8)
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = appendURLAttr(buf[:0], s)
	}
}

// BenchmarkFormAction is formAction of the same link's path.
func BenchmarkFormAction(b *testing.B) {
	u := &url.URL{Path: "/a/" + strings.Repeat("AbC-_09x", 1800/8)}
	b.SetBytes(int64(len(u.Path)))
	for b.Loop() {
		_, _ = formAction(u)
	}
}
