package channel

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

// The signature headers of a webhook POST.
const (
	HeaderTimestamp = "X-Approvals-Timestamp" // Unix seconds
	HeaderSignature = "X-Approvals-Signature" // "sha256=" + hex HMAC-SHA256
)

// DefaultTolerance is how far a webhook's timestamp may be from the
// receiver's clock, either way, when Verify is given no tolerance: wide
// enough for clock skew and a slow network, narrow enough that a captured
// request cannot be replayed for long.
const DefaultTolerance = 5 * time.Minute

// WebhookMessage is the JSON body of a webhook POST, the contract's
// {"subject", "data", "expiresAt", "requestedBy", "minApprovals",
// "actions"}. ExpiresAt (RFC 3339) and RequestedBy are left out when the
// message has none; Actions is [] for a notification.
type WebhookMessage struct {
	Subject      string          `json:"subject"`
	Data         WebhookData     `json:"data"`
	ExpiresAt    string          `json:"expiresAt,omitempty"`
	RequestedBy  string          `json:"requestedBy,omitempty"`
	MinApprovals int             `json:"minApprovals"`
	Actions      []WebhookAction `json:"actions"`
}

// WebhookAction is one link of a webhook body.
type WebhookAction struct {
	Name  string              `json:"name"`
	Label string              `json:"label"`
	Type  approval.ActionType `json:"type"`
	URL   string              `json:"url"`
}

// WebhookData is the request's data as a JSON object, in the fields' order.
type WebhookData []Field

func (d WebhookData) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range d {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(f.Name)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(f.Value) // marshal compacts and checks it
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// NewWebhookMessage is m as the webhook body. It is not cut: the receiver
// is a program, and the request it came from is already bounded.
func NewWebhookMessage(m Message) WebhookMessage {
	w := WebhookMessage{
		Subject:      m.Subject,
		Data:         WebhookData(m.Data),
		RequestedBy:  m.RequestedBy,
		MinApprovals: m.MinApprovals,
		Actions:      []WebhookAction{},
	}
	if !m.ExpiresAt.IsZero() {
		w.ExpiresAt = m.ExpiresAt.UTC().Format(time.RFC3339)
	}
	for _, a := range m.Actions {
		w.Actions = append(w.Actions, WebhookAction{Name: a.Name, Label: label(a), Type: a.Type, URL: a.URL})
	}
	return w
}

// Sign returns the X-Approvals-Signature value for body sent at timestamp
// (Unix seconds, as in X-Approvals-Timestamp): "sha256=" and the hex
// HMAC-SHA256 of timestamp + "." + body under secret. Signing the
// timestamp with the body is what lets a receiver refuse old requests.
func Sign(secret, timestamp string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Reasons Verify refuses a request; match them with errors.Is.
var (
	ErrNoSignature  = errors.New("webhook: missing X-Approvals-Timestamp or X-Approvals-Signature")
	ErrBadTimestamp = errors.New("webhook: X-Approvals-Timestamp is not Unix seconds")
	ErrStale        = errors.New("webhook: timestamp outside the tolerance window")
	ErrBadSignature = errors.New("webhook: signature does not match")
)

// Verify checks a webhook request as a receiver should: timestamp and
// signature are the X-Approvals-Timestamp and X-Approvals-Signature
// headers, body the exact bytes received. The timestamp must be within
// tolerance of now (DefaultTolerance when tolerance is not positive), so a
// captured request cannot be replayed later; the signature is compared in
// constant time. A receiver that must never act twice also remembers the
// signatures it accepted for the tolerance window.
func Verify(secret, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if timestamp == "" || signature == "" {
		return ErrNoSignature
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	for _, c := range []byte(timestamp) {
		if c < '0' || c > '9' {
			return ErrBadTimestamp
		}
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	hexSig, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrBadSignature
	}
	if !hmac.Equal(got, mac(secret, timestamp, body)) {
		return ErrBadSignature
	}
	return nil
}
