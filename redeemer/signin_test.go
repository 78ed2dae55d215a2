package redeemer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/identity/albtest"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// albBundle is a redeemer with APPROVALS_IDENTITY=alb behind a test ALB
// whose clock is the bundle's.
type albBundle struct {
	*bundle
	alb *albtest.ALB
}

func setupALB(t *testing.T) *albBundle {
	t.Helper()
	alb := albtest.New(t)
	b := setup(t, func(c *Config) {
		c.Identity = IdentityALB
		c.ALB = identity.Config{ALBARN: alb.ARN, KeysURL: alb.KeysURL()}
	})
	alb.SetNow(func() time.Time { return b.now })
	return &albBundle{bundle: b, alb: alb}
}

// signedIn returns the header of a valid sign-in as email; it is a
// credential, so the logs must never show it.
func (b *albBundle) signedIn(sub, email string) http.Header {
	h := b.alb.Header(sub, email)
	b.secrets = append(b.secrets, h)
	return http.Header{identity.Header: {h}}
}

func (b *albBundle) signInFailures(reason identity.Reason) float64 {
	return testutil.ToFloat64(b.srv.m.SignInFailures.WithLabelValues(string(reason)))
}

func jsonOf(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	return m
}

// Every link route, for every method, wants a sign-in, whatever the link.
func TestSignInMissing(t *testing.T) {
	b := setupALB(t)
	good := b.path(t, approve)
	for _, r := range []req{
		{method: http.MethodGet, path: good},
		{method: http.MethodHead, path: good},
		post(good, "ok"),
		{method: http.MethodGet, path: link.PathPrefix + "not-a-link"},
	} {
		w := b.do(r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s %s = %d, want 401", r.method, r.path, w.Code)
			continue
		}
		if r.method == http.MethodGet && !strings.Contains(w.Body.String(), "Open the link from the email again") {
			t.Errorf("401 page does not say to open the link again:\n%s", w.Body)
		}
	}
	if n := b.sfn.callCount(); n != 0 {
		t.Errorf("%d Step Functions calls without a sign-in", n)
	}
	if got := b.signInFailures(identity.ReasonMissing); got != 4 {
		t.Errorf("sign_in_failures_total{reason=missing} = %v, want 4", got)
	}

	w := b.do(req{method: http.MethodPost, path: good, json: true})
	got := jsonOf(t, w.Body.Bytes())
	if w.Code != http.StatusUnauthorized || got["outcome"] != "sign_in_required" || got["approver"] != nil {
		t.Errorf("JSON 401 = %d %v (nothing of the link may show)", w.Code, got)
	}
}

func TestSignInInvalid(t *testing.T) {
	b := setupALB(t)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	none := ""
	tests := []struct {
		name   string
		token  func() albtest.Token
		want   identity.Reason
		header string // instead of token
	}{
		{"wrong key", func() albtest.Token {
			tk := b.alb.Token("u-1", "ben@example.com", b.now.Add(time.Minute))
			tk.Key = other
			return tk
		}, identity.ReasonSignature, ""},
		{"expired", func() albtest.Token {
			return b.alb.Token("u-1", "ben@example.com", b.now.Add(-time.Hour))
		}, identity.ReasonExpired, ""},
		{"other load balancer", func() albtest.Token {
			tk := b.alb.Token("u-1", "ben@example.com", b.now.Add(time.Minute))
			tk.Header["signer"] = strings.Replace(albtest.ARN, "approvals", "elsewhere", 1)
			return tk
		}, identity.ReasonSigner, ""},
		{"alg none", func() albtest.Token {
			tk := b.alb.Token("u-1", "ben@example.com", b.now.Add(time.Minute))
			tk.Header["alg"] = "none"
			tk.Signature = &none
			return tk
		}, identity.ReasonAlg, ""},
		{"garbage", nil, identity.ReasonMalformed, "a.b.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if tt.token != nil {
				h = b.alb.Mint(tt.token())
			}
			b.secrets = append(b.secrets, h)
			before := b.signInFailures(tt.want)
			w := b.do(req{method: http.MethodPost, path: b.path(t, approve), form: map[string][]string{"comment": {"x"}},
				json: true, header: http.Header{identity.Header: {h}}})
			if got := jsonOf(t, w.Body.Bytes()); w.Code != http.StatusUnauthorized || got["outcome"] != "sign_in_required" {
				t.Errorf("POST = %d %v, want 401 sign_in_required", w.Code, got)
			}
			if got := b.signInFailures(tt.want) - before; got != 1 {
				t.Errorf("sign_in_failures_total{reason=%s} rose by %v, want 1", tt.want, got)
			}
		})
	}
	if n := b.sfn.callCount(); n != 0 {
		t.Errorf("%d Step Functions calls with invalid sign-ins", n)
	}
}

// Signed in, but as someone else: 403 naming both, on every method, and
// nothing decided.
func TestSignInOtherEmail(t *testing.T) {
	b := setupALB(t)
	p := b.path(t, approve)
	h := b.signedIn("u-ann", "ann@example.com")
	for _, r := range []req{{method: http.MethodGet, path: p, header: h}, {method: http.MethodPost, path: p, header: h,
		form: map[string][]string{"comment": {"let me"}}}} {
		w := b.do(r)
		if w.Code != http.StatusForbidden {
			t.Fatalf("%s = %d, want 403\n%s", r.method, w.Code, w.Body)
		}
		for _, want := range []string{"ann@example.com", "ben@example.com", "Nothing was changed"} {
			if !strings.Contains(w.Body.String(), want) {
				t.Errorf("%s 403 page does not show %q:\n%s", r.method, want, w.Body)
			}
		}
	}
	w := b.do(req{method: http.MethodPost, path: p, header: h, json: true})
	got := jsonOf(t, w.Body.Bytes())
	want := map[string]any{"outcome": "forbidden", "status": 403.0, "approver": "ben@example.com", "signedInAs": "ann@example.com"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("JSON %s = %v, want %v", k, got[k], v)
		}
	}
	if msg, _ := got["message"].(string); !strings.Contains(msg, "ann@example.com") || !strings.Contains(msg, "ben@example.com") {
		t.Errorf("JSON message %q does not name both addresses", msg)
	}
	if n := b.sfn.callCount(); n != 0 {
		t.Errorf("%d Step Functions calls by someone else", n)
	}
	if got := testutil.ToFloat64(b.srv.m.Forbidden); got != 3 {
		t.Errorf("forbidden_total = %v, want 3", got)
	}

	// A sign-in without an email claim is no one's recipient.
	w = b.do(req{method: http.MethodGet, path: p, header: b.signedIn("u-noemail", "")})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "without an email address") {
		t.Errorf("sign-in without email = %d\n%s", w.Code, w.Body)
	}
}

func TestSignInConfirmShowsWho(t *testing.T) {
	b := setupALB(t)
	p := b.path(t, approve)
	h := b.signedIn("u-ben", "Ben@Example.com")
	w := b.do(req{method: http.MethodGet, path: p, header: h})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "<dt>Signed in as</dt><dd>Ben@Example.com</dd>") {
		t.Fatalf("GET = %d, want 200 saying who is signed in:\n%s", w.Code, w.Body)
	}
	w = b.do(req{method: http.MethodGet, path: p, header: h, json: true})
	if got := jsonOf(t, w.Body.Bytes()); got["signedInAs"] != "Ben@Example.com" || got["outcome"] != "confirm" {
		t.Errorf("JSON = %v", got)
	}
}

// The recipient matches whatever the case; the decision carries who signed
// in, and the log their sub (never the header: setup's cleanup checks).
func TestSignInDecides(t *testing.T) {
	b := setupALB(t)
	w := b.do(req{method: http.MethodPost, path: b.path(t, approve), form: map[string][]string{"comment": {"fine"}},
		header: b.signedIn("00u1ben", "BEN@example.COM")})
	if w.Code != http.StatusOK {
		t.Fatalf("POST = %d\n%s", w.Code, w.Body)
	}
	if len(b.sfn.successes) != 1 {
		t.Fatalf("%d SendTaskSuccess calls, want 1", len(b.sfn.successes))
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(b.sfn.successes[0].Output)), &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"action": "approve", "approver": "ben@example.com", "decidedAt": "2026-11-25T09:30:15Z",
		"comment": "fine", "identity": map[string]any{"sub": "00u1ben", "email": "BEN@example.COM", "issuer": albtest.Issuer}}
	if d := cmp.Diff(want, out["decision"]); d != "" {
		t.Errorf("decision (-want +got):\n%s", d)
	}

	// A failure carries it in its cause.
	w = b.do(req{method: http.MethodPost, path: b.path(t, reject), form: map[string][]string{"comment": {"no"}},
		header: b.signedIn("00u1ben", "ben@example.com")})
	if w.Code != http.StatusOK || len(b.sfn.failures) != 1 {
		t.Fatalf("reject = %d, %d failures", w.Code, len(b.sfn.failures))
	}
	var cause struct {
		Decision struct {
			Identity map[string]any `json:"identity"`
		} `json:"decision"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(b.sfn.failures[0].Cause)), &cause); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]any{"sub": "00u1ben", "email": "ben@example.com", "issuer": albtest.Issuer}, cause.Decision.Identity); d != "" {
		t.Errorf("cause identity (-want +got):\n%s", d)
	}
	if logs := b.logs.String(); !strings.Contains(logs, `"msg":"decision recorded"`) || !strings.Contains(logs, `"sub":"00u1ben"`) {
		t.Errorf("decision log lacks the sub:\n%s", logs)
	}
}

// The key server down is not the user's fault: 503 with Retry-After, as
// when Step Functions is, and the sign-in counted as keys_unavailable.
func TestSignInKeysUnavailable(t *testing.T) {
	b := setupALB(t)
	b.alb.Fail(http.StatusBadGateway)
	w := b.do(req{method: http.MethodPost, path: b.path(t, approve), form: map[string][]string{"comment": {""}},
		header: b.signedIn("u-ben", "ben@example.com"), json: true})
	if got := jsonOf(t, w.Body.Bytes()); w.Code != http.StatusServiceUnavailable || got["outcome"] != "unavailable" {
		t.Fatalf("POST = %d %v, want 503 unavailable", w.Code, got)
	}
	if got := w.Header().Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After = %q, want 60", got)
	}
	if got := b.signInFailures(identity.ReasonKeysUnavailable); got != 1 {
		t.Errorf("sign_in_failures_total{reason=keys_unavailable} = %v", got)
	}
	if n := b.sfn.callCount(); n != 0 {
		t.Errorf("%d Step Functions calls", n)
	}

	// Back up: the same link and sign-in work.
	b.alb.Fail(0)
	w = b.do(req{method: http.MethodGet, path: b.path(t, approve), header: b.signedIn("u-ben", "ben@example.com")})
	if w.Code != http.StatusOK {
		t.Errorf("GET after recovery = %d", w.Code)
	}
}

// The load balancer's health check and the page's stylesheet need no
// sign-in: the health check goes to the target directly.
func TestSignInNotOnHealthOrStyle(t *testing.T) {
	b := setupALB(t)
	for _, p := range []string{"/healthz", StylePath} {
		if w := b.do(req{method: http.MethodGet, path: p}); w.Code != http.StatusOK {
			t.Errorf("GET %s without sign-in = %d, want 200", p, w.Code)
		}
	}
	if got := testutil.CollectAndCount(b.srv.m.SignInFailures); got != len(identity.Reasons()) {
		t.Errorf("%d sign-in failure series, want one per reason", got)
	}
	for _, r := range identity.Reasons() {
		if got := b.signInFailures(r); got != 0 {
			t.Errorf("sign_in_failures_total{reason=%s} = %v, want 0", r, got)
		}
	}
}

// With identity link, the header means nothing and decisions carry no
// identity.
func TestSignInIgnoredInLinkMode(t *testing.T) {
	b := setup(t)
	w := b.do(req{method: http.MethodPost, path: b.path(t, approve), form: map[string][]string{"comment": {""}},
		header: http.Header{identity.Header: {"a.b.c"}}})
	if w.Code != http.StatusOK || len(b.sfn.successes) != 1 {
		t.Fatalf("POST = %d", w.Code)
	}
	if out := aws.ToString(b.sfn.successes[0].Output); strings.Contains(out, "identity") {
		t.Errorf("output has an identity in link mode: %s", out)
	}
}

// metrics spells the reasons itself; they must be identity's.
func TestSignInReasonsAreMetricLabels(t *testing.T) {
	var want []string
	for _, r := range identity.Reasons() {
		want = append(want, string(r))
	}
	if d := cmp.Diff(want, metrics.SignInReasons); d != "" {
		t.Errorf("metrics.SignInReasons (-identity.Reasons() +got):\n%s", d)
	}
}

func TestNewRejectsBadIdentity(t *testing.T) {
	kr, _ := link.ParseKeyring(testKeys)
	for name, cfg := range map[string]Config{
		"unknown mode":    {BaseURL: "https://x.example.com", Keyring: kr, Identity: "oidc"},
		"alb without arn": {BaseURL: "https://x.example.com", Keyring: kr, Identity: IdentityALB},
		"alb, bad keys URL": {BaseURL: "https://x.example.com", Keyring: kr, Identity: IdentityALB,
			ALB: identity.Config{ALBARN: albtest.ARN, KeysURL: "ftp://keys.example.com"}},
	} {
		if _, err := New(cfg, &fakeSFN{}, prometheus.NewRegistry(), nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
