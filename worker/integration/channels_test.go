package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/internal/testio"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/redeemer"
	"github.com/sfn-approvals/sfn-approvals/worker"
	"github.com/sfn-approvals/sfn-approvals/worker/workertest"
)

// channelDefinition sends a request to the channels the input names, and
// to no email address.
func channelDefinition(queueURL string) string {
	return kumotest.TaskDefinition(queueURL, kumotest.Task{TimeoutSeconds: 120, Fields: []string{"channels", "subject", "data"}})
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver stands in for a service the worker posts to. It checks what the
// service checks and answers as it does: a 2xx for a good post, a 4xx
// with the reason otherwise (which fails the approval, so a shape the
// service would refuse cannot pass unseen). Every post, good or not, is
// recorded.
type receiver struct {
	srv   *httptest.Server
	posts chan received
}

func newReceiver(t *testing.T, check func(http.Header, []byte) (int, string)) *receiver {
	t.Helper()
	r := &receiver{posts: make(chan received, 20)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Slack takes 1 MB at most, Teams and most webhooks far less: a
		// larger body is an error on its face.
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
		r.posts <- received{header: req.Header.Clone(), body: body}
		switch mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); {
		case err != nil:
			http.Error(w, "request_too_large", http.StatusRequestEntityTooLarge)
		case req.Method != http.MethodPost:
			http.Error(w, "method_not_allowed", http.StatusMethodNotAllowed)
		case mt != "application/json":
			http.Error(w, "invalid_content_type", http.StatusUnsupportedMediaType)
		default:
			code, answer := check(req.Header, body)
			w.WriteHeader(code)
			_, _ = io.WriteString(w, answer)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case p := <-r.posts:
		return p
	case <-time.After(15 * time.Second):
		t.Fatal("no post received")
		return received{}
	}
}

// slackBody is the part of a Block Kit message Slack validates here.
type slackBody struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type string `json:"type"`
		// Elements are buttons in an actions block, texts in a context
		// block.
		Elements []json.RawMessage `json:"elements"`
	} `json:"blocks"`
}

// slackButton is an actions block's element.
type slackButton struct {
	Type     string `json:"type"`
	ActionID string `json:"action_id"`
	URL      string `json:"url"`
	Style    string `json:"style"`
	Text     struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"text"`
}

// buttons returns the message's buttons, in order.
func (m slackBody) buttons() ([]slackButton, error) {
	var out []slackButton
	for _, b := range m.Blocks {
		if b.Type != "actions" {
			continue
		}
		for _, raw := range b.Elements {
			var e slackButton
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// checkSlack answers as a Slack incoming webhook: "ok", or 400
// invalid_blocks for what Block Kit refuses.
func checkSlack(_ http.Header, body []byte) (int, string) {
	var m slackBody
	if err := json.Unmarshal(body, &m); err != nil || len(m.Blocks) == 0 {
		return http.StatusBadRequest, "invalid_payload"
	}
	if len(m.Blocks) > channel.SlackMaxBlocks {
		return http.StatusBadRequest, "invalid_blocks"
	}
	ids := map[string]bool{}
	for _, b := range m.Blocks {
		switch b.Type {
		case "header", "section", "context", "divider":
		case "actions":
			if len(b.Elements) == 0 || len(b.Elements) > channel.SlackMaxButtons {
				return http.StatusBadRequest, "invalid_blocks"
			}
		default:
			return http.StatusBadRequest, "invalid_blocks"
		}
	}
	buttons, err := m.buttons()
	if err != nil {
		return http.StatusBadRequest, "invalid_blocks"
	}
	for _, e := range buttons {
		if e.Type != "button" || e.Text.Type != "plain_text" || e.Text.Text == "" || len([]rune(e.Text.Text)) > channel.SlackMaxButtonText ||
			len(e.URL) > channel.SlackMaxButtonURL || ids[e.ActionID] || (e.Style != "" && e.Style != "primary" && e.Style != "danger") {
			return http.StatusBadRequest, "invalid_blocks"
		}
		if _, err := url.ParseRequestURI(e.URL); err != nil {
			return http.StatusBadRequest, "invalid_blocks"
		}
		ids[e.ActionID] = true
	}
	return http.StatusOK, "ok"
}

// teamsBody is the part of a Workflows message Teams validates here.
type teamsBody struct {
	Type        string `json:"type"`
	Attachments []struct {
		ContentType string `json:"contentType"`
		Content     struct {
			Type    string `json:"type"`
			Version string `json:"version"`
			Body    []json.RawMessage
			Actions []struct {
				Type  string `json:"type"`
				Title string `json:"title"`
				URL   string `json:"url"`
			} `json:"actions"`
		} `json:"content"`
	} `json:"attachments"`
}

// checkTeams answers as a Teams Workflows webhook: 202, or 400 for a body
// that is not one Adaptive Card within the size Teams takes.
func checkTeams(_ http.Header, body []byte) (int, string) {
	var m teamsBody
	if len(body) > channel.TeamsMaxBytes {
		return http.StatusRequestEntityTooLarge, "message too large"
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Type != "message" || len(m.Attachments) != 1 {
		return http.StatusBadRequest, "bad request"
	}
	a := m.Attachments[0]
	if a.ContentType != "application/vnd.microsoft.card.adaptive" || a.Content.Type != "AdaptiveCard" || a.Content.Version == "" || len(a.Content.Body) == 0 {
		return http.StatusBadRequest, "bad card"
	}
	for _, act := range a.Content.Actions {
		if act.Type != "Action.OpenUrl" || act.Title == "" || act.URL == "" {
			return http.StatusBadRequest, "bad action"
		}
	}
	return http.StatusAccepted, ""
}

const hookSecret = "integration-webhook-secret"

// webhookBody is the generic webhook contract.
type webhookBody struct {
	Subject      string         `json:"subject"`
	Data         map[string]any `json:"data"`
	ExpiresAt    time.Time      `json:"expiresAt"`
	MinApprovals int            `json:"minApprovals"`
	Actions      []struct {
		Name, Label, Type, URL string
	} `json:"actions"`
}

// checkWebhook is a receiver that verifies the signature before it trusts
// the body, as README's snippet does.
func checkWebhook(h http.Header, body []byte) (int, string) {
	if err := channel.Verify(hookSecret, h.Get(channel.HeaderTimestamp), h.Get(channel.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		return http.StatusUnauthorized, "bad signature"
	}
	var m webhookBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || m.Subject == "" || len(m.Actions) == 0 || m.MinApprovals < 1 {
		return http.StatusBadRequest, "bad body"
	}
	return http.StatusNoContent, ""
}

type channelEnv struct {
	sq        *sqs.Client
	sf        *sfn.Client
	queueURL  string
	sm        string
	kr        *link.Keyring
	slack     *receiver
	teams     *receiver
	hook      *receiver
	denied    *receiver
	redeemURL string
	logs      *testio.SyncBuffer // the worker's
}

// setupChannels runs a worker posting to three receivers and a forbidding
// one, with a real redeemer behind the links.
func setupChannels(t *testing.T) *channelEnv {
	t.Helper()
	awsCfg := kumotest.Config()
	e := &channelEnv{sq: sqs.NewFromConfig(awsCfg), sf: sfn.NewFromConfig(awsCfg), logs: &testio.SyncBuffer{}}
	e.queueURL, _ = kumotest.Queue(t, e.sq, 3)
	e.sm = kumotest.StateMachine(t, e.sf, channelDefinition(e.queueURL))
	keys, err := link.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if e.kr, err = link.ParseKeyring(keys); err != nil {
		t.Fatal(err)
	}
	e.slack, e.teams, e.hook = newReceiver(t, checkSlack), newReceiver(t, checkTeams), newReceiver(t, checkWebhook)
	// Slack's answer to a revoked webhook.
	e.denied = newReceiver(t, func(http.Header, []byte) (int, string) { return http.StatusForbidden, "invalid_token" })
	cfg, err := channel.Parse(fmt.Sprintf(`{
		"ops":    {"type": "slack",   "url": %q},
		"team":   {"type": "teams",   "url": %q},
		"hook":   {"type": "webhook", "url": %q, "secret": %q},
		"denied": {"type": "slack",   "url": %q}
	}`, e.slack.srv.URL+"/services/T0/B0/SLACKSECRET", e.teams.srv.URL+"/workflows/run?sig=TEAMSSECRET",
		e.hook.srv.URL+"/approvals", hookSecret, e.denied.srv.URL+"/services/T0/B1/DENIEDSECRET"))
	if err != nil {
		t.Fatal(err)
	}

	// The redeemer's base URL is its own listener's, known once it runs.
	var handler http.Handler = http.NotFoundHandler()
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(rs.Close)
	e.redeemURL = rs.URL
	client := sfn.NewFromConfig(awsCfg, func(o *sfn.Options) { o.Retryer = aws.NopRetryer{} })
	srv, err := redeemer.New(redeemer.Config{BaseURL: rs.URL, Keyring: e.kr}, client, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	handler = srv

	stop := workertest.Start(t, worker.Config{
		QueueURL:      e.queueURL,
		Sender:        "approvals@example.com",
		BaseURL:       rs.URL,
		Keyring:       e.kr,
		Channels:      cfg,
		Concurrency:   2,
		ShutdownGrace: 5 * time.Second,
		ReceiveWait:   time.Second,
		AWSTimeout:    5 * time.Second,
		Logger:        slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AWS:           &awsCfg,
	}, 15*time.Second)
	t.Cleanup(func() {
		stop()
		for _, secret := range []string{"SLACKSECRET", "TEAMSSECRET", "DENIEDSECRET", hookSecret} {
			if strings.Contains(e.logs.String(), secret) {
				t.Errorf("the worker's logs show a channel's URL or secret (%s)", secret)
			}
		}
	})
	return e
}

// A request to Slack, Teams and a webhook posts each its own message, in
// the shape each service takes; a Slack button's link, followed as a
// browser does (GET, then the form's POST) on a real redeemer, completes
// the execution as approver channel:ops. A webhook's link takes a JSON
// callback whose payload reaches the next execution's output.
func TestChannelsAgainstKumo(t *testing.T) {
	e := setupChannels(t)
	subject := kumotest.Name("Deploy 42 to production")
	exec := kumotest.StartExecution(t, e.sf, e.sm, map[string]any{
		"channels": []string{"ops", "team", "hook"}, "subject": subject,
		"data": map[string]any{"service": "payments", "version": 42},
	})

	var slack slackBody
	if err := json.Unmarshal(e.slack.next(t).body, &slack); err != nil {
		t.Fatal(err)
	}
	bs, err := slack.buttons()
	if err != nil {
		t.Fatal(err)
	}
	var buttons []string
	for _, b := range bs {
		buttons = append(buttons, b.URL)
	}
	if slack.Text != subject || len(buttons) != 2 {
		t.Fatalf("slack message %q with %d buttons, want the subject and 2 (approve, reject)", slack.Text, len(buttons))
	}
	var teams teamsBody
	if err := json.Unmarshal(e.teams.next(t).body, &teams); err != nil {
		t.Fatal(err)
	}
	if n := len(teams.Attachments[0].Content.Actions); n != 2 {
		t.Errorf("teams card with %d actions, want 2", n)
	}
	hookPost := e.hook.next(t)
	var hook webhookBody
	if err := json.Unmarshal(hookPost.body, &hook); err != nil {
		t.Fatal(err)
	}
	if hook.Subject != subject || hook.Data["service"] != "payments" || len(hook.Actions) != 2 || hook.Actions[0].Name != "approve" {
		t.Errorf("webhook body %s", hookPost.body)
	}
	for name, urls := range map[string][]string{
		"ops":  buttons,
		"team": {teams.Attachments[0].Content.Actions[0].URL, teams.Attachments[0].Content.Actions[1].URL},
		"hook": {hook.Actions[0].URL, hook.Actions[1].URL},
	} {
		for _, u := range urls {
			c, err := e.kr.Open(strings.TrimPrefix(u, e.redeemURL+link.PathPrefix), time.Now())
			if err != nil {
				t.Fatalf("%s link %q: %v", name, u, err)
			}
			if c.Recipient != "channel:"+name {
				t.Errorf("%s link for %q, want channel:%s", name, c.Recipient, name)
			}
		}
	}
	waitQueueEmpty(t, e.sq, e.queueURL)

	// A chat preview or a scanner opening the button decides nothing.
	approve := buttons[0]
	resp, err := http.Get(approve)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "channel:ops") {
		t.Fatalf("GET = %d, want the confirmation page for channel:ops", resp.StatusCode)
	}
	if s := status(t, e.sf, exec); s != sfntypes.ExecutionStatusRunning {
		t.Fatalf("after GET the execution is %s, want RUNNING", s)
	}
	resp, err = http.PostForm(approve, url.Values{"comment": {"from Slack"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST = %d, want 200", resp.StatusCode)
	}
	d := kumotest.WaitStatus(t, e.sf, exec, 10*time.Second)
	var out struct{ Decision approval.Decision }
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); d.Status != sfntypes.ExecutionStatusSucceeded || err != nil {
		t.Fatalf("execution %s, output %s", d.Status, aws.ToString(d.Output))
	}
	if out.Decision.Approver != "channel:ops" || out.Decision.Action != "approve" || out.Decision.Comment != "from Slack" {
		t.Errorf("decision %+v, want approve by channel:ops", out.Decision)
	}

	// A bot answers through the webhook's link with a JSON callback.
	exec = kumotest.StartExecution(t, e.sf, e.sm, map[string]any{"channels": []string{"hook"}, "subject": subject, "data": map[string]any{}})
	if err := json.Unmarshal(e.hook.next(t).body, &hook); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Post(hook.Actions[0].URL, "application/json", strings.NewReader(`{"comment": "CI passed", "payload": {"build": 7}}`))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct{ Outcome, Approver string }
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || answer.Outcome != "recorded" || answer.Approver != "channel:hook" {
		t.Fatalf("JSON callback = %d %+v", resp.StatusCode, answer)
	}
	d = kumotest.WaitStatus(t, e.sf, exec, 10*time.Second)
	out.Decision = approval.Decision{}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil || out.Decision.Payload != `{"build":7}` || out.Decision.Approver != "channel:hook" {
		t.Errorf("execution %s, output %s", d.Status, aws.ToString(d.Output))
	}
}

// A channel that answers 403 fails the execution at once with
// Approvals.ChannelRejected, naming the channel and the status, never the
// URL; the channels before it had their message.
func TestChannelRejectedAgainstKumo(t *testing.T) {
	e := setupChannels(t)
	exec := kumotest.StartExecution(t, e.sf, e.sm, map[string]any{
		"channels": []string{"hook", "denied"}, "subject": kumotest.Name("Deploy 43"), "data": map[string]any{},
	})
	e.hook.next(t)
	e.denied.next(t)
	d := kumotest.WaitStatus(t, e.sf, exec, 15*time.Second)
	if d.Status != sfntypes.ExecutionStatusFailed {
		t.Fatalf("execution %s, want FAILED", d.Status)
	}
	f := failure(t, e.sf, exec)
	if f.err != worker.ErrChannelRejected {
		t.Errorf("error %q, want %s", f.err, worker.ErrChannelRejected)
	}
	var cause struct{ Problems []string }
	if err := json.Unmarshal([]byte(f.cause), &cause); err != nil {
		t.Fatalf("cause %q: %v", f.cause, err)
	}
	if len(cause.Problems) != 1 || cause.Problems[0] != "channel denied (slack) answered 403 Forbidden" {
		t.Errorf("problems %q", cause.Problems)
	}
	if strings.Contains(f.cause, "DENIEDSECRET") || strings.Contains(f.cause, e.denied.srv.URL) {
		t.Errorf("cause shows the channel's URL: %s", f.cause)
	}
	waitQueueEmpty(t, e.sq, e.queueURL)
}

func status(t *testing.T, sf *sfn.Client, exec string) sfntypes.ExecutionStatus {
	t.Helper()
	out, err := sf.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(exec)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Status
}
