package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/identity/albtest"
	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
)

// albRedeemerLog names the log of the redeemer startALBRedeemer runs, for
// stack.Logs.
const albRedeemerLog = "redeemer-alb"

// albRedeemer is a second redeemer binary, with APPROVALS_IDENTITY=alb,
// behind a test ALB: it serves the stack's links (same keyring, same Step
// Functions) under its own address.
type albRedeemer struct {
	url string
	alb *albtest.ALB
	s   *stack.Stack
}

func startALBRedeemer(t *testing.T, s *stack.Stack) *albRedeemer {
	t.Helper()
	alb := albtest.New(t)
	addr, admin := freeAddr(t), freeAddr(t)
	lf, err := os.Create(filepath.Join(s.LogDir, albRedeemerLog+".log"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := stack.StartService(context.Background(), filepath.Join(s.BinDir, "redeemer"), lf, admin, append(kumo.Env(),
		"APPROVALS_BASE_URL=http://"+addr,
		"APPROVALS_SIGNING_KEYS="+s.SigningKeys,
		"APPROVALS_LISTEN_ADDR="+addr,
		"APPROVALS_METRICS_ADDR="+admin,
		"APPROVALS_IDENTITY=alb",
		"APPROVALS_ALB_ARN="+alb.ARN,
		"APPROVALS_ALB_KEYS_URL="+alb.KeysURL(),
	))
	if err != nil {
		t.Fatal(err)
	}
	// Registered after albtest.New's, so it runs first: the redeemer stops
	// before its key server.
	t.Cleanup(func() {
		if _, err := svc.Stop(10 * time.Second); err != nil {
			t.Errorf("stop the alb redeemer: %v", err)
		}
	})
	return &albRedeemer{url: "http://" + addr, alb: alb, s: s}
}

// do sends a request for the stack's link u to this redeemer, with the
// sign-in header h ("" for none), as the ALB would forward it.
func (r *albRedeemer) do(t *testing.T, method, u, h string, form url.Values) int {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, r.url+strings.TrimPrefix(u, r.s.RedeemerURL), body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if h != "" {
		req.Header.Set(identity.Header, h)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
