package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/identity/albtest"
	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// TestZZNoSecretsInLogs reads the worker's and the redeemer's logs of the
// whole end-to-end run (it is named to run last) and checks that no task
// token, no link, no signing key and no sign-in header appears in them. The
// secrets are collected from the run itself: every link in every email the
// emulator sent, the task token each one carries, and every x-amzn-oidc-data
// header sent to a redeemer with APPROVALS_IDENTITY=alb.
func TestZZNoSecretsInLogs(t *testing.T) {
	s := setup(t)
	// A run of its own, so the logs have every path in them even when this
	// test runs alone: a decision, a replay, a broken link, a failed
	// request.
	_, subject := startApproval(t, s)
	links := actionLinks(t, s, waitEmail(t, "approver@example.com", subject))
	if code, _ := do(t, http.MethodGet, links["approve"], nil); code != http.StatusOK {
		t.Fatalf("GET link: %d", code)
	}
	if code, _ := do(t, http.MethodPost, links["approve"], url.Values{"comment": {"fine"}}); code != http.StatusOK {
		t.Fatalf("POST link: %d", code)
	}
	if code, _ := do(t, http.MethodPost, links["reject"], nil); code != http.StatusGone {
		t.Fatalf("POST after the decision: %d, want 410", code)
	}
	if code, _ := do(t, http.MethodGet, links["approve"][:len(links["approve"])-10], nil); code != http.StatusBadRequest {
		t.Fatalf("GET of a cut link: %d, want 400", code)
	}
	arn, _ := startApproval(t, s, "not-an-address")
	kumotest.WaitStatus(t, s.SFN, arn, 20*time.Second)
	waitEmail(t, "requester@example.com", subject)

	// Through a redeemer that verifies sign-ins: refused, forbidden, forged
	// and accepted headers, each a credential the logs must not show.
	secrets := map[string]string{} // secret -> what it is
	ar := startALBRedeemer(t, s)
	arn, subject = startApproval(t, s)
	links = actionLinks(t, s, waitEmail(t, "approver@example.com", subject))
	own := ar.alb.Header("00u1approver", "Approver@example.com")
	other := ar.alb.Header("00u1other", "other@example.com")
	sig := own[strings.LastIndex(own, ".")+1:]
	forged := strings.TrimSuffix(own, sig) + strings.Repeat("A", len(sig))
	for _, h := range []string{own, other, forged} {
		secrets[h] = "sign-in header"
		secrets[h[strings.LastIndex(h, ".")+1:]] = "sign-in signature"
	}
	for _, step := range []struct {
		method, header string
		want           int
	}{
		{http.MethodGet, "", http.StatusUnauthorized},
		{http.MethodPost, forged, http.StatusUnauthorized},
		{http.MethodPost, other, http.StatusForbidden},
		{http.MethodGet, own, http.StatusOK},
		{http.MethodPost, own, http.StatusOK},
	} {
		if code := ar.do(t, step.method, links["approve"], step.header, url.Values{"comment": {"signed"}}); code != step.want {
			t.Fatalf("%s through the alb redeemer: %d, want %d", step.method, code, step.want)
		}
	}
	d := kumotest.WaitStatus(t, s.SFN, arn, 20*time.Second)
	var out struct {
		Approval struct {
			Decision approval.Decision `json:"decision"`
		} `json:"approval"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatalf("output %s: %v", aws.ToString(d.Output), err)
	}
	want := approval.Identity{Sub: "00u1approver", Email: "Approver@example.com", Issuer: albtest.Issuer}
	if id := out.Approval.Decision.Identity; id == nil || *id != want {
		t.Fatalf("the signed-in decision's identity is %+v, want %+v", id, want)
	}

	emails, err := kumo.SentEmails(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(s.SigningKeys, ",") {
		_, key, _ := strings.Cut(kv, ":")
		secrets[key] = "signing key"
	}
	for _, e := range emails {
		for _, u := range linkRE.FindAllString(e.Body+e.HTMLBody, -1) {
			tok := strings.TrimPrefix(u, s.RedeemerURL+link.PathPrefix)
			secrets[tok] = "link"
			c, err := s.Keyring.Open(tok, time.Now())
			if err != nil {
				t.Fatalf("link in an email does not open: %v", err)
			}
			secrets[c.TaskToken] = "task token"
		}
	}
	var tokens int
	for _, what := range secrets {
		if what == "task token" {
			tokens++
		}
	}
	if tokens == 0 {
		t.Fatal("no task tokens collected: the test would prove nothing")
	}

	for _, name := range []string{"worker", "redeemer", albRedeemerLog} {
		logs := s.Logs(name)
		// The logs must be the real thing, with the run in them.
		for _, want := range map[string][]string{
			"worker":   {"message handled", "failed fast"},
			"redeemer": {"decision recorded", "link invalid"},
			// and the sub of the decision, which stands for the header.
			albRedeemerLog: {"decision recorded", "sign-in refused", "sign-in is not the link's recipient", `"sub":"00u1approver"`},
		}[name] {
			if !strings.Contains(logs, want) {
				t.Fatalf("%s log has no %q: not the log of this run?\n%s", name, want, logs)
			}
		}
		for secret, what := range secrets {
			if strings.Contains(logs, secret) {
				t.Errorf("%s log contains a %s", name, what)
			}
		}
	}
	t.Logf("%d emails, %d task tokens, %d secrets in all checked against the logs", len(emails), tokens, len(secrets))
}
