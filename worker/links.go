package worker

import (
	"fmt"

	"github.com/sfn-approvals/sfn-approvals/link"
)

// linkMinter mints a request's links for any number of recipients, with
// the request's task token decoded once rather than once a link: the one
// place links are made, for emails, channels and Links alike.
type linkMinter struct {
	kr      *link.Keyring
	baseURL string
	req     *Request
	m       *link.Minter // made at the first link: a notification has none
	// approvers is approverSet(req), worked out at the first channel link.
	approvers     link.ApproverSet
	haveApprovers bool
}

func newLinkMinter(kr *link.Keyring, baseURL string, req *Request) *linkMinter {
	return &linkMinter{kr: kr, baseURL: baseURL, req: req}
}

// links mints recipient's link for each of the request's actions.
func (lm *linkMinter) links(recipient string) ([]ActionLink, error) {
	req := lm.req
	if len(req.Actions) == 0 {
		return []ActionLink{}, nil
	}
	if lm.m == nil {
		var requestedBy string
		if req.RequestedBy != nil {
			requestedBy = req.RequestedBy.Address
		}
		lm.m = lm.kr.Minter(lm.baseURL, link.Claims{
			TaskToken:    req.TaskToken,
			ExpiresAt:    req.ExpiresAt,
			RedirectURL:  req.RedirectURL,
			MinApprovals: req.MinApprovals,
			RequestedBy:  requestedBy,
		})
	}
	// A channel's link is everyone's in the channel: it names the
	// request's approvers, so that under sign-in only they decide through
	// it. An address's link is bound to that address already.
	var approvers link.ApproverSet
	if _, ok := link.ChannelName(recipient); ok {
		if !lm.haveApprovers {
			lm.approvers, lm.haveApprovers = approverSet(req), true
		}
		approvers = lm.approvers
	}
	out := make([]ActionLink, 0, len(req.Actions))
	for _, a := range req.Actions {
		u, err := lm.m.URL(a, recipient, approvers)
		if err != nil {
			return nil, fmt.Errorf("mint link for action %q: %w", a.Name, err)
		}
		out = append(out, ActionLink{Name: a.Name, Label: a.DisplayLabel(), Type: string(a.Type), URL: u})
	}
	return out, nil
}

// approverSet is the request's approvers, to and cc (the requester is no
// longer among them), for its channel links; nil when it lists none, and
// then anyone signed in but the requester may decide through them.
func approverSet(req *Request) link.ApproverSet {
	rs := req.Recipients()
	if len(rs) == 0 {
		return nil
	}
	addrs := make([]string, len(rs))
	for i, a := range rs {
		addrs[i] = a.Address
	}
	return link.NewApproverSet(addrs...)
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
	lm := newLinkMinter(kr, baseURL, req)
	for _, r := range recipients {
		links, err := lm.links(r)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			out = append(out, Link{Recipient: r, Action: l.Name, Type: l.Type, URL: l.URL})
		}
	}
	return out, nil
}
