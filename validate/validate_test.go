package validate

import (
	"errors"
	"net/mail"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestURL(t *testing.T) {
	tests := []struct {
		in   string
		want error // nil: accepted
	}{
		{"https://approvals.example.com", nil},
		{"https://approvals.example.com/after?id=42&x=%C3%BC", nil},
		{"http://localhost:8080/", nil},
		{"HTTPS://Deploy.Example.COM:8443/done", nil},
		{"https://xn--bcher-kva.example/", nil}, // punycode
		{"https://192.0.2.1/", nil},
		{"https://[2001:db8::1]:8443/", nil},
		{"https://example.com/ünïcode-path", nil}, // only the host must be ASCII
		{"", ErrNotHTTP},
		{"/after", ErrNotHTTP},
		{"//evil.example.com/", ErrNotHTTP},
		{"javascript:alert(1)", ErrNotHTTP},
		{"ftp://x.example.com/", ErrNotHTTP},
		{"https:example.com", ErrNotHTTP},
		{"https:///path", ErrNotHTTP},
		{"https://x.example.com:abc/", ErrNotHTTP},
		{"https://u:p@x.example.com/", ErrUserinfo},
		{"https://u@x.example.com/", ErrUserinfo},
		{"https://@x.example.com/", ErrUserinfo},
		{"https://x.example.com/#top", ErrFragment},
		{"https://x.example.com/#", ErrFragment},
		{"https://bücher.example/", ErrNonASCIIHost},
		{"https://b%C3%BCcher.example/", ErrNonASCIIHost},
		{"https://a;b.example/", ErrHost},
		{"https://a,b.example/", ErrHost},
		{"https://x_y.example/", ErrHost},
		{"https://x.example.com:/", ErrHost},
		{"https://[fe80::1%25eth0]/", ErrHost},
		{"https://[192.0.2.1]/", ErrNotHTTP}, // url.Parse refuses it
		{"https://x.example.com/a b", ErrSpace},
		{"https://x.example.com/\t", ErrSpace},
		{" https://x.example.com/", ErrSpace},
	}
	for _, tt := range tests {
		u, err := URL(tt.in)
		if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
			t.Errorf("URL(%q) = %v, want %v", tt.in, err, tt.want)
			continue
		}
		if err == nil && u == nil {
			t.Errorf("URL(%q) returned no URL", tt.in)
		}
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"https://approvals.example.com", nil},
		{"https://example.com/approvals/", nil},
		{"https://a.example.com/?x=1", ErrQuery},
		{"https://a.example.com/?", ErrQuery},
		{"https://u@a.example.com/", ErrUserinfo},
		{"https://a.example.com/#x", ErrFragment},
		{"approvals.example.com", ErrNotHTTP},
	}
	for _, tt := range tests {
		if _, err := BaseURL(tt.in); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
			t.Errorf("BaseURL(%q) = %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestAddress(t *testing.T) {
	tests := []struct {
		in      string
		want    mail.Address
		wantErr error
	}{
		{in: "ben@example.com", want: mail.Address{Address: "ben@example.com"}},
		{in: "  ben@example.com ", want: mail.Address{Address: "ben@example.com"}},
		{in: "<ben@example.com>", want: mail.Address{Address: "ben@example.com"}},
		{in: "Ben Example <ben@example.com>", want: mail.Address{Name: "Ben Example", Address: "ben@example.com"}},
		{in: "Ben<ben@example.com>", want: mail.Address{Name: "Ben", Address: "ben@example.com"}},
		{in: `"Doe, Jane (ops)" <jane@example.com>`, want: mail.Address{Name: "Doe, Jane (ops)", Address: "jane@example.com"}},
		{in: "=?utf-8?q?J=C3=B6rg?= <j@example.com>", want: mail.Address{Name: "Jörg", Address: "j@example.com"}},
		{in: "first.last+tag@sub.example.com", want: mail.Address{Address: "first.last+tag@sub.example.com"}},

		{in: `"x@evil.example, victim"@example.com`, wantErr: ErrQuotedLocal},
		{in: `"abc"@example.com`, wantErr: ErrQuotedLocal},
		{in: `Ann <"x, y"@example.com>`, wantErr: ErrQuotedLocal},
		{in: `a."b"@example.com`, wantErr: ErrNotAddress},
		{in: "a@example.com (Ann)", wantErr: ErrComment},
		{in: "Ann (ops) <a@example.com>", wantErr: ErrComment},
		{in: "g: a@example.com;", wantErr: ErrGroup},
		{in: "g: Ann <a@example.com>;", wantErr: ErrGroup},
		{in: "a@example.com\r\nBcc: e@evil.example", wantErr: ErrLineBreak},
		{in: "=?utf-8?q?a=0D=0AX-Injected=3A_1?= <a@example.com>", wantErr: ErrNameControls},
		{in: "nobody", wantErr: ErrNotAddress},
		{in: "a@example.com, b@example.com", wantErr: ErrNotAddress},
		{in: "", wantErr: ErrNotAddress},
	}
	for _, tt := range tests {
		got, err := Address(tt.in)
		if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Errorf("Address(%q) = %+v, %v; want error %v", tt.in, got, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Address(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestAddressRoundTrip holds what the worker relies on when it hands SES an
// accepted address: read back as a list, it is one address, the same one.
func TestAddressRoundTrip(t *testing.T) {
	for _, in := range []string{
		"ben@example.com",
		"Ben Example <ben@example.com>",
		`"Doe, Jane" <jane@example.com>`,
		"=?utf-8?q?J=C3=B6rg?= <j@example.com>",
		"ü@example.com",
		"o'brien@example.com",
	} {
		a, err := Address(in)
		if err != nil {
			t.Fatalf("Address(%q): %v", in, err)
		}
		s := a.Address
		if a.Name != "" {
			s = a.String()
		}
		list, err := mail.ParseAddressList(s)
		if err != nil || len(list) != 1 || list[0].Address != a.Address || list[0].Name != a.Name {
			t.Errorf("%q is written %q, which reads back as %v, %v", in, s, list, err)
		}
	}
}

// FuzzAddressPlain holds Address's shortcut for a plain addr-spec to the
// full check: whatever the shortcut takes, net/mail and the checks after
// it take as the same address, with no name.
func FuzzAddressPlain(f *testing.F) {
	for _, s := range []string{"ben@example.com", "a.b+c@d-e.example", "a..b@x", ".a@x", "a.@x", "a@x.", "a@.x", "a@b@c",
		"@x", "a@", "a@[1.2.3.4]", "a b@x", "\"a\"@x", "a(b)@x", "a;b@x", "Ben <ben@example.com>", "!#$%&'*+/=?^_`{|}~-@x", "é@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainAddrSpec(s) {
			return
		}
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" || a.Address != s {
			t.Fatalf("net/mail: %+v, %v; the shortcut takes %q as itself", a, err, s)
		}
		// A leading space keeps the shortcut out of the way: net/mail
		// skips it, and so do the checks after it.
		full, err := Address(" " + s)
		if err != nil || full != *a {
			t.Fatalf("the full check: %+v, %v; the shortcut takes %q as itself", full, err, s)
		}
		if strings.ContainsAny(s, "\r\n") {
			t.Fatalf("the shortcut takes %q, which has a line break", s)
		}
	})
}
