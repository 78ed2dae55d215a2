package worker

import (
	"fmt"

	"github.com/sfn-approvals/sfn-approvals/link"
)

// mintLinks mints recipient's link for each of the request's actions: the
// one place links are made, for emails, channels and Links alike.
func mintLinks(kr *link.Keyring, baseURL string, req *Request, recipient string) ([]ActionLink, error) {
	out := make([]ActionLink, 0, len(req.Actions))
	var requestedBy string
	if req.RequestedBy != nil {
		requestedBy = req.RequestedBy.Address
	}
	for _, a := range req.Actions {
		u, err := kr.URL(baseURL, link.Claims{
			TaskToken:    req.TaskToken,
			Action:       a,
			Recipient:    recipient,
			ExpiresAt:    req.ExpiresAt,
			RedirectURL:  req.RedirectURL,
			MinApprovals: req.MinApprovals,
			RequestedBy:  requestedBy,
		})
		if err != nil {
			return nil, fmt.Errorf("mint link for action %q: %w", a.Name, err)
		}
		out = append(out, ActionLink{Name: a.Name, Label: a.DisplayLabel(), Type: string(a.Type), URL: u})
	}
	return out, nil
}

// Link is one link the worker mints for a request: Recipient is an
// address of to or cc, or "channel:NAME" for a channel.
type Link struct {
	Recipient string `json:"recipient"`
	Action    string `json:"action"`
	Type      string `json:"type"`
	URL       string `json:"url"`
}

// Links lists every link the worker mints for req, per recipient (to,
// then cc) and per channel, in the order they are sent. Links are sealed
// with a random nonce, so each call gives other URLs that work the same.
// A notification has none.
func Links(kr *link.Keyring, baseURL string, req *Request) ([]Link, error) {
	var out []Link
	recipients := make([]string, 0, len(req.To)+len(req.Cc)+len(req.Channels))
	for _, a := range req.Recipients() {
		recipients = append(recipients, a.Address)
	}
	for _, ch := range req.Channels {
		recipients = append(recipients, link.ChannelRecipient(ch.Name))
	}
	for _, r := range recipients {
		links, err := mintLinks(kr, baseURL, req, r)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			out = append(out, Link{Recipient: r, Action: l.Name, Type: l.Type, URL: l.URL})
		}
	}
	return out, nil
}
