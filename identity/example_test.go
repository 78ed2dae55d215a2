package identity_test

import (
	"fmt"
	"log"
	"net/http"

	"github.com/sfn-approvals/sfn-approvals/identity"
)

// A handler behind an ALB rule with authenticate-oidc: who signed in, and
// whether they are the link's recipient.
func ExampleVerifier_VerifyRequest() {
	v, err := identity.New(identity.Config{
		ALBARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/approvals/50dc6c495c0c9188",
	})
	if err != nil {
		log.Fatal(err)
	}
	recipient := "ann@example.com"
	http.HandleFunc("/a/", func(w http.ResponseWriter, r *http.Request) {
		id, err := v.VerifyRequest(r)
		switch {
		case identity.IsUnavailable(err):
			http.Error(w, "sign-in cannot be checked now; try again", http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, "sign in again", http.StatusUnauthorized)
		case !identity.SameEmail(id.Email, recipient):
			http.Error(w, fmt.Sprintf("signed in as %s, not %s", id.Email, recipient), http.StatusForbidden)
		default:
			fmt.Fprintf(w, "signed in as %s", id.Email)
		}
	})
}
