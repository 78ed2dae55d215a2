package worker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

var _ channelPoster = (*fakePoster)(nil)

// testChannels are the channels the handler tests configure; their URLs
// hold a recognisable secret part that no error or cause may repeat.
const testChannels = `{
	"ops":  {"type": "slack",   "url": "https://hooks.slack.example/services/T0/B0/SECRETSLACK"},
	"team": {"type": "teams",   "url": "https://teams.example/workflows/SECRETTEAMS"},
	"ci":   {"type": "webhook", "url": "https://ci.example/hooks/SECRETHOOK", "secret": "0123456789abcdef-secret"}
}`

// fakePoster records posts and answers as channel.Poster does: nil for a
// 2xx, a *channel.PostError otherwise.
type fakePoster struct {
	ev *events
	// status answers each channel by name; missing means 200.
	status map[string]int

	mu    sync.Mutex
	posts []post
}

func (f *fakePoster) PostBody(ctx context.Context, ch channel.Channel, body []byte) error {
	f.ev.add("post " + ch.Name)
	f.mu.Lock()
	f.posts = append(f.posts, post{ch: ch, body: body})
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return &channel.PostError{Channel: ch.Name, Type: ch.Type}
	}
	code := f.status[ch.Name]
	switch {
	case code == 0 || code/100 == 2:
		return nil
	case code == http.StatusTooManyRequests || code >= 500:
		return &channel.PostError{Channel: ch.Name, Type: ch.Type, Status: code}
	}
	return &channel.PostError{Channel: ch.Name, Type: ch.Type, Status: code, Permanent: true}
}

func (f *fakePoster) sent() []post {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]post(nil), f.posts...)
}

func withChannels(t *testing.T, b handlerBundle, status map[string]int) *fakePoster {
	t.Helper()
	cfg, err := channel.Parse(testChannels)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePoster{ev: b.ses.ev, status: status}
	b.h.Channels, b.h.Poster = cfg, p
	return p
}

func channelRequest(extra string) []byte {
	return []byte(`{"taskToken":"` + testToken + `","to":["ann@example.com"],"channels":["ops","team","ci"],"subject":"Deploy 42","data":{"env":"prod"}` + extra + `}`)
}

// Every channel gets one message whose buttons are links minted for
// "channel:NAME", posted before the emails go out.
func TestHandleChannelsDelivered(t *testing.T) {
	b := newHandler(t, nil)
	p := withChannels(t, b, nil)
	r := b.h.Handle(context.Background(), channelRequest(""))
	if r.outcome != metrics.HandledSent || !r.delete || r.emails != 1 {
		t.Fatalf("Handle = %+v (%v), want sent, deleted, 1 email", r, r.reason)
	}
	if diff := cmp.Diff([]string{"post ops", "post team", "post ci", "send ann@example.com"}, b.ses.ev.list()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, sent := range p.sent() {
		urls := channelURLs(t, sent)
		if len(urls) != 2 {
			t.Fatalf("%s: %d links, want 2 (approve, reject)", sent.ch, len(urls))
		}
		for _, u := range urls {
			c, err := b.h.Keyring.Open(strings.TrimPrefix(u, testBaseURL+link.PathPrefix), testNow)
			if err != nil {
				t.Fatalf("%s: link %q: %v", sent.ch, u, err)
			}
			if want := "channel:" + sent.ch.Name; c.Recipient != want || c.TaskToken != testToken {
				t.Errorf("%s: link for %q (token ok: %t), want %q", sent.ch, c.Recipient, c.TaskToken == testToken, want)
			}
		}
	}
	for _, typ := range []string{"slack", "teams", "webhook"} {
		if n := testutil.ToFloat64(b.h.Metrics.ChannelPosts.WithLabelValues(typ, metrics.PostDelivered)); n != 1 {
			t.Errorf("%s delivered = %v, want 1", typ, n)
		}
	}
}

// channelURLs are the links in a channel message, as its receiver reads
// them: Slack's buttons, Teams' Action.OpenUrl, a webhook's actions.
func channelURLs(t *testing.T, sent post) []string {
	t.Helper()
	var urls []string
	switch sent.ch.Type {
	case channel.Slack:
		var m struct {
			Blocks []struct {
				Type     string
				Elements []struct{ URL string }
			}
		}
		mustUnmarshal(t, sent.body, &m)
		for _, bl := range m.Blocks {
			if bl.Type == "actions" {
				for _, e := range bl.Elements {
					urls = append(urls, e.URL)
				}
			}
		}
	case channel.Teams:
		var m struct {
			Attachments []struct {
				Content struct {
					Actions []struct{ Type, URL string }
				}
			}
		}
		mustUnmarshal(t, sent.body, &m)
		for _, a := range m.Attachments[0].Content.Actions {
			urls = append(urls, a.URL)
		}
	case channel.Webhook:
		var m struct{ Actions []struct{ URL string } }
		mustUnmarshal(t, sent.body, &m)
		for _, a := range m.Actions {
			urls = append(urls, a.URL)
		}
	}
	return urls
}

// A channel message tells the request's quorum and requester, and its
// links carry them and the approvers (to and cc, without the requester),
// which the redeemer admits under sign-in; an address's links carry no
// approvers.
func TestHandleChannelPolicy(t *testing.T) {
	b := newHandler(t, nil)
	b.h.VotesTable = true
	p := withChannels(t, b, nil)
	body := []byte(`{"taskToken":"` + testToken + `","to":["ann@example.com","Ben@example.com"],"cc":["cy@example.com"],` +
		`"channels":["ops","team","ci"],"subject":"Deploy 42","requestedBy":"ben@example.com","minApprovals":3}`)
	r := b.h.Handle(context.Background(), body)
	if r.outcome != metrics.HandledSent || r.emails != 2 {
		t.Fatalf("Handle = %+v (%v), want sent, 2 emails", r, r.reason)
	}
	sent := p.sent()
	if len(sent) != 3 {
		t.Fatalf("%d posts, want 3", len(sent))
	}
	for _, s := range sent {
		switch s.ch.Type {
		case channel.Webhook:
			var m struct {
				MinApprovals int
				RequestedBy  string
			}
			mustUnmarshal(t, s.body, &m)
			if m.MinApprovals != 3 || m.RequestedBy != "ben@example.com" {
				t.Errorf("webhook body minApprovals %d, requestedBy %q; want 3, ben@example.com", m.MinApprovals, m.RequestedBy)
			}
		default:
			if !strings.Contains(string(s.body), "Needs 3 approvals") || !strings.Contains(string(s.body), "Requested by ben@example.com") {
				t.Errorf("%s message does not tell the policy:\n%s", s.ch, s.body)
			}
		}
		for _, u := range channelURLs(t, s) {
			c, err := b.h.Keyring.Open(strings.TrimPrefix(u, testBaseURL+link.PathPrefix), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if c.MinApprovals != 3 || c.RequestedBy != "ben@example.com" {
				t.Errorf("%s link: MinApprovals %d, RequestedBy %q; want 3, ben@example.com", s.ch, c.MinApprovals, c.RequestedBy)
			}
			got := map[string]bool{}
			for _, a := range []string{"ann@example.com", "CY@example.com", "ben@example.com", "dee@example.com"} {
				got[a] = c.Approvers.Has(a)
			}
			want := map[string]bool{"ann@example.com": true, "CY@example.com": true, "ben@example.com": false, "dee@example.com": false}
			if diff := cmp.Diff(want, got); diff != "" || len(c.Approvers) != 2 {
				t.Errorf("%s link: %d approvers; Has (-want +got):\n%s", s.ch, len(c.Approvers), diff)
			}
		}
	}
	linkRE := regexp.MustCompile(regexp.QuoteMeta(testBaseURL+link.PathPrefix) + `[A-Za-z0-9_-]+`)
	for _, in := range b.ses.emails() {
		for _, u := range linkRE.FindAllString(aws.ToString(in.Content.Simple.Body.Text.Data), -1) {
			c, err := b.h.Keyring.Open(strings.TrimPrefix(u, testBaseURL+link.PathPrefix), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if c.Approvers != nil {
				t.Errorf("email link for %s carries %d approvers, want none", c.Recipient, len(c.Approvers))
			}
		}
	}
}

// A request that lists no address leaves its channel links without
// approvers: under sign-in, anyone but the requester decides through them.
func TestHandleChannelWithoutAddresses(t *testing.T) {
	b := newHandler(t, nil)
	p := withChannels(t, b, nil)
	body := []byte(`{"taskToken":"` + testToken + `","channels":["ops"],"subject":"Deploy 42","requestedBy":"ben@example.com"}`)
	if r := b.h.Handle(context.Background(), body); r.outcome != metrics.HandledSent {
		t.Fatalf("Handle = %+v (%v), want sent", r, r.reason)
	}
	for _, s := range p.sent() {
		for _, u := range channelURLs(t, s) {
			c, err := b.h.Keyring.Open(strings.TrimPrefix(u, testBaseURL+link.PathPrefix), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if c.Approvers != nil || c.RequestedBy != "ben@example.com" {
				t.Errorf("link: %d approvers, requestedBy %q; want none, ben@example.com", len(c.Approvers), c.RequestedBy)
			}
		}
	}
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}

// 429 and 5xx are transient: the message is retried whole, nothing is
// failed, and no email has gone out yet.
func TestHandleChannelTransient(t *testing.T) {
	for _, code := range []int{http.StatusTooManyRequests, http.StatusBadGateway} {
		b := newHandler(t, nil)
		p := withChannels(t, b, map[string]int{"team": code})
		r := b.h.Handle(context.Background(), channelRequest(""))
		if r.outcome != metrics.HandledRetried || r.delete || r.release {
			t.Errorf("%d: Handle = %+v, want retried later", code, r)
		}
		if len(b.sfn.failures()) != 0 || len(b.ses.emails()) != 0 || len(p.sent()) != 2 {
			t.Errorf("%d: %d failures, %d emails, %d posts; want 0, 0, 2 (stopped at team)", code, len(b.sfn.failures()), len(b.ses.emails()), len(p.sent()))
		}
		if n := testutil.ToFloat64(b.h.Metrics.ChannelPosts.WithLabelValues("teams", metrics.PostTransient)); n != 1 {
			t.Errorf("%d: teams transient = %v, want 1", code, n)
		}
	}
}

// A post cut short by shutdown releases the message at once.
func TestHandleChannelShutdown(t *testing.T) {
	b := newHandler(t, nil)
	withChannels(t, b, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := b.h.Handle(ctx, channelRequest("")); r.outcome != metrics.HandledRetried || !r.release {
		t.Errorf("Handle = %+v, want released", r)
	}
}

// Any other 4xx fails the approval with Approvals.ChannelRejected; the
// cause names the channel and the status, never the URL.
func TestHandleChannelRejected(t *testing.T) {
	b := newHandler(t, nil)
	p := withChannels(t, b, map[string]int{"ops": http.StatusForbidden})
	r := b.h.Handle(context.Background(), channelRequest(""))
	if r.outcome != metrics.HandledRejected || !r.delete {
		t.Fatalf("Handle = %+v (%v), want rejected and deleted", r, r.reason)
	}
	if len(p.sent()) != 1 || len(b.ses.emails()) != 0 {
		t.Errorf("%d posts, %d emails; want 1, 0", len(p.sent()), len(b.ses.emails()))
	}
	fails := b.sfn.failures()
	if len(fails) != 1 || aws.ToString(fails[0].Error) != ErrChannelRejected {
		t.Fatalf("failures = %+v, want one %s", fails, ErrChannelRejected)
	}
	cause := aws.ToString(fails[0].Cause)
	if diff := cmp.Diff([]string{"channel ops (slack) answered 403 Forbidden"}, causeProblems(t, fails[0].Cause)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	for _, secret := range []string{"SECRETSLACK", "hooks.slack.example"} {
		if strings.Contains(cause, secret) || strings.Contains(r.reason.Error(), secret) {
			t.Errorf("cause %q or reason %q holds %q", cause, r.reason, secret)
		}
	}
	if n := testutil.ToFloat64(b.h.Metrics.ChannelPosts.WithLabelValues("slack", metrics.PostRejected)); n != 1 {
		t.Errorf("slack rejected = %v, want 1", n)
	}
	if n := testutil.ToFloat64(b.h.Metrics.FailFast.WithLabelValues(ErrChannelRejected, "ok")); n != 1 {
		t.Errorf("fail fast %s = %v, want 1", ErrChannelRejected, n)
	}
}

// A request one of whose channels cannot show it (here a link longer than
// a Slack button takes) fails with Approvals.InvalidRequest and posts and
// sends nothing, not even to the channels that could.
func TestHandleChannelBodyCannotBeBuilt(t *testing.T) {
	b := newHandler(t, nil)
	p := withChannels(t, b, nil)
	body, _ := json.Marshal(map[string]any{
		"taskToken": strings.Repeat("t", MaxTaskTokenLen), "to": []string{"ann@example.com"},
		"channels": []string{"ci", "ops"}, "subject": "s",
		"redirectUrl": "https://example.com/" + strings.Repeat("r", MaxRedirectLen-len("https://example.com/")),
	})
	r := b.h.Handle(context.Background(), body)
	if r.outcome != metrics.HandledInvalid || !r.delete {
		t.Fatalf("Handle = %+v (%v), want invalid", r, r.reason)
	}
	if len(p.sent()) != 0 || len(b.ses.emails()) != 0 {
		t.Errorf("%d posts, %d emails; want none", len(p.sent()), len(b.ses.emails()))
	}
	fails := b.sfn.failures()
	if len(fails) != 1 || aws.ToString(fails[0].Error) != ErrInvalidRequest {
		t.Fatalf("failures = %+v, want one %s", fails, ErrInvalidRequest)
	}
	if p := causeProblems(t, fails[0].Cause); len(p) != 1 || !strings.Contains(p[0], `slack channel "ops"`) || !strings.Contains(p[0], "Slack button") {
		t.Errorf("problems = %q, want the ops channel's too-long link", p)
	}
}

// A notification to a channel posts the message without actions; one the
// channel refuses is dropped, as nothing waits on it.
func TestHandleChannelNotification(t *testing.T) {
	b := newHandler(t, nil)
	p := withChannels(t, b, nil)
	r := b.h.Handle(context.Background(), []byte(`{"channels":["ci"],"subject":"Deployed 42"}`))
	if r.outcome != metrics.HandledNotified || !r.delete || r.emails != 0 {
		t.Fatalf("Handle = %+v (%v), want notified", r, r.reason)
	}
	var m struct {
		Subject string
		Actions []json.RawMessage
	}
	mustUnmarshal(t, p.sent()[0].body, &m)
	if m.Subject != "Deployed 42" || m.Actions == nil || len(m.Actions) != 0 {
		t.Errorf("webhook body %s, want the subject and actions []", p.sent()[0].body)
	}

	b = newHandler(t, nil)
	withChannels(t, b, map[string]int{"ci": http.StatusGone})
	r = b.h.Handle(context.Background(), []byte(`{"channels":["ci"],"subject":"Deployed 42"}`))
	if r.outcome != metrics.HandledRejected || !r.delete || len(b.sfn.failures()) != 0 {
		t.Errorf("Handle = %+v, %d failures; want rejected, deleted, none failed", r, len(b.sfn.failures()))
	}
}

// "channels" names configured channels; with it, "to" may be left out.
// Every problem is listed at once, and none quotes a URL.
func TestDecodeRequestChannels(t *testing.T) {
	cfg, err := channel.Parse(testChannels)
	if err != nil {
		t.Fatal(err)
	}
	opts := DecodeOptions{Now: testNow, Channels: cfg}
	r, err := DecodeRequest([]byte(`{"taskToken":"T","channels":["ci","ops"],"subject":"s"}`), opts)
	if err != nil {
		t.Fatalf("channels without to: %v", err)
	}
	var names []string
	for _, ch := range r.Channels {
		names = append(names, ch.Name)
	}
	if diff := cmp.Diff([]string{"ci", "ops"}, names); diff != "" || len(r.To) != 0 {
		t.Errorf("channels (-want +got):\n%s; to %v", diff, r.To)
	}

	tests := []struct {
		name string
		body string
		opts DecodeOptions
		want []string
	}{
		{"unknown and repeated names", `{"taskToken":"T","to":["a@example.com"],"channels":["ops","nope","ops","Ops"],"subject":"s"}`, opts,
			[]string{
				`channels[1]: no channel named "nope" (have ci, ops, team)`,
				`channels[2]: "ops" appears more than once (each channel gets one message)`,
				`channels[3]: no channel named "Ops" (have ci, ops, team)`,
			}},
		{"no channels configured", `{"taskToken":"T","channels":["ops"],"subject":"s"}`, DecodeOptions{Now: testNow},
			[]string{`channels[0]: no channel named "ops" (this worker has no channels configured)`}},
		{"neither to nor channels", `{"taskToken":"T","cc":["a@example.com"],"subject":"s"}`, opts,
			[]string{"to, channels: at least one address or channel is required"}},
		{"both empty", `{"taskToken":"T","to":[],"channels":[],"subject":"s"}`, opts,
			[]string{"to, channels: at least one address or channel is required"}},
		{"not a list", `{"taskToken":"T","channels":"ops","subject":"s"}`, opts,
			[]string{"channels: must be an array of channel names"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.body), tt.opts)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("DecodeRequest = %v, want a *ValidationError", err)
			}
			got, want := ve.Problems, tt.want
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			for _, p := range got {
				if strings.Contains(p, "SECRET") || strings.Contains(p, "https://") {
					t.Errorf("problem %q quotes a channel's URL", p)
				}
			}
		})
	}

	body := `{"taskToken":"T","channels":["ci"` + strings.Repeat(`,"ci"`, MaxChannels) + `],"subject":"s"}`
	_, err = DecodeRequest([]byte(body), opts)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Problems[0] != "channels: 11 channels, at most 10" {
		t.Errorf("%d channels: %v, want the count first", MaxChannels+1, err)
	}
}

// Every channel type has its series in channel_posts_total from the start,
// and no label value names a type that does not exist.
func TestChannelTypesAreMetricLabels(t *testing.T) {
	for _, typ := range []channel.Type{channel.Slack, channel.Teams, channel.Webhook} {
		if !slices.Contains(metrics.ChannelTypes, string(typ)) {
			t.Errorf("channel type %q is not in metrics.ChannelTypes", typ)
		}
	}
	for _, l := range metrics.ChannelTypes {
		if !channel.Type(l).Valid() {
			t.Errorf("metrics.ChannelTypes has %q, which is no channel type", l)
		}
	}
}
