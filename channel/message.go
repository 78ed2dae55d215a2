package channel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

// Message is what every channel shows: the request's subject and data, one
// link per action, and who and what the decision waits for. It is the same
// for every channel; each builder shapes it for its service.
type Message struct {
	Subject string
	// Data is shown in this order.
	Data    []Field
	Actions []Action
	// ExpiresAt is when the links stop working; zero for a notification
	// without an expiry.
	ExpiresAt time.Time
	// RequestedBy is the requester's address, or empty.
	RequestedBy string
	// MinApprovals is how many distinct approvers must approve.
	MinApprovals int
}

// Field is one entry of the request's data. Value is its JSON, as written.
type Field struct {
	Name  string
	Value json.RawMessage
}

// Text is the value as a person reads it: a string without its quotes,
// anything else as compact JSON.
func (f Field) Text() string {
	var s string
	if v := bytes.TrimSpace(f.Value); len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, f.Value) != nil {
		return string(f.Value)
	}
	return b.String()
}

// Action is one link: what it does (Type) and where it goes (URL, minted
// for this channel's recipient).
type Action struct {
	Name  string
	Label string
	Type  approval.ActionType
	URL   string
}

// FieldsFromMap turns decoded JSON data into fields sorted by name, so a
// message built twice from the same data is the same message.
func FieldsFromMap(data map[string]any) ([]Field, error) {
	names := make([]string, 0, len(data))
	for n := range data {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]Field, 0, len(names))
	for _, n := range names {
		v, err := marshal(data[n])
		if err != nil {
			return nil, fmt.Errorf("data %q: %w", n, err)
		}
		out = append(out, Field{Name: n, Value: v})
	}
	return out, nil
}

// Body returns the JSON body a channel of type t is posted, built and
// checked against the service's limits. The worker can call it before
// posting anything, as it renders every email before sending one.
func Body(t Type, m Message) ([]byte, error) {
	switch t {
	case Slack:
		s, err := NewSlackMessage(m)
		if err != nil {
			return nil, err
		}
		return marshal(s)
	case Teams:
		s, err := NewTeamsMessage(m)
		if err != nil {
			return nil, err
		}
		return marshal(s)
	case Webhook:
		return marshal(NewWebhookMessage(m))
	}
	return nil, fmt.Errorf("unknown channel type %q", t)
}

// ErrTooLarge is a message that cannot fit a channel's limits without
// losing an action or a working link.
var ErrTooLarge = errors.New("message does not fit the channel's limits")

// marshal encodes v as JSON without escaping <, > and & (the bodies are not
// HTML), and without encoding/json's trailing newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// ellipsis ends every shortened text, so a reader sees that it was.
const ellipsis = "…"

// truncate shortens s to at most max characters (runes), ending in an
// ellipsis when it had to cut.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max-1 {
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String() + ellipsis
}

// moreText is the line standing in for what did not fit.
func moreText(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("…and 1 more %s", what)
	}
	return fmt.Sprintf("…and %d more %ss", n, what)
}

// needs says how many approvals the request waits for, when more than one.
func needs(min int) string {
	if min <= 1 {
		return ""
	}
	return fmt.Sprintf("Needs %d approvals", min)
}
