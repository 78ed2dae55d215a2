package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// channelPoster is the part of channel.Poster the worker uses.
type channelPoster interface {
	PostBody(ctx context.Context, ch channel.Channel, body []byte) error
}

var _ channelPoster = (*channel.Poster)(nil)

// post is one channel message with its body, built before anything is
// sent.
type post struct {
	ch   channel.Channel
	body []byte
}

// composePosts mints each channel's links (recipient "channel:NAME") and
// builds every body, so that a request that cannot be shown in one of its
// channels posts nothing and sends no email.
func (h *Handler) composePosts(req *Request) ([]post, error) {
	if len(req.Channels) == 0 {
		return nil, nil
	}
	fields, err := channel.FieldsFromMap(req.Data)
	if err != nil {
		return nil, fmt.Errorf("channel message: %w", err)
	}
	var requestedBy string
	if req.RequestedBy != nil {
		requestedBy = req.RequestedBy.Address
	}
	out := make([]post, 0, len(req.Channels))
	lm := newLinkMinter(h.Keyring, h.BaseURL, req) // the token decoded once for all channels
	for _, ch := range req.Channels {
		m := channel.Message{
			Subject:      req.Subject,
			Data:         fields,
			ExpiresAt:    req.ExpiresAt,
			RequestedBy:  requestedBy,
			MinApprovals: max(req.MinApprovals, 1),
		}
		links, err := lm.links(link.ChannelRecipient(ch.Name))
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			m.Actions = append(m.Actions, channel.Action{Name: l.Name, Label: l.Label, Type: approval.ActionType(l.Type), URL: l.URL})
		}
		body, err := channel.Body(ch.Type, m)
		if err != nil {
			// The channel's name and type only: its URL is a secret.
			return nil, fmt.Errorf("%s channel %q: %w", ch.Type, ch.Name, err)
		}
		out = append(out, post{ch: ch, body: body})
	}
	return out, nil
}

// postAll posts every message in order and stops at the first that did not
// deliver, counting each post by channel type and result. A retry of the
// whole message posts again to the channels that did get it, as it sends
// their emails again.
func (h *Handler) postAll(ctx context.Context, posts []post) (int, error) {
	for i, p := range posts {
		start := time.Now()
		err := h.Poster.PostBody(ctx, p.ch, p.body)
		res := metrics.PostDelivered
		switch {
		case err == nil:
		case channel.Rejected(err):
			res = metrics.PostRejected
		default:
			res = metrics.PostTransient
		}
		h.Metrics.ChannelPosts.WithLabelValues(string(p.ch.Type), res).Inc()
		h.Metrics.ChannelDuration.WithLabelValues(string(p.ch.Type)).Observe(time.Since(start).Seconds())
		if err != nil {
			return i, err
		}
	}
	return len(posts), nil
}

// channelCause is the problem reported with Approvals.ChannelRejected: the
// channel's name, type and answer, never its URL.
func channelCause(err error) string {
	var pe *channel.PostError
	if errors.As(err, &pe) {
		return pe.Cause()
	}
	return "a channel refused the message"
}
