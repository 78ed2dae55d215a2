package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
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
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// waitChannel waits for the stack's channel name to receive a message
// whose body holds subject, and returns it.
func waitChannel(t *testing.T, s *stack.Stack, name, subject string) stack.ChannelMessage {
	t.Helper()
	want, _ := json.Marshal(subject)
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, m := range s.ChannelMessages() {
			if m.Channel == name && strings.Contains(string(m.Body), string(want)) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message to channel %s with subject %q within 20s", name, subject)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A person in Slack, in a real browser: the inbox draws the request's Slack
// message, its Approve button opens the confirmation page (deciding
// nothing), and the page's button approves as channel:ops.
func TestBrowserApproveFromSlack(t *testing.T) {
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

	in := stack.ChannelInput(execSeq.Add(1))
	subject := in["subject"].(string)
	arn, err := s.StartChannelExecution(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	slack := waitChannel(t, s, stack.SlackChannel, subject)
	// The same request reached the other channels, the webhook signed.
	waitChannel(t, s, stack.TeamsChannel, subject)
	if hook := waitChannel(t, s, stack.WebhookChannel, subject); !hook.Verified {
		t.Errorf("the webhook post's signature did not verify: %s", hook.Problem)
	}
	var doc struct {
		Blocks []struct {
			Type     string `json:"type"`
			Elements []struct {
				ActionID string `json:"action_id"`
				URL      string `json:"url"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(slack.Body, &doc); err != nil {
		t.Fatalf("slack body: %v", err)
	}
	var approve string
	for _, b := range doc.Blocks {
		for _, e := range b.Elements {
			if b.Type == "actions" && e.ActionID == "approve" {
				approve = e.URL
			}
		}
	}
	c, err := s.Keyring.Open(strings.TrimPrefix(approve, s.RedeemerURL+link.PathPrefix), time.Now())
	if err != nil || c.Recipient != "channel:"+stack.SlackChannel {
		t.Fatalf("the Slack approve button %q: %v, recipient %q", approve, err, c.Recipient)
	}

	b := newBrowser(t)
	b.navigate(t, inbox.URL)
	card := fmt.Sprintf(`document.querySelector("#channel-%d")`, slack.ID)
	b.waitFor(t, card+` !== null && `+card+`.querySelector(".sk-header").textContent === `+jsString(subject), 10*time.Second)
	// The message alone, as in the README's screenshot.
	b.eval(t, card+`.querySelector("a.open").click()`)
	b.waitFor(t, fmt.Sprintf(`location.pathname === "/channel/%d" && document.readyState === "complete"`, slack.ID), 10*time.Second)
	button := `[...document.querySelectorAll("a.sk-button")].find(a => a.textContent === "Approve")`
	if got := b.eval(t, button+`.href`); got != approve {
		t.Fatalf("the rendered Approve button links to %v, want %s", got, approve)
	}
	if got := b.eval(t, button+`.className`); got != "sk-button primary" {
		t.Errorf("the Approve button's class is %v, want sk-button primary", got)
	}
	b.screenshotOf(t, ".sk", filepath.Join(shots, "slack.png"))

	b.eval(t, button+`.click()`)
	b.waitFor(t, `location.href === `+jsString(approve)+` && document.querySelector("form textarea") !== null`, 10*time.Second)
	if !strings.Contains(b.eval(t, `document.body.innerText`).(string), "channel:"+stack.SlackChannel) {
		t.Errorf("the confirmation page does not name channel:%s", stack.SlackChannel)
	}
	if st := describe(t, s, arn).Status; st != sfntypes.ExecutionStatusRunning {
		t.Fatalf("opening the Slack button changed the execution: %s", st)
	}
	b.eval(t, `document.querySelector("form textarea").value = "Approved from Slack."`)
	b.eval(t, `document.querySelector("form").requestSubmit()`)
	d := kumotest.WaitStatus(t, s.SFN, arn, 20*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s after the browser's POST, want SUCCEEDED", d.Status)
	}
	var out struct {
		Approval struct {
			Decision struct {
				Action   string `json:"action"`
				Approver string `json:"approver"`
				Comment  string `json:"comment"`
			} `json:"decision"`
		} `json:"approval"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatal(err)
	}
	if dec := out.Approval.Decision; dec.Action != "approve" || dec.Approver != "channel:"+stack.SlackChannel || dec.Comment != "Approved from Slack." {
		t.Errorf("decision %+v, want approve by channel:%s with the comment", dec, stack.SlackChannel)
	}
}

// screenshotOf captures the first element matching selector, with a small
// margin.
func (b *browser) screenshotOf(t *testing.T, selector, path string) {
	t.Helper()
	r := b.eval(t, `(() => { const r = document.querySelector(`+jsString(selector)+`).getBoundingClientRect();
		return [r.x + scrollX, r.y + scrollY, r.width, r.height] })()`).([]any)
	const m = 12
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var res struct {
		Data string `json:"data"`
	}
	if err := b.call(ctx, b.session, "Page.captureScreenshot", map[string]any{"format": "png", "clip": map[string]any{
		"x": r[0].(float64) - m, "y": r[1].(float64) - m, "width": r[2].(float64) + 2*m, "height": r[3].(float64) + 2*m, "scale": 1}}, &res); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
