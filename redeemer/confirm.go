package redeemer

import (
	"errors"
	"net/http"

	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// open verifies the link tok, from r's path. When it cannot be used, the returned
// view is the answer to give.
func (s *Server) open(r *http.Request, tok string) (link.Claims, view, bool) {
	c, err := s.cfg.Keyring.Open(tok, s.cfg.Now())
	switch {
	case err == nil:
		s.linkOK.Inc()
		return c, view{}, true
	case errors.Is(err, link.ErrExpired):
		s.m.LinkChecks.WithLabelValues(metrics.LinkExpired).Inc()
		s.log.Info("link expired", "method", r.Method, "action", c.Action.Name, "approver", c.Recipient,
			"expires_at", c.ExpiresAt, "key_id", c.KeyID)
		// A copy for the view, so that only this path puts the claims on
		// the heap.
		shown := c
		return c, view{outcome: outExpired, claims: &shown}, false
	default:
		// Nothing in an invalid link can be trusted, so nothing of it is
		// logged: not even its length is worth an attacker's feedback.
		s.m.LinkChecks.WithLabelValues(metrics.LinkInvalid).Inc()
		s.log.Info("link invalid", "method", r.Method)
		return link.Claims{}, view{outcome: outInvalid}, false
	}
}

// confirm answers GET and HEAD: verify the link and show the form. It never
// calls Step Functions, whoever fetches the link.
func (s *Server) confirm(w http.ResponseWriter, r *http.Request, tok string) {
	c, id, v, ok := s.admit(r, tok)
	if !ok {
		s.respond(w, r, v)
		return
	}
	v = view{outcome: outConfirm, claims: &c, signedIn: id}
	v.formAction, v.formActionPlain = formAction(r.URL)
	s.tally(r.Context(), c, &v)
	s.respond(w, r, v)
}
