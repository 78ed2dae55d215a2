package redeemer

import (
	"fmt"
	"net/http"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// admit decides whether r may use the link in its path: the link must open
// and, with IdentityALB, the load balancer's sign-in must verify and be the
// link's recipient. id is nil with IdentityLink. When ok is false, v is the
// answer to give.
//
// The sign-in comes first: without one, a request learns nothing about the
// link, not even whether it is valid.
func (s *Server) admit(r *http.Request) (c link.Claims, id *approval.Identity, v view, ok bool) {
	id, v, ok = s.signedIn(r)
	if !ok {
		return link.Claims{}, nil, v, false
	}
	c, v, ok = s.open(r)
	if !ok {
		v.signedIn = id
		return c, id, v, false
	}
	if id != nil && !mayUse(*id, c) {
		s.m.Forbidden.Inc()
		s.log.Info("sign-in is not the link's recipient", "method", r.Method, "action", c.Action.Name,
			"approver", c.Recipient, "sub", id.Sub, "email", id.Email, "key_id", c.KeyID)
		v = view{outcome: outForbidden, claims: &c, signedIn: id}
		v.Message = fmt.Sprintf("You are signed in as %s, but this link is for %s. Nothing was changed.",
			signedInAs(*id), c.Recipient)
		return c, id, v, false
	}
	return c, id, view{signedIn: id}, true
}

// mayUse reports whether the signed-in user may look at and decide through
// the link c: its recipient, whatever the case of the address. It is the one
// place that says who may use a link, so a kind of recipient that admits
// others (a channel's link, channel:NAME) is a case here.
func mayUse(id approval.Identity, c link.Claims) bool {
	return identity.SameEmail(id.Email, c.Recipient)
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
