package channel

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// sample is an approval as the worker will hand it over: mixed data (a
// string with mrkdwn's special characters, a number as written, an
// object), three action types, a requester and a quorum.
func sample() Message {
	return Message{
		Subject: "Approve deployment 42",
		Data: []Field{
			{Name: "service", Value: json.RawMessage(`"checkout"`)},
			{Name: "version", Value: json.RawMessage(`"1.4.2"`)},
			{Name: "changes", Value: json.RawMessage(`17`)},
			{Name: "notes", Value: json.RawMessage(`"fixes <b>rounding</b> & retries; see <https://x.example|here>"`)},
			{Name: "regions", Value: json.RawMessage(`["eu-west-1", "us-east-1"]`)},
		},
		Actions: []Action{
			{Name: "approve", Label: "Approve", Type: approval.Success, URL: "https://approvals.example.com/a/AAAA"},
			{Name: "reject", Label: "Reject", Type: approval.Failure, URL: "https://approvals.example.com/a/BBBB"},
			{Name: "snooze", Type: approval.Heartbeat, URL: "https://approvals.example.com/a/CCCC"},
		},
		ExpiresAt:    time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC),
		RequestedBy:  "ana@example.com",
		MinApprovals: 2,
	}
}

// notification has no actions, no expiry, no requester.
func notification() Message {
	return Message{
		Subject: "Deployment 42 was approved",
		Data:    []Field{{Name: "approver", Value: json.RawMessage(`"ben@example.com"`)}},
	}
}

// golden compares body, indented, with testdata/name.golden.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, body, "", "  "); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	b.WriteByte('\n')
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestGolden(t *testing.T) {
	for _, typ := range []Type{Slack, Teams, Webhook} {
		for name, m := range map[string]Message{"approval": sample(), "notification": notification()} {
			t.Run(string(typ)+"-"+name, func(t *testing.T) {
				body, err := Body(typ, m)
				if err != nil {
					t.Fatal(err)
				}
				golden(t, string(typ)+"-"+name, body)
				if err := checkBody(typ, body); err != nil {
					t.Errorf("the service would refuse it: %v", err)
				}
			})
		}
	}
}

func checkBody(typ Type, body []byte) error {
	switch typ {
	case Slack:
		return checkSlack(body)
	case Teams:
		return checkTeams(body)
	}
	_, err := checkWebhookBody(body)
	return err
}

// checkSlack checks a body the way Slack does before posting it: the
// Block Kit limits of each block and element, and the message's.
func checkSlack(body []byte) error {
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type     string          `json:"type"`
			Text     *slackTextCheck `json:"text"`
			Fields   []slackTextCheck
			Elements []json.RawMessage
		} `json:"blocks"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&msg); err != nil {
		return fmt.Errorf("invalid_payload: %v", err)
	}
	if len(msg.Blocks) == 0 || len(msg.Blocks) > 50 {
		return fmt.Errorf("invalid_blocks: %d blocks", len(msg.Blocks))
	}
	ids := map[string]bool{}
	for i, b := range msg.Blocks {
		where := fmt.Sprintf("blocks[%d] (%s)", i, b.Type)
		switch b.Type {
		case "header":
			if err := b.Text.check("plain_text", 150); err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
		case "section":
			if b.Text == nil && len(b.Fields) == 0 {
				return fmt.Errorf("%s: neither text nor fields", where)
			}
			if b.Text != nil {
				if err := b.Text.check("", 3000); err != nil {
					return fmt.Errorf("%s: %v", where, err)
				}
			}
			if len(b.Fields) > 10 {
				return fmt.Errorf("%s: %d fields", where, len(b.Fields))
			}
			for _, f := range b.Fields {
				if err := f.check("", 2000); err != nil {
					return fmt.Errorf("%s field: %v", where, err)
				}
			}
		case "actions":
			if len(b.Elements) == 0 || len(b.Elements) > 25 {
				return fmt.Errorf("%s: %d elements", where, len(b.Elements))
			}
			for _, raw := range b.Elements {
				var e struct {
					Type     string         `json:"type"`
					Text     slackTextCheck `json:"text"`
					ActionID string         `json:"action_id"`
					URL      string         `json:"url"`
					Style    string         `json:"style"`
				}
				if err := json.Unmarshal(raw, &e); err != nil {
					return fmt.Errorf("%s: %v", where, err)
				}
				switch {
				case e.Type != "button":
					return fmt.Errorf("%s: element type %q", where, e.Type)
				case e.Text.check("plain_text", 75) != nil:
					return fmt.Errorf("%s: button text: %v", where, e.Text.check("plain_text", 75))
				case e.URL == "" || len(e.URL) > 3000:
					return fmt.Errorf("%s: button url of %d characters", where, len(e.URL))
				case e.Style != "" && e.Style != "primary" && e.Style != "danger":
					return fmt.Errorf("%s: style %q", where, e.Style)
				case e.ActionID == "" || len(e.ActionID) > 255 || ids[e.ActionID]:
					return fmt.Errorf("%s: action_id %q empty, too long or repeated", where, e.ActionID)
				}
				ids[e.ActionID] = true
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				return fmt.Errorf("%s: %d elements", where, len(b.Elements))
			}
			for _, raw := range b.Elements {
				var e slackTextCheck
				if err := json.Unmarshal(raw, &e); err != nil {
					return fmt.Errorf("%s: %v", where, err)
				}
				if err := e.check("", 3000); err != nil {
					return fmt.Errorf("%s: %v", where, err)
				}
			}
		default:
			return fmt.Errorf("%s: unexpected block type", where)
		}
	}
	return nil
}

type slackTextCheck struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func (s *slackTextCheck) check(typ string, max int) error {
	switch {
	case s == nil:
		return errors.New("missing text object")
	case s.Type != "plain_text" && s.Type != "mrkdwn":
		return fmt.Errorf("text type %q", s.Type)
	case typ != "" && s.Type != typ:
		return fmt.Errorf("text type %q, want %q", s.Type, typ)
	case s.Text == "":
		return errors.New("empty text")
	case utf8.RuneCountInString(s.Text) > max:
		return fmt.Errorf("text of %d characters, at most %d", utf8.RuneCountInString(s.Text), max)
	}
	return nil
}

// checkTeams checks a body as a Teams Workflows webhook does: 28 KB at
// most (taken as 28,000 bytes, the stricter reading), a message with
// one Adaptive Card attachment whose actions open URLs.
func checkTeams(body []byte) error {
	if len(body) > 28000 {
		return fmt.Errorf("RequestEntityTooLarge: %d bytes", len(body))
	}
	var msg struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Type    string            `json:"type"`
				Version string            `json:"version"`
				Body    []json.RawMessage `json:"body"`
				Actions []struct {
					Type  string `json:"type"`
					Title string `json:"title"`
					URL   string `json:"url"`
				} `json:"actions"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return fmt.Errorf("BadRequest: %v", err)
	}
	if msg.Type != "message" || len(msg.Attachments) != 1 {
		return fmt.Errorf("BadRequest: type %q with %d attachments", msg.Type, len(msg.Attachments))
	}
	a := msg.Attachments[0]
	if a.ContentType != "application/vnd.microsoft.card.adaptive" || a.Content.Type != "AdaptiveCard" || a.Content.Version == "" {
		return fmt.Errorf("BadRequest: attachment %q content %q version %q", a.ContentType, a.Content.Type, a.Content.Version)
	}
	if len(a.Content.Body) == 0 {
		return errors.New("BadRequest: empty card")
	}
	for _, act := range a.Content.Actions {
		if act.Type != "Action.OpenUrl" || act.Title == "" || !strings.HasPrefix(act.URL, "https://") {
			return fmt.Errorf("BadRequest: action %+v", act)
		}
	}
	return nil
}

// webhookBody is the contract's body, decoded strictly.
type webhookBody struct {
	Subject      string         `json:"subject"`
	Data         map[string]any `json:"data"`
	ExpiresAt    string         `json:"expiresAt"`
	RequestedBy  string         `json:"requestedBy"`
	MinApprovals int            `json:"minApprovals"`
	Actions      []struct {
		Name  string `json:"name"`
		Label string `json:"label"`
		Type  string `json:"type"`
		URL   string `json:"url"`
	} `json:"actions"`
}

func checkWebhookBody(body []byte) (webhookBody, error) {
	var w webhookBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return w, err
	}
	if w.Subject == "" || w.Data == nil || w.Actions == nil {
		return w, errors.New("subject, data or actions missing")
	}
	return w, nil
}

func manyFields(n, size int) []Field {
	out := make([]Field, n)
	for i := range out {
		v, _ := json.Marshal(strings.Repeat("v", size))
		out[i] = Field{Name: fmt.Sprintf("field%04d", i), Value: v}
	}
	return out
}

func slackFields(t *testing.T, s SlackMessage) []SlackText {
	t.Helper()
	var out []SlackText
	for _, b := range s.Blocks {
		if sec, ok := b.(SlackSection); ok {
			out = append(out, sec.Fields...)
		}
	}
	return out
}

func TestSlackLimits(t *testing.T) {
	tests := []struct {
		name       string
		data       []Field
		wantFields int    // data fields shown, the "…and N more" one included
		wantMore   string // text of the last field, when cut
	}{
		// 50 blocks: header, actions and context leave 47 sections of 10.
		{"too many fields", manyFields(600, 10), 470, "_…and 131 more fields_"},
		{"exactly fits", manyFields(470, 10), 470, ""},
		// Ten 1,900-character values reach SlackMaxDataText.
		{"too much text", manyFields(30, 1900), 11, "_…and 20 more fields_"},
		{"one more", manyFields(471, 10), 470, "_…and 2 more fields_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sample()
			m.Data = tt.data
			s, err := NewSlackMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			body, err := marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkSlack(body); err != nil {
				t.Fatalf("Slack would refuse it: %v", err)
			}
			fields := slackFields(t, s)
			if len(fields) != tt.wantFields {
				t.Errorf("%d fields shown, want %d", len(fields), tt.wantFields)
			}
			last := fields[len(fields)-1].Text
			if tt.wantMore != "" && last != tt.wantMore {
				t.Errorf("last field %q, want %q", last, tt.wantMore)
			}
			if tt.wantMore == "" && strings.Contains(last, "more field") {
				t.Errorf("last field %q says something was left out", last)
			}
			if _, ok := s.Blocks[len(s.Blocks)-2].(SlackActions); !ok {
				t.Errorf("the actions block is not kept: %T", s.Blocks[len(s.Blocks)-2])
			}
		})
	}
}

func TestSlackTextLimits(t *testing.T) {
	m := sample()
	m.Subject = strings.Repeat("s", 400)
	m.Actions[0].Label = strings.Repeat("é", 100)
	amps, _ := json.Marshal(strings.Repeat("&", 3000))
	m.Data = []Field{{Name: "amps", Value: amps}, {Name: strings.Repeat("n", 300), Value: json.RawMessage(`"x"`)}}
	s, err := NewSlackMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := marshal(s)
	if err := checkSlack(body); err != nil {
		t.Fatalf("Slack would refuse it: %v", err)
	}
	header := s.Blocks[0].(SlackHeader).Text.Text
	if want := strings.Repeat("s", 149) + "…"; header != want {
		t.Errorf("header = %q, want 149 characters and an ellipsis", header)
	}
	button := s.Blocks[len(s.Blocks)-2].(SlackActions).Elements[0].Text.Text
	if want := strings.Repeat("é", 74) + "…"; button != want {
		t.Errorf("button = %q, want 74 characters and an ellipsis", button)
	}
	fields := slackFields(t, s)
	amp := strings.TrimPrefix(fields[0].Text, "*amps*\n")
	if rest := strings.ReplaceAll(strings.TrimSuffix(amp, "…"), "&amp;", ""); rest != "" || !strings.HasSuffix(amp, "…") {
		t.Errorf("an escaped value was cut inside an entity or not marked: left %q", rest)
	}
	if n := utf8.RuneCountInString(fields[0].Text); n > SlackMaxFieldText || n < SlackMaxFieldText-5 {
		t.Errorf("field of %d characters, want just under %d", n, SlackMaxFieldText)
	}
	if !strings.HasPrefix(fields[1].Text, "*"+strings.Repeat("n", 199)+"…*\n") {
		t.Errorf("a long name is not cut to 200 characters: %.40q", fields[1].Text)
	}
}

func TestSlackRefuses(t *testing.T) {
	long := sample()
	long.Actions[1].URL = "https://approvals.example.com/a/" + strings.Repeat("x", 3000)
	many := sample()
	for i := range 26 {
		many.Actions = append(many.Actions[:0:0], many.Actions...)
		many.Actions = append(many.Actions, Action{Name: fmt.Sprintf("a%d", i), Type: approval.Heartbeat, URL: "https://approvals.example.com/a/x"})
	}
	for name, m := range map[string]Message{"url too long": long, "too many actions": many} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewSlackMessage(m); !errors.Is(err, ErrTooLarge) {
				t.Errorf("err = %v, want ErrTooLarge", err)
			}
		})
	}
}

func TestTeamsLimits(t *testing.T) {
	tests := []struct {
		name string
		data []Field
	}{
		{"many small fields", manyFields(2000, 20)},
		{"few large fields", manyFields(40, 1500)},
		{"multibyte", func() []Field {
			f := manyFields(100, 0)
			for i := range f {
				f[i].Value, _ = json.Marshal(strings.Repeat("€", 500)) // 3 bytes each
			}
			return f
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sample()
			m.Data = tt.data
			msg, err := NewTeamsMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			body, err := marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkTeams(body); err != nil {
				t.Fatalf("Teams would refuse it: %v", err)
			}
			card := msg.Attachments[0].Content
			facts := card.Body[1].(FactSet).Facts
			more := card.Body[2].(TextBlock).Text
			if want := moreText(len(tt.data)-len(facts), "field"); more != want {
				t.Errorf("line after the facts = %q, want %q", more, want)
			}
			if len(card.Actions) != len(m.Actions) {
				t.Errorf("%d actions, want %d", len(card.Actions), len(m.Actions))
			}
			// As many facts as fit: one more would pass the limit.
			one, _ := marshal(teamsCard(m, append(facts, Fact{
				Title: tt.data[len(facts)].Name, Value: truncate(tt.data[len(facts)].Text(), TeamsMaxFactText),
			}), len(tt.data)-len(facts)-1))
			if len(one) <= TeamsMaxBytes {
				t.Errorf("kept %d facts, but %d fit (%d bytes)", len(facts), len(facts)+1, len(one))
			}
		})
	}
}

func TestTeamsRefuses(t *testing.T) {
	m := sample()
	m.Actions = nil
	for i := range 10 {
		m.Actions = append(m.Actions, Action{Name: fmt.Sprintf("a%d", i), Label: "A", Type: approval.Success,
			URL: "https://approvals.example.com/a/" + strings.Repeat("x", 3000)})
	}
	if _, err := NewTeamsMessage(m); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}

func TestWebhookBody(t *testing.T) {
	body, err := Body(Webhook, sample())
	if err != nil {
		t.Fatal(err)
	}
	w, err := checkWebhookBody(body)
	if err != nil {
		t.Fatal(err)
	}
	// The data keeps its order and its numbers as written.
	if !bytes.Contains(body, []byte(`"data":{"service":"checkout","version":"1.4.2","changes":17,`)) {
		t.Errorf("data not in order or rewritten: %s", body)
	}
	if w.Actions[2].Label != "snooze" {
		t.Errorf("an action without a label is labelled %q, want its name", w.Actions[2].Label)
	}
}

func TestFieldsFromMap(t *testing.T) {
	got, err := FieldsFromMap(map[string]any{"b": json.Number("12345678901234567890"), "a": "x<y", "c": map[string]any{"k": true}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{
		{Name: "a", Value: json.RawMessage(`"x<y"`)},
		{Name: "b", Value: json.RawMessage(`12345678901234567890`)},
		{Name: "c", Value: json.RawMessage(`{"k":true}`)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FieldsFromMap (-want +got):\n%s", diff)
	}
	if _, err := FieldsFromMap(map[string]any{"f": func() {}}); err == nil {
		t.Error("a value JSON cannot hold was accepted")
	}
}

func TestFieldText(t *testing.T) {
	for raw, want := range map[string]string{
		`"plain"`:              "plain",
		`12.50`:                "12.50",
		`{ "a" : [1, 2] }`:     `{"a":[1,2]}`,
		`null`:                 "null",
		`"line\nbreak \u00e9"`: "line\nbreak é",
	} {
		if got := (Field{Value: json.RawMessage(raw)}).Text(); got != want {
			t.Errorf("Text(%s) = %q, want %q", raw, got, want)
		}
	}
}
