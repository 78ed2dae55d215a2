package redeemer

import (
	"fmt"
	"net/http"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// admit decides whether r may use the link tok in its path: the link must open
// and, with IdentityALB, the load balancer's sign-in must verify and be
// someone mayUse admits. id is nil with IdentityLink. When ok is false, v
// is the answer to give.
//
// The sign-in comes first: without one, a request learns nothing about the
// link, not even whether it is valid.
func (s *Server) admit(r *http.Request, tok string) (c link.Claims, id *approval.Identity, v view, ok bool) {
	id, v, ok = s.signedIn(r)
	if !ok {
		return link.Claims{}, nil, v, false
	}
	c, v, ok = s.open(r, tok)
	if !ok {
		v.signedIn = id
		return c, id, v, false
	}
	if id != nil {
		if reason, why := mayUse(*id, c); why != "" {
			s.m.Forbidden.Inc()
			s.log.Info("sign-in is not the link's recipient", "method", r.Method, "action", c.Action.Name,
				"approver", c.Recipient, "reason", reason, "sub", id.Sub, "email", id.Email, "key_id", c.KeyID)
			shown := c // only this path puts the claims on the heap
			v = view{outcome: outForbidden, claims: &shown, signedIn: id}
			v.Message = why + " Nothing was changed."
			return c, id, v, false
		}
	}
	return c, id, view{signedIn: id}, true
}

// mayUse says why the signed-in user may not look at and decide through the
// link c (a word for the log, a sentence for them), or "" when they may. It
// is the one place that says who may use a link:
//
//   - an address's link: that address, whatever its case;
//   - a channel's link (channel:NAME), which everyone in the channel sees:
//     anyone with an email address but the requester and, when the request
//     listed addresses (c.Approvers), only those.
func mayUse(id approval.Identity, c link.Claims) (reason, why string) {
	if _, ok := link.ChannelName(c.Recipient); !ok {
		if identity.SameEmail(id.Email, c.Recipient) {
			return "", ""
		}
		return "other_recipient", fmt.Sprintf("You are signed in as %s, but this link is for %s.", signedInAs(id), c.Recipient)
	}
	switch {
	case id.Email == "":
		return "no_email", "You are signed in as a user without an email address, and a decision through a channel is recorded under the approver's email address."
	case identity.SameEmail(id.Email, c.RequestedBy):
		return "requester", fmt.Sprintf("You are signed in as %s, who requested this approval: the requester cannot decide it.", id.Email)
	case len(c.Approvers) > 0 && !c.Approvers.Has(id.Email):
		return "not_an_approver", fmt.Sprintf("You are signed in as %s, who is not one of this request's approvers: only the addresses it was sent to may decide it.", id.Email)
	}
	return "", ""
}

// approverOf is who decides through the link c: with a sign-in, on a
// channel's link, the signed-in user's email, so votes count per person
// however many share the channel; otherwise the link's recipient (with
// link identity a channel's link is one approver, channel:NAME).
func approverOf(c link.Claims, id *approval.Identity) string {
	if _, ok := link.ChannelName(c.Recipient); ok && id != nil && id.Email != "" {
		return id.Email
	}
	return c.Recipient
}

// approver is who a page or JSON answer names as the approver: who decides
// (approverOf), but on a refusal the link's recipient, whom the refused
// user is not.
func (v view) approver() string {
	if v.claims == nil {
		return ""
	}
	if v.Name == outForbidden.Name {
		return v.claims.Recipient
	}
	return approverOf(*v.claims, v.signedIn)
}

// signedIn verifies the load balancer's sign-in header under IdentityALB;
// with IdentityLink there is none to check and id is nil.
func (s *Server) signedIn(r *http.Request) (id *approval.Identity, v view, ok bool) {
	if s.verifier == nil {
		return nil, view{}, true
	}
	got, err := s.verifier.VerifyRequest(r)
	if err == nil {
		return &approval.Identity{Sub: got.Subject, Email: got.Email, Issuer: got.Issuer}, view{}, true
	}
	// identity errors are built from fixed words, never from the header,
	// so they can be logged whole.
	reason, _ := identity.ReasonOf(err)
	s.m.SignInFailures.WithLabelValues(string(reason)).Inc()
	if identity.IsUnavailable(err) {
		s.log.Warn("sign-in keys unavailable", "method", r.Method, "reason", reason, "error", err)
		return nil, view{outcome: outSignInUnavailable}, false
	}
	s.log.Info("sign-in refused", "method", r.Method, "reason", reason, "error", err)
	return nil, view{outcome: outSignInRequired}, false
}

// signedInAs names the signed-in user to themselves.
func signedInAs(id approval.Identity) string {
	if id.Email == "" {
		return "a user without an email address"
	}
	return id.Email
}
