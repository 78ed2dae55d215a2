package redeemer

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sfn-approvals/sfn-approvals/worker"
)

// FuzzURLsAgree holds the promise between the services: a redirectUrl the
// worker accepts into a link is one the redeemer redirects to, and a base
// URL one accepts the other does too. The seeds are the cases the two once
// judged differently; `go test -fuzz FuzzURLsAgree ./redeemer/` looks for more.
func FuzzURLsAgree(f *testing.F) {
	for _, s := range []string{
		"https://deploy.example.com:8443/done?id=42",
		"http://localhost:8080/after",
		"https://xn--bcher-kva.example/",
		"https://[2001:db8::1]/",
		"https://u:p@deploy.example.com/",
		"https://u@deploy.example.com/",
		"https://bücher.example/",
		"https://b%C3%BCcher.example/",
		"https://deploy.example.com/#done",
		"https://deploy_1.example.com/",
		"https://a;b.example.com/",
		"https:deploy.example.com",
		"javascript:alert(1)",
		"//deploy.example.com/",
		"https://deploy.example.com/?q=1",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || len(s) > worker.MaxRedirectLen {
			return // the worker refuses these before any URL check
		}
		v, _ := json.Marshal(s)
		body := `{"taskToken":"T0KEN","to":["a@example.com"],"subject":"s","redirectUrl":` + string(v) + `}`
		_, werr := worker.DecodeRequest([]byte(body), worker.DecodeOptions{Now: now})
		target, origin := redirectTarget(s)
		if (werr == nil) != (target != "" && origin != "") {
			t.Errorf("redirectUrl %q: worker error %v, redeemer target %q", s, werr, target)
		}
		_, berr := basePath(s)
		if (worker.CheckBaseURL(s) == nil) != (berr == nil) {
			t.Errorf("base URL %q: worker %v, redeemer %v", s, worker.CheckBaseURL(s), berr)
		}
	})
}
