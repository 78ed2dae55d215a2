package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/identity/albtest"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/redeemer"
)

// setupALB is setup with APPROVALS_IDENTITY=alb behind a test ALB.
func setupALB(t *testing.T) (*env, *albtest.ALB) {
	t.Helper()
	alb := albtest.New(t)
	e := setup(t, func(c *redeemer.Config) {
		c.Identity = redeemer.IdentityALB
		c.ALB = identity.Config{ALBARN: alb.ARN, KeysURL: alb.KeysURL()}
	})
	return e, alb
}

// send makes a request through the test ALB: header is its sign-in, or ""
// for none.
func send(t *testing.T, method, u, header, comment string) int {
	t.Helper()
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(url.Values{"comment": {comment}}.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if header != "" {
		req.Header.Set(identity.Header, header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A decision through a redeemer that verifies sign-ins: the execution's
// output says who signed in, and the redeemer's log has their sub but never
// the header.
func TestSignedInDecisionThroughStepFunctions(t *testing.T) {
	e, alb := setupALB(t)
	execARN, token := e.start(t)
	u := e.link(t, token, approval.Action{Name: "approve", Label: "Approve", Type: approval.Success,
		Output: json.RawMessage(`{"approved": true}`)})

	if c := send(t, http.MethodPost, u, "", "no sign-in"); c != http.StatusUnauthorized {
		t.Fatalf("POST without sign-in = %d, want 401", c)
	}
	h := alb.Header("00u1ben", "Ben@Example.com")
	if c := send(t, http.MethodGet, u, h, ""); c != http.StatusOK {
		t.Fatalf("GET signed in = %d, want 200", c)
	}
	if s := e.status(t, execARN); s != sfntypes.ExecutionStatusRunning {
		t.Fatalf("before the POST the execution is %s, want RUNNING", s)
	}
	if c := send(t, http.MethodPost, u, h, "ship it"); c != http.StatusOK {
		t.Fatalf("POST signed in = %d, want 200", c)
	}
	d := kumotest.WaitStatus(t, e.sfn, execARN, 10*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s, want SUCCEEDED", d.Status)
	}
	var out struct {
		Decision approval.Decision `json:"decision"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatalf("output %s: %v", aws.ToString(d.Output), err)
	}
	out.Decision.DecidedAt = time.Time{}
	want := approval.Decision{Action: "approve", Approver: "ben@example.com", Comment: "ship it",
		Identity: &approval.Identity{Sub: "00u1ben", Email: "Ben@Example.com", Issuer: albtest.Issuer}}
	if diff := cmp.Diff(want, out.Decision); diff != "" {
		t.Errorf("decision (-want +got):\n%s", diff)
	}

	logs := e.logs.String()
	if strings.Contains(logs, h) || strings.Contains(logs, strings.Split(h, ".")[2]) {
		t.Errorf("the redeemer's log has the sign-in header:\n%s", logs)
	}
	if !strings.Contains(logs, `"sub":"00u1ben"`) {
		t.Errorf("the decision's log line has no sub:\n%s", logs)
	}
}

// Signed in as someone else: 403, and the execution keeps waiting for the
// recipient, who can still decide.
func TestForbiddenLeavesExecutionRunning(t *testing.T) {
	e, alb := setupALB(t)
	execARN, token := e.start(t)
	reject := e.link(t, token, approval.DefaultActions()[1])

	ann := alb.Header("00u1ann", "ann@example.com")
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if c := send(t, m, reject, ann, "not mine to reject"); c != http.StatusForbidden {
			t.Fatalf("%s as someone else = %d, want 403", m, c)
		}
	}
	if s := e.status(t, execARN); s != sfntypes.ExecutionStatusRunning {
		t.Fatalf("after a forbidden POST the execution is %s, want RUNNING", s)
	}
	if c := send(t, http.MethodPost, reject, alb.Header("00u1ben", "ben@example.com"), "no"); c != http.StatusOK {
		t.Fatalf("the recipient's POST = %d, want 200", c)
	}
	if d := kumotest.WaitStatus(t, e.sfn, execARN, 10*time.Second); d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s, want SUCCEEDED through the Catch", d.Status)
	}
}
