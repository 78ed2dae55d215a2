package worker

import (
	"encoding/json"
	"errors"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)

func decode(t *testing.T, body string) (*Request, error) {
	t.Helper()
	return DecodeRequest([]byte(body), DecodeOptions{Now: testNow})
}

func TestDecodeRequestValid(t *testing.T) {
	const token = "AAAAKgAAAAIAAAAAAAAAAQ=="
	tests := []struct {
		name string
		body string
		want *Request
	}{
		{
			name: "minimal approval gets defaults",
			body: `{"taskToken":"` + token + `","to":["ben@example.com"],"subject":"Deploy 42"}`,
			want: &Request{
				TaskToken:    token,
				To:           []mail.Address{{Address: "ben@example.com"}},
				Subject:      "Deploy 42",
				Template:     "approval",
				Data:         map[string]any{},
				Actions:      approval.DefaultActions(),
				ExpiresAt:    time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC),
				MinApprovals: 1,
			},
		},
		{
			name: "every field",
			body: `{"taskToken":"` + token + `",
				"to":["Ben Example <ben@example.com>"], "cc":["ops@example.com"], "replyTo":["lead@example.com"],
				"subject":"Refund", "template":"notification", "data":{"amount":42.50,"id":12345678901234567890},
				"actions":[
					{"name":"approve","label":"Yes","type":"success","output":{ "approved" : true }},
					{"name":"snooze","type":"heartbeat"},
					{"name":"reject","type":"failure","error":"No","cause":"because"}],
				"expiresIn":"30m","redirectUrl":"https://example.com/done"}`,
			want: &Request{
				TaskToken: token,
				To:        []mail.Address{{Name: "Ben Example", Address: "ben@example.com"}},
				Cc:        []mail.Address{{Address: "ops@example.com"}},
				ReplyTo:   []mail.Address{{Address: "lead@example.com"}},
				Subject:   "Refund",
				Template:  "notification",
				Data:      map[string]any{"amount": json.Number("42.50"), "id": json.Number("12345678901234567890")},
				Actions: []approval.Action{
					{Name: "approve", Label: "Yes", Type: approval.Success, Output: json.RawMessage(`{"approved":true}`)},
					{Name: "snooze", Type: approval.Heartbeat},
					{Name: "reject", Type: approval.Failure, Error: "No", Cause: "because"},
				},
				ExpiresAt:    time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC),
				RedirectURL:  "https://example.com/done",
				MinApprovals: 1,
			},
		},
		{
			name: "notification without token",
			body: `{"to":["ben@example.com"],"subject":"Approved","data":{"by":"ann"}}`,
			want: &Request{
				To:       []mail.Address{{Address: "ben@example.com"}},
				Subject:  "Approved",
				Template: "notification",
				Data:     map[string]any{"by": "ann"},
			},
		},
		{
			name: "expiresAt",
			body: `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","expiresAt":"2026-03-02T08:00:00+01:00"}`,
			want: &Request{
				TaskToken:    "T0KEN",
				To:           []mail.Address{{Address: "a@example.com"}},
				Subject:      "s",
				Template:     "approval",
				Data:         map[string]any{},
				Actions:      approval.DefaultActions(),
				ExpiresAt:    time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC),
				MinApprovals: 1,
			},
		},
		{
			name: "nulls mean absent",
			body: `{"taskToken":"T0KEN","to":["a@example.com"],"cc":null,"subject":"s","data":null,"actions":null,"redirectUrl":null}`,
			want: &Request{
				TaskToken:    "T0KEN",
				To:           []mail.Address{{Address: "a@example.com"}},
				Subject:      "s",
				Template:     "approval",
				Data:         map[string]any{},
				Actions:      approval.DefaultActions(),
				ExpiresAt:    time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC),
				MinApprovals: 1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(t, tt.body)
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRequestProblems(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name      string
		body      string
		want      []string
		malformed bool
	}{
		{"not JSON", `subject: hi`, []string{"body is not a JSON object (syntax error at byte 1)"}, true},
		{"JSON array", `[1,2]`, []string{"body is not a JSON object"}, true},
		{"JSON null", `null`, []string{"body is not a JSON object"}, true},
		{"empty body", ``, []string{"body is not a JSON object (syntax error at byte 0)"}, true},
		{"unknown fields, sorted, case matters",
			`{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","Subject":"s","expiresIN":"1h"}`,
			[]string{`unknown field "Subject"`, `unknown field "expiresIN"`}, false},
		{"token not a string", `{"taskToken":5,"to":["a@example.com"],"subject":"s"}`,
			[]string{"taskToken: must be a string"}, true},
		{"token empty", `{"taskToken":"","to":["a@example.com"],"subject":"s"}`,
			[]string{"taskToken: must not be empty (leave it out for a notification)"}, true},
		{"token too long", `{"taskToken":"` + strings.Repeat("t", 2049) + `","to":["a@example.com"],"subject":"s"}`,
			[]string{"taskToken: longer than 2048 characters"}, false},
		{"to missing", `{"taskToken":"T0KEN","subject":"s"}`, []string{"to, channels: at least one address or channel is required"}, false},
		{"to empty", `{"taskToken":"T0KEN","to":[],"subject":"s"}`, []string{"to, channels: at least one address or channel is required"}, false},
		{"to not a list", `{"taskToken":"T0KEN","to":"a@example.com","subject":"s"}`, []string{"to: must be an array of email addresses"}, false},
		{"bad addresses", `{"taskToken":"T0KEN","to":["nobody","a@example.com"],"cc":["x@"],"replyTo":["r@example.com\r\nBcc: e@evil.example"],"subject":"s"}`,
			[]string{
				`to[0]: "nobody" is not an email address (mail: missing '@' or angle-addr)`,
				`cc[0]: "x@" is not an email address (mail: missing '@' or angle-addr)`,
				`replyTo[0]: line break in address`,
			}, false},
		{"too many recipients", `{"taskToken":"T0KEN","to":[` + addrs(30, "to") + `],"cc":[` + addrs(21, "cc") + `],"subject":"s"}`,
			[]string{"to, cc: 51 recipients, at most 50"}, false},
		{"duplicate recipient", `{"taskToken":"T0KEN","to":["a@example.com"],"cc":["A@Example.com"],"subject":"s"}`,
			[]string{`to, cc: "A@Example.com" appears more than once (each recipient gets one email)`}, false},
		{"subject missing", `{"taskToken":"T0KEN","to":["a@example.com"]}`, []string{"subject: required"}, false},
		{"subject blank", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"  "}`, []string{"subject: must not be empty"}, false},
		{"subject header injection", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"hi\r\nBcc: e@evil.example"}`,
			[]string{"subject: line break in subject"}, false},
		{"subject too long", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"` + strings.Repeat("s", 999) + `"}`,
			[]string{"subject: longer than 998 characters"}, false},
		{"unknown template", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","template":"fancy"}`,
			[]string{`template: no template named "fancy" (have approval, notification)`}, false},
		{"template path", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","template":"../x"}`,
			[]string{`template: "../x" is not a template name (letters, digits, '-', '_')`}, false},
		{"data not an object", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","data":[1]}`,
			[]string{"data: must be a JSON object"}, false},
		{"notification with actions", `{"to":["a@example.com"],"subject":"s","actions":[]}`,
			[]string{"actions: a notification (no taskToken) has no actions"}, true},
		{"no actions", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","actions":[]}`,
			[]string{"actions: at least one action is required (leave the field out for approve and reject)"}, false},
		{"too many actions", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","actions":[` + actions(11) + `]}`,
			[]string{"actions: 11 actions, at most 10"}, false},
		{"action rules",
			`{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","actions":[
				{"name":"Approve!","type":"success","label":"a\nb"},
				{"name":"ok","type":"success","error":"E"},
				{"name":"ok","type":"maybe"},
				{"name":"no","type":"failure"},
				{"name":"no2","type":"failure","error":"` + long + `","output":{}},
				{"name":"wait","type":"heartbeat","output":{}},
				{"name":"out","type":"success","output":[1]},
				{"name":"dec","type":"success","output":{"decision":1}},
				{"name":"extra","type":"success","colour":"red"},
				{"name":"num","type":7}]}`,
			[]string{
				`actions[0] ("Approve!"): name must be 1 to 32 of a-z, 0-9, '-', '_'`,
				`actions[0] ("Approve!"): label must be one line of at most 64 characters`,
				`actions[1] ("ok"): a success action has no error or cause`,
				`actions[2] ("ok"): name used by another action`,
				`actions[2] ("ok"): type must be success, failure or heartbeat`,
				`actions[3] ("no"): a failure action needs an error name`,
				`actions[4] ("no2"): a failure action has no output (use error and cause)`,
				`actions[4] ("no2"): error longer than 256 characters`,
				`actions[5] ("wait"): a heartbeat action has no output, error or cause`,
				`actions[6] ("out"): output must be a JSON object`,
				`actions[7] ("dec"): output may not use the key "decision" (the decision goes there)`,
				`actions[8]: unknown field "colour"`,
				`actions[9]: type: must be a string`,
			}, false},
		{"output too big", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","actions":[{"name":"a","type":"success","output":{"x":"` + strings.Repeat("x", 1100) + `"}}]}`,
			[]string{`actions[0] ("a"): output longer than 1024 bytes`}, false},
		{"both expiries", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","expiresIn":"1h","expiresAt":"2026-03-02T00:00:00Z"}`,
			[]string{"expiresIn, expiresAt: give one, not both"}, false},
		{"bad duration", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","expiresIn":"3 days"}`,
			[]string{`expiresIn: "3 days" is not a duration (like "72h" or "30m")`}, false},
		{"duration past a year", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","expiresIn":"8761h"}`,
			[]string{`expiresIn: "8761h" is more than one year`}, false},
		{"negative duration", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","expiresIn":"-1h"}`,
			[]string{"expiry: must be in the future"}, false},
		{"sub-second duration", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","expiresIn":"400ms"}`,
			[]string{"expiry: must be in the future"}, false},
		{"expiresAt in the past", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","expiresAt":"2026-03-01T11:00:00Z"}`,
			[]string{"expiry: must be in the future"}, false},
		{"expiresAt past a year", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","expiresAt":"2027-03-02T00:00:00Z"}`,
			[]string{`expiresAt: "2027-03-02T00:00:00Z" is more than one year away`}, false},
		{"expiresAt not RFC 3339", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","expiresAt":"tomorrow"}`,
			[]string{`expiresAt: "tomorrow" is not an RFC 3339 time`}, false},
		{"expiresIn not a string", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","expiresIn":3600}`,
			[]string{`expiresIn: must be a duration string like "72h"`}, false},
		{"relative redirect", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","redirectUrl":"/after"}`,
			[]string{`redirectUrl: "/after" is not an absolute http(s) URL`}, false},
		{"javascript redirect", `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","redirectUrl":"javascript:alert(1)"}`,
			[]string{`redirectUrl: "javascript:alert(1)" is not an absolute http(s) URL`}, false},
		{"several problems at once, token kept",
			`{"taskToken":"T0KEN","to":["bad"],"subject":"","template":"nope","expiresIn":"x","redirectUrl":"ftp://x","extra":1}`,
			[]string{
				`unknown field "extra"`,
				`to[0]: "bad" is not an email address (mail: missing '@' or angle-addr)`,
				"subject: must not be empty",
				`template: no template named "nope" (have approval, notification)`,
				`expiresIn: "x" is not a duration (like "72h" or "30m")`,
				`redirectUrl: "ftp://x" is not an absolute http(s) URL`,
			}, false},
		{"notification with problems is malformed", `{"to":["bad"],"subject":""}`,
			[]string{
				`to[0]: "bad" is not an email address (mail: missing '@' or angle-addr)`,
				"subject: must not be empty",
			}, true},
		{"long values are cut short", `{"taskToken":"T0KEN","to":["` + long + `"],"subject":"s"}`,
			[]string{`to[0]: "` + strings.Repeat("x", 80) + `…" is not an email address (mail: missing '@' or angle-addr)`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(t, tt.body)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("DecodeRequest = %v, %v; want a *ValidationError", got, err)
			}
			if diff := cmp.Diff(tt.want, ve.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if ve.Malformed() != tt.malformed {
				t.Errorf("Malformed() = %t, want %t", ve.Malformed(), tt.malformed)
			}
			if !ve.Malformed() && strings.Contains(ve.Error(), ve.taskToken) {
				t.Errorf("error text contains the task token: %q", ve.Error())
			}
			if !strings.Contains(ve.Error(), tt.want[0]) {
				t.Errorf("Error() = %q, does not list %q", ve.Error(), tt.want[0])
			}
		})
	}
}

func TestValidationErrorNeverShowsToken(t *testing.T) {
	const secret = "c2VjcmV0LXRhc2stdG9rZW4tdmFsdWU="
	_, err := decode(t, `{"taskToken":"`+secret+`","to":["bad"]}`)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.taskToken != secret {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{err.Error(), failureCause(ve.Problems)} {
		if strings.Contains(s, secret) {
			t.Errorf("token leaked into %q", s)
		}
	}
	b, _ := json.Marshal(ve)
	if strings.Contains(string(b), secret) {
		t.Errorf("token leaked into JSON %s", b)
	}
	r := Request{TaskToken: secret}
	if strings.Contains(r.String(), secret) {
		t.Errorf("Request.String leaks the token: %s", r.String())
	}
}

func TestDecodeOptionsDefaultExpiry(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s"}`),
		DecodeOptions{Now: testNow, DefaultExpiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC); !r.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %s, want %s", r.ExpiresAt, want)
	}
}

func TestDecodeZeroOptionsUsesNow(t *testing.T) {
	before := time.Now()
	r, err := DecodeRequest([]byte(`{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s"}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lo := before.Add(DefaultExpiry).Truncate(time.Second)
	hi := time.Now().Add(DefaultExpiry)
	if r.ExpiresAt.Before(lo) || r.ExpiresAt.After(hi) {
		t.Errorf("ExpiresAt = %s, want within [%s, %s]", r.ExpiresAt, lo, hi)
	}
}

func addrs(n int, prefix string) string {
	var b []string
	for i := range n {
		b = append(b, `"`+prefix+string(rune('a'+i%26))+strings.Repeat("x", i/26)+`@example.com"`)
	}
	return strings.Join(b, ",")
}

func actions(n int) string {
	var b []string
	for i := range n {
		b = append(b, `{"name":"a`+strings.Repeat("x", i)+`","type":"success"}`)
	}
	return strings.Join(b, ",")
}

// Addresses that net/mail accepts as one but that another reader (SES)
// could take for several, or for another, are refused in every field.
func TestDecodeRequestAddressSyntax(t *testing.T) {
	body := `{"taskToken":"T0KEN","subject":"s",
		"to":["\"x@evil.example, victim\"@example.com", "a@example.com (Ann)", "ok@example.com"],
		"cc":["team: b@example.com;", "Bee <\"b\"@example.com>"],
		"replyTo":["Lead (ops) <lead@example.com>"]}`
	_, err := decode(t, body)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("DecodeRequest = %v, want a *ValidationError", err)
	}
	want := []string{
		`to[0]: "\"x@evil.example, victim\"@example.com" has a quoted local part`,
		`to[1]: "a@example.com (Ann)" has a comment (...)`,
		`cc[0]: "team: b@example.com;" uses group syntax (name: ...;)`,
		`cc[1]: "Bee <\"b\"@example.com>" has a quoted local part`,
		`replyTo[0]: "Lead (ops) <lead@example.com>" has a comment (...)`,
	}
	if diff := cmp.Diff(want, ve.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// The redirect URL is held to the check the redeemer applies before it
// redirects (validate.URL), so an accepted one is never silently dropped.
func TestDecodeRequestRedirectURL(t *testing.T) {
	tests := []struct {
		url  string
		want string // "" for accepted
	}{
		{"https://deploy.example.com:8443/done?id=42", ""},
		{"https://xn--bcher-kva.example/after", ""},
		{"https://u:p@deploy.example.com/", `redirectUrl: "https://u:p@deploy.example.com/" has user info (user@host)`},
		{"https://bücher.example/", `redirectUrl: "https://bücher.example/" has a non-ASCII host (write it in punycode, xn--...)`},
		{"https://deploy.example.com/#done", `redirectUrl: "https://deploy.example.com/#done" has a fragment (#...)`},
		{"//deploy.example.com/", `redirectUrl: "//deploy.example.com/" is not an absolute http(s) URL`},
	}
	for _, tt := range tests {
		b, _ := json.Marshal(tt.url)
		r, err := decode(t, `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","redirectUrl":`+string(b)+`}`)
		if tt.want == "" {
			if err != nil || r.RedirectURL != tt.url {
				t.Errorf("%q: %v, %v; want it accepted as written", tt.url, r, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%q: DecodeRequest = %v, want a *ValidationError", tt.url, err)
			continue
		}
		if diff := cmp.Diff([]string{tt.want}, ve.Problems); diff != "" {
			t.Errorf("%q: problems (-want +got):\n%s", tt.url, diff)
		}
	}
}

// A key given twice in one object is a problem wherever it is, not a
// silent last-wins: the request would mean something else than it reads.
func TestDecodeRequestDuplicateKeys(t *testing.T) {
	many := strings.Repeat(`"k":1,`, 30)
	tests := []struct {
		name      string
		body      string
		want      []string
		malformed bool
	}{
		{"top level, escapes decoded",
			`{"taskToken":"T0KEN","to":["a@example.com"],"t\u006f":["b@example.com"],"subject":"s","subject":"t","subject":"u"}`,
			[]string{`duplicate key "to"`, `duplicate key "subject"`}, false},
		{"in an action and its output",
			`{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","actions":[
				{"name":"ok","type":"success"},
				{"name":"no","type":"failure","type":"success","output":{"a":1,"a":2}}]}`,
			[]string{`actions[1]: duplicate key "type"`, `actions[1].output: duplicate key "a"`}, false},
		{"in data, at any depth",
			`{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","data":{"x":{"y":[{"z":1,"z":2}]},"odd key":{"k":1,"k":1},"x":0}}`,
			[]string{`data.x.y[0]: duplicate key "z"`, `data["odd key"]: duplicate key "k"`, `data: duplicate key "x"`}, false},
		{"same key in sibling objects is fine",
			`{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","data":{"a":{"k":1},"b":{"k":1}},"extra":{"k":[{"k":1},{"k":1}]}}`,
			[]string{`unknown field "extra"`}, false},
		{"two task tokens: no execution to fail",
			`{"taskToken":"T0KEN","taskToken":"OTHER","to":["a@example.com"],"subject":"s"}`,
			[]string{`duplicate key "taskToken"`}, true},
		// 21 objects "a", each with "k" 31 times, and "a" itself repeated:
		// 22 duplicates, of which 20 are listed (in the order of their
		// second appearance), then a count.
		{"hostile numbers of them are counted",
			`{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","data":{` + strings.Repeat(`"a":{`+many+`"k":1},`, 21) + `"z":0}}`,
			slices.Concat([]string{`data.a: duplicate key "k"`, `data: duplicate key "a"`},
				slices.Repeat([]string{`data.a: duplicate key "k"`}, 18),
				[]string{"... and 2 more duplicate keys"}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(t, tt.body)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("DecodeRequest = %v, want a *ValidationError", err)
			}
			if diff := cmp.Diff(tt.want, ve.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if ve.Malformed() != tt.malformed {
				t.Errorf("Malformed() = %t, want %t", ve.Malformed(), tt.malformed)
			}
		})
	}
}

// Action keys match exactly, as the request's own do: encoding/json alone
// would let "Type" fill type.
func TestDecodeRequestActionKeysExact(t *testing.T) {
	_, err := decode(t, `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","actions":[{"name":"ok","Type":"success"}]}`)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("DecodeRequest = %v, want a *ValidationError", err)
	}
	if diff := cmp.Diff([]string{`actions[0]: unknown field "Type"`}, ve.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// expiresIn and the default expiry count from the send, so every receive
// of a message mints the same expiry; "in the future" is still checked
// against now.
func TestDecodeExpiryCountsFromSent(t *testing.T) {
	sent := testNow.Add(-30 * time.Minute)
	const req = `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s"`
	tests := []struct {
		name    string
		body    string
		sent    time.Time
		want    time.Time
		problem string
	}{
		{name: "expiresIn from the send", body: req + `,"expiresIn":"1h"}`, sent: sent, want: sent.Add(time.Hour)},
		{name: "default from the send", body: req + `}`, sent: sent, want: sent.Add(DefaultExpiry)},
		{name: "no send time: from now", body: req + `,"expiresIn":"1h"}`, want: testNow.Add(time.Hour)},
		{name: "expiresAt stays absolute", body: req + `,"expiresAt":"2026-03-02T00:00:00Z"}`, sent: sent,
			want: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{name: "expired since the send", body: req + `,"expiresIn":"20m"}`, sent: sent, problem: "expiry: must be in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(tt.body), DecodeOptions{Now: testNow, Sent: tt.sent})
			if tt.problem != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || !slices.Contains(ve.Problems, tt.problem) {
					t.Fatalf("DecodeRequest = %v, want the problem %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want.Truncate(time.Second).UTC(); !r.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt = %s, want %s", r.ExpiresAt, want)
			}
		})
	}
}

// BenchmarkDecodeRequest decodes a request with every field; run with
// go test -run '^$' -bench DecodeRequest -benchmem ./worker/
func BenchmarkDecodeRequest(b *testing.B) {
	body := []byte(`{"taskToken":"` + strings.Repeat("t", 1000) + `",
		"to":["Ben Example <ben@example.com>","ann@example.com"], "cc":["ops@example.com"], "replyTo":["lead@example.com"],
		"subject":"Refund", "template":"approval", "data":{"amount":42.50,"id":12345678901234567890,"items":[{"sku":"a","n":1},{"sku":"b","n":2}]},
		"actions":[
			{"name":"approve","label":"Yes","type":"success","output":{"approved":true}},
			{"name":"snooze","type":"heartbeat"},
			{"name":"reject","type":"failure","error":"No","cause":"because"}],
		"expiresIn":"30m","redirectUrl":"https://example.com/done"}`)
	tmpls, err := LoadTemplates("")
	if err != nil {
		b.Fatal(err)
	}
	opts := DecodeOptions{Now: testNow, Templates: tmpls}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRequest(body, opts); err != nil {
			b.Fatal(err)
		}
	}
}
