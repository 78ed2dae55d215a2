package channel

import (
	"fmt"
	"sort"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

// Teams limits. TeamsMaxBytes is the whole POST body: Teams refuses a
// message over 28 KB, and 28,000 bytes is under that whether a KB is 1,000
// or 1,024 bytes. The text limits are ours, to keep one long value from
// filling the card.
const (
	TeamsMaxBytes     = 28000
	TeamsMaxTitleText = 200
	TeamsMaxFactText  = 2000
	TeamsMaxSubject   = 1000
)

// TeamsMessage is the body of a Teams Workflows webhook POST: a message
// with one Adaptive Card attachment.
type TeamsMessage struct {
	Attachments []TeamsAttachment `json:"attachments"`
}

// TeamsAttachment carries the card.
type TeamsAttachment struct {
	Content AdaptiveCard `json:"content"`
}

// AdaptiveCard is an Adaptive Card, schema version 1.4 (what Teams
// renders).
type AdaptiveCard struct {
	Body    []CardElement `json:"body"`
	Actions []CardAction  `json:"actions,omitempty"`
}

// CardElement is a TextBlock or a FactSet.
type CardElement interface{ cardElement() }

// TextBlock is a paragraph of text.
type TextBlock struct {
	Text     string `json:"text"`
	Size     string `json:"size,omitempty"`   // Small, Default, Medium, Large, ExtraLarge
	Weight   string `json:"weight,omitempty"` // Lighter, Default, Bolder
	IsSubtle bool   `json:"isSubtle,omitempty"`
	Wrap     bool   `json:"wrap"`
}

// FactSet shows name/value pairs in two columns.
type FactSet struct {
	Facts []Fact `json:"facts"`
}

// Fact is one row of a FactSet.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// CardAction is a button under the card; only Action.OpenUrl is used.
type CardAction struct {
	Title string `json:"title"`
	URL   string `json:"url"`
	Style string `json:"style,omitempty"` // positive, destructive, or default
}

func (TextBlock) cardElement() {}
func (FactSet) cardElement()   {}

func (m TeamsMessage) MarshalJSON() ([]byte, error) {
	type plain TeamsMessage
	return marshal(struct {
		Type string `json:"type"`
		plain
	}{"message", plain(m)})
}

func (a TeamsAttachment) MarshalJSON() ([]byte, error) {
	type plain TeamsAttachment
	return marshal(struct {
		ContentType string `json:"contentType"`
		plain
	}{"application/vnd.microsoft.card.adaptive", plain(a)})
}

func (c AdaptiveCard) MarshalJSON() ([]byte, error) {
	type plain AdaptiveCard
	return marshal(struct {
		Schema  string `json:"$schema"`
		Type    string `json:"type"`
		Version string `json:"version"`
		plain
	}{"http://adaptivecards.io/schemas/adaptive-card.json", "AdaptiveCard", "1.4", plain(c)})
}

func (b TextBlock) MarshalJSON() ([]byte, error) {
	type plain TextBlock
	return marshal(struct {
		Type string `json:"type"`
		plain
	}{"TextBlock", plain(b)})
}

func (f FactSet) MarshalJSON() ([]byte, error) {
	type plain FactSet
	return marshal(struct {
		Type string `json:"type"`
		plain
	}{"FactSet", plain(f)})
}

func (a CardAction) MarshalJSON() ([]byte, error) {
	type plain CardAction
	return marshal(struct {
		Type string `json:"type"`
		plain
	}{"Action.OpenUrl", plain(a)})
}

// NewTeamsMessage lays m out as an Adaptive Card: the subject in large bold
// text, the data as a FactSet, a subtle line with the expiry, the
// requester and the approvals needed, and one Action.OpenUrl per action
// (positive for success, destructive for failure). When the whole body
// would pass TeamsMaxBytes, the last facts are left out and a line says
// how many. It fails with ErrTooLarge only when the card is too large
// without any data: the actions' links alone do not fit.
func NewTeamsMessage(m Message) (TeamsMessage, error) {
	facts := make([]Fact, len(m.Data))
	for i, f := range m.Data {
		facts[i] = Fact{Title: truncate(f.Name, TeamsMaxTitleText), Value: truncate(f.Text(), TeamsMaxFactText)}
	}
	build := func(k int) TeamsMessage { return teamsCard(m, facts[:k], len(facts)-k) }
	fits := func(k int) (bool, error) {
		b, err := marshal(build(k))
		return len(b) <= TeamsMaxBytes, err
	}
	ok, err := fits(len(facts))
	if err != nil {
		return TeamsMessage{}, err
	}
	if ok {
		return build(len(facts)), nil
	}
	if ok, err := fits(0); err != nil || !ok {
		return TeamsMessage{}, fmt.Errorf("%w: the card's actions and subject alone pass Teams' %d bytes", ErrTooLarge, TeamsMaxBytes)
	}
	// Size grows with the number of facts kept, so the largest k that
	// fits is found by bisection instead of one marshal per fact.
	var ferr error
	k := sort.Search(len(facts), func(k int) bool {
		ok, err := fits(k + 1)
		if err != nil {
			ferr = err
		}
		return !ok
	})
	if ferr != nil {
		return TeamsMessage{}, ferr
	}
	return build(k), nil
}

func teamsCard(m Message, facts []Fact, left int) TeamsMessage {
	card := AdaptiveCard{Body: []CardElement{
		TextBlock{Text: truncate(m.Subject, TeamsMaxSubject), Size: "Large", Weight: "Bolder", Wrap: true},
	}}
	if len(facts) > 0 {
		card.Body = append(card.Body, FactSet{Facts: facts})
	}
	if left > 0 {
		card.Body = append(card.Body, TextBlock{Text: moreText(left, "field"), IsSubtle: true, Wrap: true})
	}
	if line := teamsContext(m); line != "" {
		card.Body = append(card.Body, TextBlock{Text: line, Size: "Small", IsSubtle: true, Wrap: true})
	}
	for _, a := range m.Actions {
		card.Actions = append(card.Actions, CardAction{Title: label(a), URL: a.URL, Style: teamsStyle(a.Type)})
	}
	return TeamsMessage{Attachments: []TeamsAttachment{{Content: card}}}
}

// teamsContext is the expiry, the requester and the approvals needed, on
// one line. DATE and TIME are Adaptive Card functions: Teams shows the
// expiry in each reader's own time zone.
func teamsContext(m Message) string {
	var parts []string
	if !m.ExpiresAt.IsZero() {
		t := m.ExpiresAt.UTC().Format(time.RFC3339)
		parts = append(parts, fmt.Sprintf("Expires {{DATE(%s, SHORT)}} {{TIME(%s)}}", t, t))
	}
	if m.RequestedBy != "" {
		parts = append(parts, "Requested by "+truncate(m.RequestedBy, TeamsMaxTitleText))
	}
	if s := needs(m.MinApprovals); s != "" {
		parts = append(parts, s)
	}
	line := ""
	for i, p := range parts {
		if i > 0 {
			line += " · "
		}
		line += p
	}
	return line
}

func teamsStyle(t approval.ActionType) string {
	switch t {
	case approval.Success:
		return "positive"
	case approval.Failure:
		return "destructive"
	}
	return ""
}
