package redeemer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/internal/testio"
	"github.com/sfn-approvals/sfn-approvals/link"
)

const testKeys = "k2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,k1:HxwdHh8aGxwdHh8aGxwdHh8aGxwdHh8aGxwdHh8aGxw="

// A task token shaped like Step Functions' (standard base64), long enough
// that a leak into the logs cannot go unnoticed.
var taskToken = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("task-token-bytes"), 40))

type bundle struct {
	srv     *Server
	sfn     *fakeSFN
	kr      *link.Keyring
	now     time.Time
	logs    *testio.SyncBuffer
	secrets []string // must never be logged
}

func setup(t testing.TB, opts ...func(*Config)) *bundle {
	t.Helper()
	kr, err := link.ParseKeyring(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{sfn: &fakeSFN{}, kr: kr, now: time.Date(2026, 11, 25, 9, 30, 15, 0, time.UTC), logs: &testio.SyncBuffer{}}
	cfg := Config{
		BaseURL: "https://approvals.example.com",
		Keyring: kr,
		Now:     func() time.Time { return b.now },
		Retry:   awsx.RetryPolicy{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxElapsed: 10 * time.Second},
	}
	for _, o := range opts {
		o(&cfg)
	}
	log := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.srv, err = New(cfg, b.sfn, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	b.secrets = append(b.secrets, taskToken)
	t.Cleanup(func() {
		logs := b.logs.String()
		for _, s := range b.secrets {
			if strings.Contains(logs, s) {
				t.Errorf("logs contain a secret (task token or link):\n%s", logs)
			}
		}
	})
	return b
}

var (
	approve = approval.Action{Name: "approve", Label: "Approve", Type: approval.Success,
		Output: json.RawMessage(`{"approved": true, "ticket": {"id": 42, "amount": 12.50}}`)}
	reject = approval.Action{Name: "reject", Label: "Reject", Type: approval.Failure,
		Error: "Rejected", Cause: "Rejected by approver"}
	extend = approval.Action{Name: "extend", Label: "More time", Type: approval.Heartbeat}
)

// path mints a link for a and returns its path.
func (b *bundle) path(t testing.TB, a approval.Action, mods ...func(*link.Claims)) string {
	t.Helper()
	c := link.Claims{TaskToken: taskToken, Action: a, Recipient: "ben@example.com", ExpiresAt: b.now.Add(72 * time.Hour)}
	for _, m := range mods {
		m(&c)
	}
	tok, err := b.kr.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	b.secrets = append(b.secrets, tok)
	return link.PathPrefix + tok
}

type req struct {
	method, path string
	form         url.Values
	rawBody      string
	json         bool
	ctx          context.Context
	header       http.Header // added to the request
}

func (b *bundle) do(r req) *httptest.ResponseRecorder {
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	} else if r.rawBody != "" {
		body = strings.NewReader(r.rawBody)
	}
	hr := httptest.NewRequest(r.method, "https://approvals.example.com"+r.path, body)
	if body != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.json {
		hr.Header.Set("Accept", "application/json")
	} else {
		hr.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	}
	for k, vs := range r.header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	if r.ctx != nil {
		hr = hr.WithContext(r.ctx)
	}
	w := httptest.NewRecorder()
	b.srv.ServeHTTP(w, hr)
	return w
}

func post(path, comment string) req {
	return req{method: http.MethodPost, path: path, form: url.Values{"comment": {comment}}}
}

func apiErr(code string, fault smithy.ErrorFault) error {
	return &smithy.OperationError{ServiceID: "SFN", OperationName: "SendTaskSuccess",
		Err: &smithy.GenericAPIError{Code: code, Message: "m", Fault: fault}}
}

var throttled = apiErr("ThrottlingException", smithy.FaultClient)

func (b *bundle) decisions(typ, outcome string) float64 {
	return testutil.ToFloat64(b.srv.m.Decisions.WithLabelValues(typ, outcome))
}

func (b *bundle) linkChecks(result string) float64 {
	return testutil.ToFloat64(b.srv.m.LinkChecks.WithLabelValues(result))
}

func TestConfirmPage(t *testing.T) {
	b := setup(t)
	p := b.path(t, approve)
	w := b.do(req{method: http.MethodGet, path: p})
	if w.Code != http.StatusOK {
		t.Fatalf("GET = %d, want 200\n%s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, want := range []string{
		"Approve", "ben@example.com", "Sat 28 Nov 2026, 09:30 UTC", `datetime="2026-11-28T09:30:15Z"`,
		`<form method="post" action="` + p + `">`, `name="comment"`, `maxlength="1000"`,
		`href="/assets/style.css"`, `class="primary"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("confirm page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(strings.ToLower(body), "<script") || strings.Contains(body, "onload") || strings.Contains(body, "onclick") {
		t.Errorf("confirm page has script:\n%s", body)
	}
	if got := w.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
	if b.linkChecks("ok") != 1 {
		t.Errorf("link_checks_total{result=ok} = %v, want 1", b.linkChecks("ok"))
	}

	// A failure action gets the red button.
	if w := b.do(req{method: http.MethodGet, path: b.path(t, reject)}); !strings.Contains(w.Body.String(), `class="danger"`) {
		t.Errorf("reject page has no danger button:\n%s", w.Body)
	}
}

// Mail scanners fetch links: no GET or HEAD, of any link, may reach Step
// Functions.
func TestGetAndHeadNeverCallStepFunctions(t *testing.T) {
	b := setup(t)
	for _, a := range []approval.Action{approve, reject, extend} {
		p := b.path(t, a)
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			for _, j := range []bool{false, true} {
				w := b.do(req{method: m, path: p, json: j})
				if w.Code != http.StatusOK {
					t.Errorf("%s %s json=%v = %d", m, a.Name, j, w.Code)
				}
			}
		}
	}
	expired := b.path(t, approve, func(c *link.Claims) { c.ExpiresAt = b.now.Add(-time.Minute) })
	b.do(req{method: http.MethodGet, path: expired})
	b.do(req{method: http.MethodHead, path: expired})
	if n := b.sfn.callCount(); n != 0 {
		t.Fatalf("GET/HEAD made %d Step Functions calls, want 0", n)
	}
}

func TestConfirmJSON(t *testing.T) {
	b := setup(t)
	w := b.do(req{method: http.MethodGet, path: b.path(t, approve), json: true})
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Fatalf("Content-Type = %q", got)
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"outcome": "confirm", "status": 200.0, "message": "Press the button to record this decision.",
		"action": "approve", "label": "Approve", "type": "success", "approver": "ben@example.com",
		"expiresAt": "2026-11-28T09:30:15Z",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("JSON (-want +got):\n%s", d)
	}
}

func TestLinkProblems(t *testing.T) {
	b := setup(t)
	good := b.path(t, approve)
	tampered := []byte(good)
	tampered[len(tampered)-5] ^= 1
	if tampered[len(tampered)-5] == '/' || tampered[len(tampered)-5] > 'z' {
		tampered[len(tampered)-5] = 'A'
	}
	other, err := link.ParseKeyring("k9:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Mint(link.Claims{TaskToken: taskToken, Action: approve, Recipient: "x@example.com", ExpiresAt: b.now.Add(time.Hour)})
	b.secrets = append(b.secrets, foreign)
	expired := b.path(t, reject, func(c *link.Claims) { c.ExpiresAt = b.now.Add(-time.Hour) })

	tests := []struct {
		name, method, path string
		wantCode           int
		wantOutcome        string
		wantBody           []string
	}{
		{"tampered GET", "GET", string(tampered), 400, "invalid", []string{"Link not valid"}},
		{"tampered POST", "POST", string(tampered), 400, "invalid", nil},
		{"other keyring", "GET", link.PathPrefix + foreign, 400, "invalid", nil},
		{"truncated", "GET", good[:len(good)/2], 400, "invalid", []string{"copy the whole link"}},
		{"empty token", "GET", "/a/", 400, "invalid", nil},
		{"slash in token", "GET", "/a/abc/def", 400, "invalid", nil},
		{"expired GET", "GET", expired, 410, "expired", []string{"Link expired", "Reject", "ben@example.com", "Wed 25 Nov 2026, 08:30 UTC"}},
		{"expired POST", "POST", expired, 410, "expired", nil},
		{"unknown path", "GET", "/approve", 404, "not_found", nil},
		{"root", "GET", "/", 404, "not_found", nil},
		{"put", "PUT", good, 405, "method_not_allowed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := b.do(req{method: tt.method, path: tt.path, form: url.Values{}})
			if w.Code != tt.wantCode {
				t.Errorf("HTML: code %d, want %d", w.Code, tt.wantCode)
			}
			if !strings.Contains(w.Body.String(), `class="`+tt.wantOutcome+`"`) {
				t.Errorf("HTML page is not the %s page:\n%s", tt.wantOutcome, w.Body)
			}
			for _, s := range tt.wantBody {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("page lacks %q:\n%s", s, w.Body)
				}
			}
			w = b.do(req{method: tt.method, path: tt.path, form: url.Values{}, json: true})
			var got struct {
				Outcome string `json:"outcome"`
				Status  int    `json:"status"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("JSON: %v: %s", err, w.Body)
			}
			if w.Code != tt.wantCode || got.Status != tt.wantCode || got.Outcome != tt.wantOutcome {
				t.Errorf("JSON: code %d %+v, want %d %s", w.Code, got, tt.wantCode, tt.wantOutcome)
			}
		})
	}
	if n := b.sfn.callCount(); n != 0 {
		t.Errorf("%d Step Functions calls for bad links, want 0", n)
	}
	if b.linkChecks("invalid") == 0 || b.linkChecks("expired") != 4 {
		t.Errorf("link checks invalid=%v expired=%v", b.linkChecks("invalid"), b.linkChecks("expired"))
	}
	if got := b.do(req{method: "PUT", path: good}).Header().Get("Allow"); got != "GET, HEAD, POST" {
		t.Errorf("405 Allow = %q", got)
	}
}

func TestPostSuccess(t *testing.T) {
	b := setup(t)
	w := b.do(post(b.path(t, approve), "  Looks good <b>ship it</b>\r\nthanks  "))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Decision recorded") ||
		!strings.Contains(w.Body.String(), `<time datetime="2026-11-25T09:30:15Z">Wed 25 Nov 2026, 09:30 UTC</time>`) {
		t.Fatalf("POST = %d\n%s", w.Code, w.Body)
	}
	if len(b.sfn.successes) != 1 || len(b.sfn.failures)+len(b.sfn.heartbeats) != 0 {
		t.Fatalf("calls: %d successes, %d failures, %d heartbeats", len(b.sfn.successes), len(b.sfn.failures), len(b.sfn.heartbeats))
	}
	in := b.sfn.successes[0]
	if aws.ToString(in.TaskToken) != taskToken {
		t.Errorf("task token not passed intact")
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(in.Output)), &got); err != nil {
		t.Fatal(err)
	}
	decision := map[string]any{"action": "approve", "approver": "ben@example.com",
		"decidedAt": "2026-11-25T09:30:15Z", "comment": "Looks good <b>ship it</b>\nthanks"}
	want := map[string]any{
		"approved":  true,
		"ticket":    map[string]any{"id": 42.0, "amount": 12.5},
		"decision":  decision,
		"decisions": []any{decision},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("output (-want +got):\n%s", d)
	}
	if b.decisions("success", "recorded") != 1 {
		t.Errorf("decisions_total{success,recorded} = %v", b.decisions("success", "recorded"))
	}
}

func TestPostSuccessWithoutOutputOrComment(t *testing.T) {
	b := setup(t)
	a := approval.Action{Name: "approve", Type: approval.Success}
	if w := b.do(post(b.path(t, a), "")); w.Code != http.StatusOK {
		t.Fatalf("POST = %d", w.Code)
	}
	want := `{"decision":{"action":"approve","approver":"ben@example.com","decidedAt":"2026-11-25T09:30:15Z"},` +
		`"decisions":[{"action":"approve","approver":"ben@example.com","decidedAt":"2026-11-25T09:30:15Z"}]}`
	if got := aws.ToString(b.sfn.successes[0].Output); got != want {
		t.Errorf("output = %s\nwant %s", got, want)
	}
}

func TestPostFailure(t *testing.T) {
	b := setup(t)
	w := b.do(post(b.path(t, reject), "not this week"))
	if w.Code != http.StatusOK {
		t.Fatalf("POST = %d\n%s", w.Code, w.Body)
	}
	if len(b.sfn.failures) != 1 || len(b.sfn.successes) != 0 {
		t.Fatalf("calls: %d failures, %d successes", len(b.sfn.failures), len(b.sfn.successes))
	}
	in := b.sfn.failures[0]
	if aws.ToString(in.Error) != "Rejected" {
		t.Errorf("error = %q", aws.ToString(in.Error))
	}
	var got approval.FailureCause
	if err := json.Unmarshal([]byte(aws.ToString(in.Cause)), &got); err != nil {
		t.Fatal(err)
	}
	want := approval.FailureCause{Message: "Rejected by approver", Decision: approval.Decision{
		Action: "reject", Approver: "ben@example.com", DecidedAt: b.now, Comment: "not this week"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("cause (-want +got):\n%s", d)
	}
	if b.decisions("failure", "recorded") != 1 {
		t.Error("failure decision not counted")
	}
}

func TestPostHeartbeat(t *testing.T) {
	b := setup(t)
	w := b.do(post(b.path(t, extend, func(c *link.Claims) { c.RedirectURL = "https://after.example.com/" }), ""))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "extended") {
		t.Fatalf("POST = %d, want 200 with the extended page\n%s", w.Code, w.Body)
	}
	if len(b.sfn.heartbeats) != 1 || len(b.sfn.successes)+len(b.sfn.failures) != 0 {
		t.Fatal("heartbeat action did not make exactly one SendTaskHeartbeat")
	}
	if b.decisions("heartbeat", "recorded") != 1 {
		t.Error("heartbeat not counted")
	}
}

func TestPostRedirect(t *testing.T) {
	b := setup(t)
	redirect := func(u string) func(*link.Claims) { return func(c *link.Claims) { c.RedirectURL = u } }

	p := b.path(t, approve, redirect("https://deploy.example.com:8443/done?id=42"))
	get := b.do(req{method: http.MethodGet, path: p})
	if got := get.Header().Get("Content-Security-Policy"); !strings.Contains(got, "form-action 'self' https://deploy.example.com:8443;") &&
		!strings.HasSuffix(got, "form-action 'self' https://deploy.example.com:8443") {
		t.Errorf("confirm page CSP does not allow the redirect origin: %q", got)
	}
	w := b.do(post(p, ""))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "https://deploy.example.com:8443/done?id=42" {
		t.Fatalf("POST = %d Location %q, want 303 to the redirect URL", w.Code, w.Header().Get("Location"))
	}

	// JSON clients get the URL in the body, not a redirect.
	w = b.do(req{method: http.MethodPost, path: b.path(t, reject, redirect("https://deploy.example.com/r")), form: url.Values{}, json: true})
	var got jsonBody
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || got.Outcome != "recorded" || got.RedirectURL != "https://deploy.example.com/r" {
		t.Errorf("JSON POST = %d %+v %v", w.Code, got, err)
	}
	if got.DecidedAt == nil || !got.DecidedAt.Equal(b.now) {
		t.Errorf("decidedAt = %v", got.DecidedAt)
	}

	// Only plain http(s) URLs are followed.
	for _, bad := range []string{"javascript:alert(1)", "//evil.example.com", "ftp://x.example.com/", "https://u:p@x.example.com/", "https://bad host/"} {
		p := b.path(t, approve, redirect(bad))
		if h := b.do(req{method: http.MethodGet, path: p}).Header().Get("Content-Security-Policy"); !strings.HasSuffix(h, "form-action 'self'") {
			t.Errorf("%q: CSP %q", bad, h)
		}
		if w := b.do(post(p, "")); w.Code != http.StatusOK || w.Header().Get("Location") != "" {
			t.Errorf("%q: POST = %d Location %q, want 200 and no redirect", bad, w.Code, w.Header().Get("Location"))
		}
	}
}

func TestCommentValidation(t *testing.T) {
	b := setup(t)
	p := b.path(t, approve)
	long := strings.Repeat("é", MaxCommentRunes+1)
	tests := []struct {
		name     string
		r        req
		wantCode int
		wantMsg  string
	}{
		{"too long", post(p, long), 400, "The comment is too long: at most 1000 characters"},
		{"not UTF-8", req{method: "POST", path: p, rawBody: "comment=%ff%fe"}, 400, "not valid text"},
		{"body over the limit", req{method: "POST", path: p, rawBody: "comment=" + strings.Repeat("x", maxBody+1)}, 400, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := b.do(tt.r)
			body := w.Body.String()
			if w.Code != tt.wantCode || !strings.Contains(body, tt.wantMsg) {
				t.Fatalf("POST = %d, want %d with %q\n%s", w.Code, tt.wantCode, tt.wantMsg, body)
			}
			if !strings.Contains(body, `<form method="post" action="`+p+`">`) {
				t.Errorf("form not shown again:\n%s", body)
			}
		})
	}
	// The long comment is given back for editing.
	if w := b.do(post(p, long)); !strings.Contains(w.Body.String(), long) {
		t.Error("too-long comment not shown again")
	}
	if n := b.sfn.callCount(); n != 0 {
		t.Fatalf("%d Step Functions calls for rejected comments, want 0", n)
	}

	// Exactly the limit, in multi-byte characters and with CRLF line
	// breaks counted as one (as the browser's maxlength does), is accepted.
	ok := strings.Repeat("é", MaxCommentRunes-2) + "\r\nü"
	if w := b.do(post(p, ok)); w.Code != http.StatusOK {
		t.Fatalf("comment of exactly %d characters: %d\n%s", MaxCommentRunes, w.Code, w.Body)
	}
}

func TestRetryThrottlingThenSuccess(t *testing.T) {
	b := setup(t)
	b.sfn.errs = []error{throttled, apiErr("ServiceUnavailable", smithy.FaultServer), &netError{}}
	w := b.do(post(b.path(t, approve), ""))
	if w.Code != http.StatusOK {
		t.Fatalf("POST = %d, want 200\n%s", w.Code, w.Body)
	}
	if n := b.sfn.callCount(); n != 4 {
		t.Errorf("calls = %d, want 4 (3 transient errors, then success)", n)
	}
	if got := testutil.ToFloat64(b.srv.m.SFNRetries.WithLabelValues("SendTaskSuccess")); got != 3 {
		t.Errorf("sfn_retries_total = %v, want 3", got)
	}
	if got := testutil.CollectAndCount(b.srv.m.SFNDuration); got != 3 {
		t.Errorf("duration series = %d, want 3 (one per operation)", got)
	}
}

type netError struct{}

func (*netError) Error() string   { return "connection reset" }
func (*netError) Timeout() bool   { return false }
func (*netError) Temporary() bool { return true }
func (*netError) Unwrap() error   { return syscall.ECONNRESET }

func TestPermanentErrors(t *testing.T) {
	tests := []struct {
		code        string
		wantStatus  int
		wantOutcome string
	}{
		{"TaskTimedOut", 410, "gone"},
		{"TaskDoesNotExist", 410, "gone"},
		{"InvalidToken", 410, "gone"},
		{"AccessDeniedException", 500, "error"},
		{"InvalidOutput", 500, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			b := setup(t)
			b.sfn.errs = []error{apiErr(tt.code, smithy.FaultClient)}
			w := b.do(post(b.path(t, approve), ""))
			if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), `class="`+tt.wantOutcome+`"`) {
				t.Fatalf("POST = %d, want %d %s\n%s", w.Code, tt.wantStatus, tt.wantOutcome, w.Body)
			}
			if n := b.sfn.callCount(); n != 1 {
				t.Errorf("calls = %d, want 1: permanent errors are not retried", n)
			}
			if b.decisions("success", tt.wantOutcome) != 1 {
				t.Errorf("decision not counted as %s", tt.wantOutcome)
			}
		})
	}
}

func TestRetriesExhausted(t *testing.T) {
	b := setup(t, func(c *Config) { c.Retry.MaxAttempts = 3 })
	b.sfn.errs = []error{throttled, throttled, throttled, throttled}
	w := b.do(post(b.path(t, reject), ""))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "This link still works") {
		t.Fatalf("POST = %d, want 503 saying the link still works\n%s", w.Code, w.Body)
	}
	if n := b.sfn.callCount(); n != 3 {
		t.Errorf("calls = %d, want 3", n)
	}
	if b.decisions("failure", "unavailable") != 1 {
		t.Error("not counted as unavailable")
	}
}

// The 503 says when to try again, in the page's words ("in a minute"), for
// the page and for JSON clients alike.
func TestUnavailableRetryAfter(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		b := setup(t, func(c *Config) { c.Retry.MaxAttempts = 1 })
		b.sfn.errs = []error{throttled}
		r := post(b.path(t, approve), "")
		r.json = asJSON
		w := b.do(r)
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("json %t: POST = %d, want 503", asJSON, w.Code)
		}
		if got := w.Header().Get("Retry-After"); got != "60" {
			t.Errorf("json %t: Retry-After = %q, want 60", asJSON, got)
		}
	}
	// Other answers carry none.
	b := setup(t)
	if got := b.do(post(b.path(t, approve), "")).Header().Get("Retry-After"); got != "" {
		t.Errorf("recorded decision: Retry-After = %q, want none", got)
	}
}

// With an https base URL every response, whatever its route or status,
// tells the browser to use https only; with http (local use) none does.
func TestHSTS(t *testing.T) {
	for _, tt := range []struct {
		base, prefix, want string
	}{
		{"https://approvals.example.com", "", "max-age=31536000"},
		{"HTTPS://approvals.example.com/approvals", "/approvals", "max-age=31536000"},
		{"http://127.0.0.1:8080", "", ""},
	} {
		// Four link requests fill the burst; the fifth is refused.
		b := setup(t, func(c *Config) { c.BaseURL = tt.base; c.RateLimit, c.RateBurst = 1, 4 })
		good := tt.prefix + b.path(t, approve)
		for _, r := range []struct {
			name string
			req
			code int
		}{
			{"confirm", req{method: "GET", path: good}, 200},
			{"invalid", req{method: "GET", path: tt.prefix + "/a/nope"}, 400},
			{"405", req{method: "DELETE", path: good}, 405},
			{"recorded", post(good, ""), 200},
			{"rate limited", req{method: "GET", path: good}, 429},
			{"404", req{method: "GET", path: "/nope"}, 404},
			{"style", req{method: "GET", path: tt.prefix + StylePath}, 200},
			{"healthz", req{method: "GET", path: "/healthz"}, 200},
		} {
			w := b.do(r.req)
			if w.Code != r.code {
				t.Errorf("%s %s: status %d, want %d", tt.base, r.name, w.Code, r.code)
			}
			if got := w.Header().Get("Strict-Transport-Security"); got != tt.want {
				t.Errorf("%s %s: Strict-Transport-Security = %q, want %q", tt.base, r.name, got, tt.want)
			}
		}
	}
}

// An attempt that hangs is cut off and retried; the budget is not spent on
// one connection.
func TestHungAttemptIsRetried(t *testing.T) {
	b := setup(t, func(c *Config) { c.AttemptTimeout = 20 * time.Millisecond })
	b.sfn.block = func(ctx context.Context, call int) error {
		if call == 1 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	if w := b.do(post(b.path(t, approve), "")); w.Code != http.StatusOK {
		t.Fatalf("POST = %d, want 200\n%s", w.Code, w.Body)
	}
	if n := b.sfn.callCount(); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}

// The decision is sent even when the approver's browser has gone.
func TestPostCompletesAfterClientLeaves(t *testing.T) {
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.sfn.block = func(ctx context.Context, _ int) error { return ctx.Err() }
	r := post(b.path(t, approve), "")
	r.ctx = ctx
	b.do(r)
	if len(b.sfn.successes) != 1 || b.decisions("success", "recorded") != 1 {
		t.Fatalf("decision not recorded after the client left: %d calls", len(b.sfn.successes))
	}
}

func TestSecurityHeadersEverywhere(t *testing.T) {
	b := setup(t)
	b.sfn.errs = []error{apiErr("TaskTimedOut", smithy.FaultClient)}
	good := b.path(t, approve)
	redirecting := b.path(t, approve, func(c *link.Claims) { c.RedirectURL = "https://after.example.com/" })
	reqs := map[string]req{
		"confirm":      {method: "GET", path: good},
		"head":         {method: "HEAD", path: good},
		"json":         {method: "GET", path: good, json: true},
		"gone":         post(good, ""),
		"303":          post(redirecting, ""),
		"invalid":      {method: "GET", path: "/a/nope"},
		"404":          {method: "GET", path: "/nope"},
		"404 json":     {method: "GET", path: "/nope", json: true},
		"405":          {method: "DELETE", path: good},
		"style":        {method: "GET", path: StylePath},
		"healthz":      {method: "GET", path: "/healthz"},
		"comment long": post(good, strings.Repeat("x", 1001)),
	}
	for name, r := range reqs {
		h := b.do(r).Header()
		for k, want := range map[string]string{
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
			"X-Frame-Options":        "DENY",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", name, k, got, want)
			}
		}
		c := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "style-src 'self'", "img-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(c, want) {
				t.Errorf("%s: CSP %q lacks %q", name, c, want)
			}
		}
		if strings.Contains(c, "script") || strings.Contains(c, "unsafe") {
			t.Errorf("%s: CSP allows script: %q", name, c)
		}
	}
}

func TestStyleAndHealth(t *testing.T) {
	b := setup(t)
	w := b.do(req{method: "GET", path: StylePath})
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(w.Body.String(), "button") {
		t.Errorf("stylesheet: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if w := b.do(req{method: "GET", path: "/healthz"}); w.Code != 200 {
		t.Errorf("healthz = %d before drain", w.Code)
	}
	b.srv.Drain()
	if w := b.do(req{method: "GET", path: "/healthz"}); w.Code != 503 {
		t.Errorf("healthz = %d while draining, want 503", w.Code)
	}
}

func TestBasePath(t *testing.T) {
	b := setup(t, func(c *Config) { c.BaseURL = "https://example.com/approvals/" })
	p := "/approvals" + b.path(t, approve)
	w := b.do(req{method: "GET", path: p})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `action="`+p+`"`) || !strings.Contains(w.Body.String(), `href="/approvals/assets/style.css"`) {
		t.Fatalf("GET under base path = %d\n%s", w.Code, w.Body)
	}
	if w := b.do(req{method: "GET", path: "/approvals" + StylePath}); w.Code != 200 {
		t.Errorf("stylesheet under base path = %d", w.Code)
	}
	if w := b.do(req{method: "GET", path: b.path(t, approve)}); w.Code != 404 {
		t.Errorf("link outside base path = %d, want 404", w.Code)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	kr, _ := link.ParseKeyring(testKeys)
	for name, cfg := range map[string]Config{
		"no keyring":    {BaseURL: "https://x.example.com"},
		"relative base": {BaseURL: "/x", Keyring: kr},
		"query in base": {BaseURL: "https://x.example.com/?a=1", Keyring: kr},
	} {
		if _, err := New(cfg, &fakeSFN{}, prometheus.NewRegistry(), nil); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	if _, err := New(Config{BaseURL: "https://x.example.com", Keyring: kr}, nil, prometheus.NewRegistry(), nil); err == nil {
		t.Error("New accepted a nil client")
	}
}

func TestErrorsClassified(t *testing.T) {
	// The attempt timeout must be retryable and must not look like the
	// budget's own deadline.
	if !awsx.Retryable(errAttemptTimeout) || errors.Is(errAttemptTimeout, context.DeadlineExceeded) {
		t.Error("errAttemptTimeout is not a retryable timeout")
	}
}
