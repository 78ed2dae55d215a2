package channel

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

// Slack's documented Block Kit limits, and one of our own.
const (
	SlackMaxBlocks        = 50   // blocks in a message
	SlackMaxHeaderText    = 150  // header block text
	SlackMaxFieldText     = 2000 // each section field
	SlackMaxSectionFields = 10   // fields in one section
	SlackMaxButtonText    = 75   // button label
	SlackMaxButtonURL     = 3000 // button url
	SlackMaxActionID      = 255  // button action_id
	SlackMaxButtons       = 25   // elements in one actions block
	SlackMaxContextText   = 3000 // a context element's text

	// SlackMaxDataText bounds the data's text in all. Slack refuses
	// overlong blocks (msg_blocks_too_long) without publishing a figure;
	// this stays far below any message length Slack takes, and more than
	// this is not read in a chat anyway.
	SlackMaxDataText = 20000
)

// SlackMessage is the body of a Slack incoming-webhook POST. Text is the
// fallback Slack shows in notifications; Blocks are the message.
type SlackMessage struct {
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is one layout block: SlackHeader, SlackSection, SlackActions
// or SlackContext. Each marshals with its own "type".
type SlackBlock interface{ slackBlock() }

// SlackText is a text object: plain_text or mrkdwn.
type SlackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// SlackHeader is a header block: plain text in a large bold font.
type SlackHeader struct {
	Text SlackText `json:"text"`
}

// SlackSection is a section block; its fields show in two columns.
type SlackSection struct {
	Text   *SlackText  `json:"text,omitempty"`
	Fields []SlackText `json:"fields,omitempty"`
}

// SlackActions is an actions block of buttons.
type SlackActions struct {
	Elements []SlackButton `json:"elements"`
}

// SlackButton is a link button: Slack opens URL in the browser.
type SlackButton struct {
	Text     SlackText `json:"text"`
	ActionID string    `json:"action_id"`
	URL      string    `json:"url"`
	Style    string    `json:"style,omitempty"` // primary, danger, or default
}

// SlackContext is a context block: small, grey, one line of elements.
type SlackContext struct {
	Elements []SlackText `json:"elements"`
}

func (SlackHeader) slackBlock()  {}
func (SlackSection) slackBlock() {}
func (SlackActions) slackBlock() {}
func (SlackContext) slackBlock() {}

func (b SlackHeader) MarshalJSON() ([]byte, error) {
	type plain SlackHeader
	return marshal(struct {
		Type string `json:"type"`
		plain
	}{"header", plain(b)})
}

func (b SlackSection) MarshalJSON() ([]byte, error) {
	type plain SlackSection
	return marshal(struct {
		Type string `json:"type"`
		plain
	}{"section", plain(b)})
}

func (b SlackActions) MarshalJSON() ([]byte, error) {
	type plain SlackActions
	return marshal(struct {
		Type string `json:"type"`
		plain
	}{"actions", plain(b)})
}

func (b SlackContext) MarshalJSON() ([]byte, error) {
	type plain SlackContext
	return marshal(struct {
		Type string `json:"type"`
		plain
	}{"context", plain(b)})
}

func (b SlackButton) MarshalJSON() ([]byte, error) {
	type plain SlackButton
	return marshal(struct {
		Type string `json:"type"`
		plain
	}{"button", plain(b)})
}

func slackPlain(s string) SlackText  { return SlackText{Type: "plain_text", Text: s} }
func slackMrkdwn(s string) SlackText { return SlackText{Type: "mrkdwn", Text: s} }

// NewSlackMessage lays m out as Block Kit: a header with the subject, the
// data as section fields, one button per action (primary for success,
// danger for failure) and a context line with the expiry, the requester and
// the approvals needed. Data that does not fit Slack's limits is cut, with
// a last field saying how many were left out. It fails with ErrTooLarge
// only when an action cannot be a button: more than 25 actions, or a URL
// longer than Slack takes.
func NewSlackMessage(m Message) (SlackMessage, error) {
	msg := SlackMessage{
		Text:   slackEscapeTrunc(m.Subject, SlackMaxContextText),
		Blocks: []SlackBlock{SlackHeader{Text: slackPlain(truncate(m.Subject, SlackMaxHeaderText))}},
	}
	var tail []SlackBlock
	if len(m.Actions) > 0 {
		if len(m.Actions) > SlackMaxButtons {
			return SlackMessage{}, fmt.Errorf("%w: %d actions, Slack shows at most %d buttons", ErrTooLarge, len(m.Actions), SlackMaxButtons)
		}
		acts := SlackActions{}
		for _, a := range m.Actions {
			if len(a.URL) > SlackMaxButtonURL {
				return SlackMessage{}, fmt.Errorf("%w: the link of action %q is longer than a Slack button's %d characters", ErrTooLarge, a.Name, SlackMaxButtonURL)
			}
			acts.Elements = append(acts.Elements, SlackButton{
				Text:     slackPlain(truncate(label(a), SlackMaxButtonText)),
				ActionID: truncate(a.Name, SlackMaxActionID),
				URL:      a.URL,
				Style:    slackStyle(a.Type),
			})
		}
		tail = append(tail, acts)
	}
	if ctx := slackContext(m); len(ctx.Elements) > 0 {
		tail = append(tail, ctx)
	}
	sections := SlackMaxBlocks - len(msg.Blocks) - len(tail)
	msg.Blocks = append(msg.Blocks, slackData(m.Data, sections)...)
	msg.Blocks = append(msg.Blocks, tail...)
	return msg, nil
}

// slackData packs the fields into at most sections section blocks, ten
// fields each. What does not fit, by count or by SlackMaxDataText, is
// replaced by one last field saying how much was left out.
func slackData(data []Field, sections int) []SlackBlock {
	capacity := sections * SlackMaxSectionFields
	var texts []SlackText
	total := 0
	for _, f := range data {
		name := slackEscapeTrunc(f.Name, 200)
		value := slackEscapeTrunc(f.Text(), SlackMaxFieldText-utf8.RuneCountInString(name)-3)
		text := "*" + name + "*\n" + value
		n := utf8.RuneCountInString(text)
		if len(texts) == capacity || total+n > SlackMaxDataText {
			if len(texts) == capacity {
				texts = texts[:capacity-1]
			}
			left := len(data) - len(texts)
			texts = append(texts, slackMrkdwn("_"+moreText(left, "field")+"_"))
			break
		}
		texts = append(texts, slackMrkdwn(text))
		total += n
	}
	var out []SlackBlock
	for len(texts) > 0 {
		k := min(len(texts), SlackMaxSectionFields)
		out = append(out, SlackSection{Fields: texts[:k]})
		texts = texts[k:]
	}
	return out
}

func slackContext(m Message) SlackContext {
	var c SlackContext
	if !m.ExpiresAt.IsZero() {
		// Slack shows the date in each reader's own time zone; the text
		// after | is for clients that cannot.
		t := m.ExpiresAt.UTC()
		c.Elements = append(c.Elements, slackMrkdwn(fmt.Sprintf("Expires <!date^%d^{date_short_pretty} at {time}|%s>",
			t.Unix(), t.Format("2006-01-02 15:04 UTC"))))
	}
	if m.RequestedBy != "" {
		c.Elements = append(c.Elements, slackMrkdwn("Requested by "+slackEscapeTrunc(m.RequestedBy, SlackMaxContextText-len("Requested by "))))
	}
	if s := needs(m.MinApprovals); s != "" {
		c.Elements = append(c.Elements, slackMrkdwn(s))
	}
	return c
}

func slackStyle(t approval.ActionType) string {
	switch t {
	case approval.Success:
		return "primary"
	case approval.Failure:
		return "danger"
	}
	return ""
}

func label(a Action) string {
	if a.Label != "" {
		return a.Label
	}
	return a.Name
}

// slackEscaper escapes the three characters Slack's mrkdwn gives meaning
// to: without it a value could write <https://elsewhere|Approve>.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackEscape(s string) string { return slackEscaper.Replace(s) }

// slackEscapeTrunc escapes s and cuts it to max characters of escaped
// text, never inside an entity.
func slackEscapeTrunc(s string, max int) string {
	if e := slackEscape(s); utf8.RuneCountInString(e) <= max {
		return e
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		piece := slackEscape(string(r))
		if n+utf8.RuneCountInString(piece) > max-1 {
			break
		}
		b.WriteString(piece)
		n += utf8.RuneCountInString(piece)
	}
	return b.String() + ellipsis
}
