package worker

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
)

// emailSender is the part of the SES v2 client the worker uses.
type emailSender interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, optFns ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

var _ emailSender = (*sesv2.Client)(nil)

// email is one SendEmail call: one recipient and their own links.
type email struct {
	to    mail.Address
	input *sesv2.SendEmailInput
}

// emailInput builds the SendEmail call: Simple content with both parts,
// addressed to one recipient.
func (h *Handler) emailInput(req *Request, to mail.Address, r Rendered) *sesv2.SendEmailInput {
	// The input's parts and the strings they point to are allocated
	// together: the SDK only reads them.
	p := &emailParts{
		strs: [...]string{h.Sender, req.Subject, r.HTML, r.Text, "UTF-8"},
		to:   [1]string{formatAddress(to)},
	}
	charset := &p.strs[4]
	p.subject = sestypes.Content{Data: &p.strs[1], Charset: charset}
	p.html = sestypes.Content{Data: &p.strs[2], Charset: charset}
	p.text = sestypes.Content{Data: &p.strs[3], Charset: charset}
	p.body = sestypes.Body{Html: &p.html, Text: &p.text}
	p.message = sestypes.Message{Subject: &p.subject, Body: &p.body}
	p.content = sestypes.EmailContent{Simple: &p.message}
	p.destination = sestypes.Destination{ToAddresses: p.to[:]}
	p.in = sesv2.SendEmailInput{
		FromEmailAddress: &p.strs[0],
		Destination:      &p.destination,
		Content:          &p.content,
	}
	in := &p.in
	if len(req.ReplyTo) > 0 {
		in.ReplyToAddresses = make([]string, len(req.ReplyTo))
		for i, a := range req.ReplyTo {
			in.ReplyToAddresses[i] = formatAddress(a)
		}
	}
	if h.ConfigurationSet != "" {
		in.ConfigurationSetName = aws.String(h.ConfigurationSet)
	}
	return in
}

// emailParts is one SendEmail input with everything it points to.
type emailParts struct {
	in                  sesv2.SendEmailInput
	destination         sestypes.Destination
	to                  [1]string
	content             sestypes.EmailContent
	message             sestypes.Message
	body                sestypes.Body
	subject, html, text sestypes.Content
	strs                [5]string // sender, subject, HTML, text, charset
}

// formatAddress writes a bare address as it is and one with a display name
// as RFC 5322 `"Name" <addr>` (RFC 2047-encoded when not ASCII), which SES
// accepts in every address field.
func formatAddress(a mail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	return a.String()
}

// compose mints every recipient's links and renders every email before any
// is sent, so a template that fails for one recipient sends nothing.
func (h *Handler) compose(req *Request) ([]email, error) {
	out := make([]email, 0, len(req.To)+len(req.Cc))
	lm := newLinkMinter(h.Keyring, h.BaseURL, req)
	for _, to := range req.Recipients() {
		d := EmailData{
			Subject:       req.Subject,
			Data:          req.Data,
			ExpiresAt:     req.ExpiresAt,
			Recipient:     to.Address,
			RecipientName: to.Name,
			Notification:  req.Notification(),
			MinApprovals:  req.MinApprovals,
		}
		if req.RequestedBy != nil {
			d.RequestedBy = req.RequestedBy.Address
		}
		links, err := lm.links(to.Address)
		if err != nil {
			return nil, err
		}
		d.Actions = links
		r, err := h.Templates.renderEmail(req.Template, d)
		if err != nil {
			return nil, err
		}
		out = append(out, email{to: to, input: h.emailInput(req, to, r)})
	}
	return out, nil
}

// send makes one SendEmail call. The SES client keeps the SDK's default
// retries (a few quick attempts with jitter): they absorb a blip, while the
// slow path for longer trouble is the message's own retry through its
// visibility timeout, so no retry loop of ours is stacked on top.
func (h *Handler) send(ctx context.Context, e email) error {
	start := time.Now()
	_, err := h.Email.SendEmail(ctx, e.input)
	result := "ok"
	if err != nil {
		result = "error"
	}
	h.Metrics.SESDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("send email: %w", err)
	}
	h.Metrics.EmailsSent.Inc()
	return nil
}

// sesProblem describes a rejection for the failure cause: the recipient and
// SES's code and message, without the SDK's request details.
func sesProblem(to mail.Address, err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("email to %s rejected by SES: %s: %s", to.Address, ae.ErrorCode(), ae.ErrorMessage())
	}
	return fmt.Sprintf("email to %s rejected by SES: %v", to.Address, err)
}
