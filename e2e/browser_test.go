package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/templates"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the screenshots and their templates' checksum into docs/ (make screenshots)")

const screenshotSum = "docs/screenshots.sum"

// templatesSum is a checksum of every embedded template: the screenshots in
// docs/ were taken with the templates that give this sum.
func templatesSum(t *testing.T) string {
	t.Helper()
	h := sha256.New()
	err := fs.WalkDir(templates.Embedded(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templates.Embedded(), path)
		if err != nil {
			return err
		}
		h.Write([]byte(path + "\x00"))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// A person's path, in a real browser: the inbox, the email, the Approve
// button, the confirmation page, its comment box and its button.
func TestBrowserApprove(t *testing.T) {
	s := setup(t)
	root, err := kumo.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	shots := t.TempDir()
	if *updateScreenshots {
		shots = filepath.Join(root, "docs")
	}
	inbox := httptest.NewServer(s.Inbox())
	defer inbox.Close()

	arn, subject := startApproval(t, s)
	email := waitEmail(t, "approver@example.com", subject)
	approve := actionLinks(t, s, email)["approve"]

	b := newBrowser(t)
	b.navigate(t, inbox.URL)
	b.waitFor(t, `[...document.querySelectorAll("a.email")].some(a => a.textContent.includes(`+jsString(subject)+`))`, 10*time.Second)
	b.eval(t, `[...document.querySelectorAll("a.email")].find(a => a.textContent.includes(`+jsString(subject)+`)).click()`)
	b.waitFor(t, `location.pathname.startsWith("/email/") && document.readyState === "complete"`, 10*time.Second)
	if got := b.eval(t, `document.querySelectorAll("a[href="+JSON.stringify(`+jsString(approve)+`)+"]").length`); got == float64(0) {
		t.Fatalf("the rendered email has no link to the approve URL")
	}
	b.screenshot(t, filepath.Join(shots, "email.png"))

	// Email buttons open a new tab (target=_blank); follow it in this one.
	b.eval(t, `(a => { a.removeAttribute("target"); a.click() })(document.querySelector("a[href="+JSON.stringify(`+jsString(approve)+`)+"]"))`)
	b.waitFor(t, `location.href === `+jsString(approve)+` && document.querySelector("form textarea") !== null`, 10*time.Second)
	if st := describe(t, s, arn).Status; st != sfntypes.ExecutionStatusRunning {
		t.Fatalf("opening the confirmation page changed the execution: %s", st)
	}
	b.eval(t, `document.querySelector("form textarea").value = "Checked the release notes; go ahead."`)
	b.screenshot(t, filepath.Join(shots, "confirm.png"))

	b.eval(t, `document.querySelector("form").requestSubmit()`)
	d := kumotest.WaitStatus(t, s.SFN, arn, 20*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s after the browser's POST, want SUCCEEDED", d.Status)
	}
	var out struct {
		Approval struct {
			Decision struct {
				Comment string `json:"comment"`
			} `json:"decision"`
		} `json:"approval"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil || out.Approval.Decision.Comment != "Checked the release notes; go ahead." {
		t.Errorf("the comment typed in the browser did not reach the execution: %s", aws.ToString(d.Output))
	}
	b.waitFor(t, `document.readyState === "complete" && document.querySelector("form textarea") === null`, 10*time.Second)
	b.screenshot(t, filepath.Join(shots, "done.png"))

	b.navigate(t, inbox.URL)
	b.waitFor(t, `document.querySelector("#executions").textContent.includes("SUCCEEDED")`, 10*time.Second)

	if *updateScreenshots {
		if err := os.WriteFile(filepath.Join(root, screenshotSum), []byte(templatesSum(t)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The README's screenshots must show the current templates.
func TestScreenshotsMatchTemplates(t *testing.T) {
	if *updateScreenshots {
		return // TestBrowserApprove is writing them
	}
	root, err := kumo.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, screenshotSum))
	if err != nil {
		t.Fatalf("%v: run make screenshots", err)
	}
	if strings.TrimSpace(string(b)) != templatesSum(t) {
		t.Fatalf("the templates changed since docs/*.png were taken: run make screenshots and commit docs/")
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
