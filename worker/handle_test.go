package worker

import (
	"context"
	"encoding/json"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// handlerBundle is a Handler on fakes, for tests of one message's handling
// without the pool.
type handlerBundle struct {
	h   *Handler
	ses *fakeSES
	sfn *fakeSFN
}

func newHandler(t *testing.T, tmpls *Templates) handlerBundle {
	t.Helper()
	kr, err := link.ParseKeyring(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	if tmpls == nil {
		tmpls = loadTemplates(t, "")
	}
	ev := &events{}
	b := handlerBundle{ses: &fakeSES{ev: ev}, sfn: &fakeSFN{ev: ev}}
	b.h = &Handler{
		Keyring:   kr,
		BaseURL:   testBaseURL,
		Sender:    "approvals@example.com",
		Templates: tmpls,
		Email:     b.ses,
		Tasks:     b.sfn,
		Metrics:   metrics.NewWorker(prometheus.NewRegistry()),
		Now:       func() time.Time { return testNow },
	}
	return b
}

// causeProblems reads the problems out of a SendTaskFailure cause.
func causeProblems(t *testing.T, cause *string) []string {
	t.Helper()
	var c struct{ Problems []string }
	if err := json.Unmarshal([]byte(aws.ToString(cause)), &c); err != nil {
		t.Fatalf("cause %q: %v", aws.ToString(cause), err)
	}
	return c.Problems
}

// Each destination SES is given reads back as exactly the one address the
// request was validated with; one that would read as another is refused
// before anything is sent.
func TestHandleSESGetsTheValidatedAddress(t *testing.T) {
	b := newHandler(t, nil)
	to := []string{"ben@example.com", "Ben Two <ben2@example.com>", `"Doe, Jane" <jane@example.com>`, "=?utf-8?q?J=C3=B6rg?= <j@example.com>"}
	reply := []string{`"Lead, Ops" <lead@example.com>`, "o'brien@example.com"}
	body, _ := json.Marshal(map[string]any{"taskToken": testToken, "to": to, "replyTo": reply, "subject": "s"})
	if r := b.h.Handle(context.Background(), body); r.outcome != metrics.HandledSent || r.emails != len(to) {
		t.Fatalf("Handle = %+v (%v), want %d emails sent", r, r.reason, len(to))
	}
	readBack := func(field, s string) string {
		list, err := mail.ParseAddressList(s)
		if err != nil || len(list) != 1 {
			t.Errorf("%s %q reads as %v, %v; want one address", field, s, list, err)
			return ""
		}
		return list[0].Address
	}
	var gotTo []string
	for _, in := range b.ses.emails() {
		if n := len(in.Destination.ToAddresses); n != 1 {
			t.Fatalf("%d To addresses, want 1", n)
		}
		gotTo = append(gotTo, readBack("To", in.Destination.ToAddresses[0]))
		var gotReply []string
		for _, s := range in.ReplyToAddresses {
			gotReply = append(gotReply, readBack("Reply-To", s))
		}
		if diff := cmp.Diff([]string{"lead@example.com", "o'brien@example.com"}, gotReply); diff != "" {
			t.Errorf("Reply-To (-want +got):\n%s", diff)
		}
	}
	if diff := cmp.Diff([]string{"ben@example.com", "ben2@example.com", "jane@example.com", "j@example.com"}, gotTo); diff != "" {
		t.Errorf("To (-want +got):\n%s", diff)
	}

	// net/mail reads this as one address, x@evil.example, victim@example.com,
	// which SES would read as two.
	b = newHandler(t, nil)
	body = []byte(`{"taskToken":"` + testToken + `","to":["\"x@evil.example, victim\"@example.com"],"subject":"s"}`)
	r := b.h.Handle(context.Background(), body)
	if r.outcome != metrics.HandledInvalid || !r.delete || len(b.ses.emails()) != 0 {
		t.Fatalf("Handle = %+v with %d emails, want invalid and nothing sent", r, len(b.ses.emails()))
	}
	fails := b.sfn.failures()
	if len(fails) != 1 || aws.ToString(fails[0].Error) != ErrInvalidRequest ||
		!strings.Contains(strings.Join(causeProblems(t, fails[0].Cause), "\n"), "has a quoted local part") {
		t.Errorf("failures = %+v, want one %s naming the quoted local part", fails, ErrInvalidRequest)
	}
}

// An approval request whose email would lack its links fails its execution
// at once, naming the template, and sends nothing: not even the emails of
// recipients whose copy would have been fine.
func TestHandleApprovalWithoutLinks(t *testing.T) {
	tmpls := loadTemplates(t, writeTemplates(t, map[string]string{
		// Links only for one recipient.
		"only-ann.html.tmpl": `{{if eq .Recipient "ann@example.com"}}{{range .Actions}}<a href="{{.URL}}">{{.Label}}</a>{{end}}{{end}}`,
		"only-ann.txt.tmpl":  `{{if eq .Recipient "ann@example.com"}}{{range .Actions}}{{.URL}}{{end}}{{end}}`,
	}))
	tests := []struct {
		name string
		body string
		want string // in the cause
	}{
		{"notification template with a token",
			`{"taskToken":"` + testToken + `","to":["ann@example.com"],"subject":"s","template":"notification"}`,
			`template "notification": the email to ann@example.com lacks the link of "approve" (HTML and text), "reject" (HTML and text)`},
		{"override without links for one recipient",
			`{"taskToken":"` + testToken + `","to":["ann@example.com","ben@example.com"],"subject":"s","template":"only-ann"}`,
			`template "only-ann": the email to ben@example.com lacks the link of "approve" (HTML and text)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newHandler(t, tmpls)
			r := b.h.Handle(context.Background(), []byte(tt.body))
			if r.outcome != metrics.HandledInvalid || !r.delete || r.emails != 0 {
				t.Errorf("Handle = %+v (%v), want invalid, deleted, no email", r, r.reason)
			}
			if n := len(b.ses.emails()); n != 0 {
				t.Errorf("%d emails sent", n)
			}
			fails := b.sfn.failures()
			if len(fails) != 1 || aws.ToString(fails[0].Error) != ErrInvalidRequest {
				t.Fatalf("failures = %+v, want one %s", fails, ErrInvalidRequest)
			}
			if p := causeProblems(t, fails[0].Cause); len(p) != 1 || !strings.Contains(p[0], tt.want) {
				t.Errorf("problems = %q, want one containing %q", p, tt.want)
			}
		})
	}

	// Without a token the same template is a notification and is sent.
	b := newHandler(t, tmpls)
	r := b.h.Handle(context.Background(), []byte(`{"to":["ann@example.com"],"subject":"s","template":"notification"}`))
	if r.outcome != metrics.HandledNotified || len(b.ses.emails()) != 1 {
		t.Errorf("notification: Handle = %+v (%v), %d emails", r, r.reason, len(b.ses.emails()))
	}
}
