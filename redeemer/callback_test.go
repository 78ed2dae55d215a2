package redeemer

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// doJSON POSTs a JSON callback as a bot or CI system would: a JSON body
// and no Accept header.
func (b *bundle) doJSON(t *testing.T, path, body string) (int, jsonBody) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://approvals.example.com"+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	b.srv.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("answer Content-Type %q, want application/json\n%s", ct, w.Body)
	}
	var got jsonBody
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("answer %s: %v", w.Body, err)
	}
	return w.Code, got
}

// A JSON callback decides like the form, and its payload lands in
// decision.payload, in the success output and in the failure cause.
func TestJSONCallback(t *testing.T) {
	b := setup(t)
	code, got := b.doJSON(t, b.path(t, approve, func(c *link.Claims) { c.RedirectURL = "https://ci.example.com/done" }),
		`{"comment": " deployed by the bot\r\n", "payload": {"build": 1234, "tags": ["a", "b"], "nested": {"ok": true}}}`)
	if code != http.StatusOK || got.Outcome != "recorded" {
		t.Fatalf("POST = %d %+v", code, got)
	}
	if len(b.sfn.successes) != 1 {
		t.Fatalf("%d successes, want 1", len(b.sfn.successes))
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(b.sfn.successes[0].Output)), &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"action": "approve", "approver": "ben@example.com", "decidedAt": "2026-11-25T09:30:15Z",
		"comment": "deployed by the bot",
		"payload": map[string]any{"build": 1234.0, "tags": []any{"a", "b"}, "nested": map[string]any{"ok": true}}}
	if d := cmp.Diff(want, out["decision"]); d != "" {
		t.Errorf("decision (-want +got):\n%s", d)
	}
	if got.RedirectURL != "https://ci.example.com/done" {
		t.Errorf("redirectUrl = %q: a JSON caller gets the target in the answer, not a 303", got.RedirectURL)
	}

	code, _ = b.doJSON(t, b.path(t, reject), `{"payload": {"reason": "tests failed"}}`)
	if code != http.StatusOK || len(b.sfn.failures) != 1 {
		t.Fatalf("reject = %d, %d failures", code, len(b.sfn.failures))
	}
	var cause approval.FailureCause
	if err := json.Unmarshal([]byte(aws.ToString(b.sfn.failures[0].Cause)), &cause); err != nil {
		t.Fatal(err)
	}
	if string(cause.Decision.Payload) != `{"reason":"tests failed"}` || cause.Message != "Rejected by approver" {
		t.Errorf("cause = %+v (payload %s)", cause, cause.Decision.Payload)
	}

	// No body at all, or an empty object, is a decision without either.
	for _, body := range []string{`{}`, `{"comment": null, "payload": null}`} {
		b := setup(t)
		if code, _ := b.doJSON(t, b.path(t, approve), body); code != http.StatusOK {
			t.Errorf("%s: %d", body, code)
		}
		if out := aws.ToString(b.sfn.successes[0].Output); strings.Contains(out, "payload") || strings.Contains(out, "comment") {
			t.Errorf("%s: output %s", body, out)
		}
	}
}

// A body the redeemer cannot take is a 400 saying why, and decides
// nothing.
func TestJSONCallbackProblems(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxPayloadDepth+1) + "1" + strings.Repeat("}", MaxPayloadDepth+1)
	justDeepEnough := strings.Repeat(`{"a":`, MaxPayloadDepth) + "1" + strings.Repeat("}", MaxPayloadDepth)
	tests := []struct {
		name, body, outcome, message string
	}{
		{"not JSON", `{"comment": `, "body_invalid", "The body is not valid JSON."},
		{"two values", `{} {}`, "body_invalid", "The body is not valid JSON."},
		{"an array", `[]`, "body_invalid", `The body must be a JSON object {"comment": "...", "payload": {...}}.`},
		{"a string", `"approve"`, "body_invalid", `The body must be a JSON object {"comment": "...", "payload": {...}}.`},
		{"unknown field", `{"coment": "typo"}`, "body_invalid", `Unknown field "coment": a callback has comment and payload.`},
		{"key twice", `{"comment": "a", "comment": "b"}`, "body_invalid", `The key "comment" is given twice in one object.`},
		{"key twice in the payload", `{"payload": {"x": {"k": 1, "k": 2}}}`, "body_invalid", `The key "k" is given twice in one object.`},
		{"escaped key twice", `{"payload": {"\u0061": 1, "a": 2}}`, "body_invalid", `The key "a" is given twice in one object.`},
		{"payload an array", `{"payload": [1, 2]}`, "body_invalid", "The payload must be a JSON object."},
		{"payload a string", `{"payload": "x"}`, "body_invalid", "The payload must be a JSON object."},
		{"payload too deep", `{"payload": ` + deep + `}`, "body_invalid", "The payload is nested deeper than 16 levels."},
		{"payload too large", `{"payload": {"x": "` + strings.Repeat("x", MaxPayloadBytes) + `"}}`, "body_invalid", "The payload is larger than 8192 bytes."},
		{"body too large", `{"payload": {"x": "` + strings.Repeat("x", maxBody) + `"}}`, "body_invalid", "The body is larger than 16384 bytes."},
		{"comment not a string", `{"comment": 5}`, "body_invalid", "The comment must be a string."},
		{"comment too long", `{"comment": "` + strings.Repeat("é", MaxCommentRunes+1) + `"}`, "comment_invalid", "The comment is too long: at most 1000 characters, please shorten it."},
		{"not UTF-8", "{\"comment\": \"\xff\"}", "body_invalid", "The body is not valid UTF-8."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			code, got := b.doJSON(t, b.path(t, approve), tt.body)
			if code != http.StatusBadRequest || got.Outcome != tt.outcome {
				t.Errorf("POST = %d %s, want 400 %s", code, got.Outcome, tt.outcome)
			}
			if got.Message != tt.message {
				t.Errorf("message %q, want %q", got.Message, tt.message)
			}
			if n := b.sfn.callCount(); n != 0 {
				t.Errorf("%d Step Functions calls, want none", n)
			}
		})
	}

	b := setup(t)
	if code, _ := b.doJSON(t, b.path(t, approve), `{"payload": `+justDeepEnough+`}`); code != http.StatusOK {
		t.Errorf("payload %d levels deep: %d, want 200", MaxPayloadDepth, code)
	}
}

// Only application/json (UTF-8) is read as JSON; anything else is a form,
// as before, so a form that happens to hold JSON text decides as a form.
func TestJSONCallbackContentType(t *testing.T) {
	for _, tt := range []struct {
		ct   string
		json bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"Application/JSON; charset=UTF-8", true},
		{"application/json; charset=latin1", false},
		{"text/json", false},
		{"application/x-www-form-urlencoded", false},
	} {
		r, _ := http.NewRequest(http.MethodPost, "https://approvals.example.com/a/x", nil)
		r.Header.Set("Content-Type", tt.ct)
		if got := isJSONBody(r); got != tt.json {
			t.Errorf("isJSONBody(%q) = %t, want %t", tt.ct, got, tt.json)
		}
	}
}
