package identity

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sfn-approvals/sfn-approvals/identity/albtest"
)

// expandFuzz turns a short fuzz input into a header value, so inputs stay
// short while still reaching the checks after the signature: every input
// that finds new coverage is minimized, in time quadratic in its length,
// and a real header is 500 bytes and more. In the input:
//
//	<TEXT>   becomes TEXT in padded base64url, as the ALB encodes;
//	(TEXT)   becomes TEXT in unpadded base64url;
//	$kid, $arn, $exp  become the test ALB's kid, ARN and an exp ahead;
//	$sig at the very end becomes a valid ES256 signature (padded) of all
//	         before the last ".", so altered headers and claims still
//	         reach the claim checks.
func expandFuzz(alb *albtest.ALB, s string) string {
	s = strings.NewReplacer("$kid", alb.Kid(), "$arn", alb.ARN,
		"$exp", strconv.FormatInt(t0.Add(2*time.Minute).Unix(), 10)).Replace(s)
	var out strings.Builder
	for s != "" {
		open := strings.IndexAny(s, "<(")
		if open < 0 {
			out.WriteString(s)
			break
		}
		closer, enc := ">", base64.URLEncoding
		if s[open] == '(' {
			closer, enc = ")", base64.RawURLEncoding
		}
		end := strings.Index(s[open+1:], closer)
		if end < 0 {
			out.WriteString(s)
			break
		}
		out.WriteString(s[:open])
		out.WriteString(enc.EncodeToString([]byte(s[open+1 : open+1+end])))
		s = s[open+1+end+1:]
	}
	tok := out.String()
	if signing, ok := strings.CutSuffix(tok, ".$sig"); ok {
		tok = signing + "." + base64.URLEncoding.EncodeToString(albtest.Sign(alb.Key(), signing))
	}
	return tok
}

// FuzzVerify feeds arbitrary header values (see expandFuzz) through the
// whole check, with keys served in process, so an input costs no network.
// Seeds are in testdata/fuzz/FuzzVerify; `make fuzz` runs it for a bounded
// time.
func FuzzVerify(f *testing.F) {
	alb := albtest.NewUnstarted(f)
	v := newTestVerifier(f, alb, &handlerTransport{h: alb}, Config{})
	f.Add(`<{"alg":"ES256","kid":"$kid","signer":"$arn","exp":$exp}>.<{"sub":"u","exp":$exp}>.$sig`)
	f.Add(`({"alg":"ES256","kid":"$kid","signer":"$arn"}).({"sub":"u","exp":$exp}).$sig`)
	f.Add(`<{"alg":"none"}>.<{}>.`)
	f.Add("a.b.c")
	reasons := make(map[Reason]bool)
	for _, r := range Reasons() {
		reasons[r] = true
	}
	f.Fuzz(func(t *testing.T, in string) {
		s := expandFuzz(alb, in)
		id, err := v.Verify(context.Background(), s)
		if err == nil {
			if id.Subject == "" {
				t.Fatalf("accepted a sign-in with no sub")
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || !reasons[e.Reason] {
			t.Fatalf("error %v has no known reason", err)
		}
		// Long enough that no fixed phrase of an error is mistaken for
		// an echo of the input.
		for _, seg := range append([]string{s}, strings.Split(s, ".")...) {
			if len(seg) >= 24 && strings.Contains(err.Error(), seg) {
				t.Fatalf("error text %q contains the input", err)
			}
		}
	})
}

// The committed seeds that stand for valid headers must stay valid, or
// the corpus no longer reaches the accepted path.
func TestFuzzCorpusValid(t *testing.T) {
	alb := albtest.NewUnstarted(t)
	v := newTestVerifier(t, alb, &handlerTransport{h: alb}, Config{})
	for _, name := range []string{"valid-padded", "valid-unpadded", "valid-cognito"} {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", name))
		if err != nil {
			t.Fatal(err)
		}
		line := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[1])
		in, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(line, "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := v.Verify(context.Background(), expandFuzz(alb, in)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
