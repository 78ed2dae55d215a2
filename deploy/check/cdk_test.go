package check

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

// The CDK constructs (deploy/cdk) are checked on what they synthesize: the
// example app is compiled and synthesized once per run, offline (both
// stacks are environment-agnostic), and its templates read like the
// CloudFormation ones.

var (
	synthOnce sync.Once
	synthDir  string
	synthErr  error
)

// cdkSynth compiles deploy/cdk and runs `cdk synth` into a temporary
// directory, returning it. Nothing reaches the network: no version check,
// notices, telemetry or instance metadata, and no account lookup is needed.
func cdkSynth(t *testing.T) string {
	t.Helper()
	synthOnce.Do(func() {
		dir := filepath.Join(root(t), "deploy", "cdk")
		bin := func(name string) string { return filepath.Join(dir, "node_modules", ".bin", name) }
		if _, err := os.Stat(bin("cdk")); err != nil {
			synthErr = fmt.Errorf("the CDK is not installed (make test-deploy runs npm ci in deploy/cdk): %w", err)
			return
		}
		out, err := os.MkdirTemp("", "approvals-cdk-")
		if err != nil {
			synthErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		env := append(os.Environ(),
			"CDK_DISABLE_VERSION_CHECK=1", "CDK_DISABLE_CLI_TELEMETRY=true", "AWS_EC2_METADATA_DISABLED=true")
		for _, args := range [][]string{
			{bin("tsc"), "-p", "."},
			{bin("cdk"), "synth", "--quiet", "--no-notices", "--no-version-reporting", "--output", out},
		} {
			cmd := exec.CommandContext(ctx, args[0], args[1:]...)
			cmd.Dir, cmd.Env = dir, env
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			if err := cmd.Run(); err != nil {
				synthErr = fmt.Errorf("%s: %w\n%s", filepath.Base(args[0]), err, stderr.String())
				return
			}
		}
		synthDir = out
	})
	if synthErr != nil {
		t.Fatal(synthErr)
	}
	return synthDir
}

type cfnResource struct {
	Type       string
	Properties map[string]any
}

type cfnTemplate struct {
	Parameters map[string]map[string]any
	Resources  map[string]cfnResource
	Outputs    map[string]any
}

func synthesized(t *testing.T, stack string) cfnTemplate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cdkSynth(t), stack+".template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl cfnTemplate
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatalf("%s: %v", stack, err)
	}
	return tpl
}

const synthQueueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/approvals"

// stateMachineDefinition returns a synthesized state machine's definition,
// its Fn::Join parts joined: the partition as "aws", any other reference
// (the queue URL imported from the service stack) as synthQueueURL.
func stateMachineDefinition(t *testing.T, tpl cfnTemplate, logicalPrefix string) (string, cfnResource) {
	t.Helper()
	for id, r := range tpl.Resources {
		if r.Type != "AWS::StepFunctions::StateMachine" || !strings.HasPrefix(id, logicalPrefix) {
			continue
		}
		var sb strings.Builder
		switch d := r.Properties["DefinitionString"].(type) {
		case string:
			sb.WriteString(d)
		case map[string]any:
			join := d["Fn::Join"].([]any)
			for _, p := range join[1].([]any) {
				switch p := p.(type) {
				case string:
					sb.WriteString(p)
				default:
					if fmt.Sprint(p) == "map[Ref:AWS::Partition]" {
						sb.WriteString("aws")
					} else {
						sb.WriteString(synthQueueURL)
					}
				}
			}
		}
		return sb.String(), r
	}
	t.Fatalf("no state machine %s* in the synthesized template", logicalPrefix)
	return "", cfnResource{}
}

// The example workflow built with ApprovalRequest is approval.asl.json: the
// same states and transitions, and every state sends the same body; each
// body passes the worker's decoder.
func TestCDKApprovalRequest(t *testing.T) {
	tpl := synthesized(t, "SfnApprovalsExample")
	raw, sm := stateMachineDefinition(t, tpl, "ApprovalStateMachine")
	var def definition
	if err := json.Unmarshal([]byte(raw), &def); err != nil {
		t.Fatalf("definition: %v\n%s", err, raw)
	}
	checkGraph(t, def)
	_, want := readASL(t)
	if diff := cmp.Diff(shapes(want), shapes(def)); diff != "" {
		t.Errorf("states (-approval.asl.json +CDK):\n%s", diff)
	}
	bodies := sentBodies(t, def, sampleInput(t))
	checkBodies(t, def, bodies)
	wantBodies := sentBodies(t, want, sampleInput(t))
	for name, b := range wantBodies {
		var w, g any
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(bodies[name], &g); err != nil {
			t.Fatalf("state %s sends nothing: %v", name, err)
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("state %s body (-approval.asl.json +CDK):\n%s", name, diff)
		}
	}
	req := def.States[def.StartAt]
	if q := req.Parameters["QueueUrl"]; q != synthQueueURL {
		t.Errorf("QueueUrl %v, want the service stack's queue", q)
	}
	if sm.Properties["StateMachineType"] != "STANDARD" {
		t.Errorf("type %v: waitForTaskToken needs STANDARD", sm.Properties["StateMachineType"])
	}
	validateSynthesized(t, raw)
}

// ApprovalRequest in a JSONata state: the token from $states.context, the
// rest from the expressions given, a request the worker accepts.
func TestCDKApprovalRequestJSONata(t *testing.T) {
	tpl := synthesized(t, "SfnApprovalsExample")
	raw, _ := stateMachineDefinition(t, tpl, "JsonataApprovalStateMachine")
	var def definition
	if err := json.Unmarshal([]byte(raw), &def); err != nil {
		t.Fatal(err)
	}
	if def.QueryLanguage != "JSONata" {
		t.Errorf("QueryLanguage %q", def.QueryLanguage)
	}
	s := def.States[def.StartAt]
	if s.Resource != waitForToken || s.TimeoutSeconds == nil || *s.TimeoutSeconds != 72*3600 {
		t.Errorf("approval state: %s, timeout %v", s.Resource, s.TimeoutSeconds)
	}
	bodies := jsonataBodies(t, def, sampleInput(t))
	checkBodies(t, def, bodies)
	r, err := worker.DecodeRequest(bodies[def.StartAt], worker.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.TaskToken != sampleToken || r.Subject != sampleInput(t)["subject"] || len(r.To) != 1 || r.To[0].Address != "ben@example.com" {
		t.Errorf("request: token %q, subject %q, to %v", r.TaskToken, r.Subject, r.To)
	}
	validateSynthesized(t, raw)
}

func validateSynthesized(t *testing.T, def string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "definition.asl.json")
	if err := os.WriteFile(f, []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(aslValidator(t), "--json-path", f).CombinedOutput(); err != nil {
		t.Errorf("asl-validator: %v\n%s", err, out)
	}
}

// Each state machine's role may send to the approvals queue, and do
// nothing else.
func TestCDKStateMachineRoles(t *testing.T) {
	tpl := synthesized(t, "SfnApprovalsExample")
	roles := 0
	for id, r := range tpl.Resources {
		if r.Type == "AWS::IAM::Role" {
			roles++
			if len(asList(r.Properties["ManagedPolicyArns"])) > 0 || r.Properties["Policies"] != nil {
				t.Errorf("role %s has policies of its own: %v", id, r.Properties)
			}
		}
	}
	policies := 0
	for id, r := range tpl.Resources {
		if r.Type != "AWS::IAM::Policy" {
			continue
		}
		policies++
		doc := r.Properties["PolicyDocument"].(map[string]any)
		var got []string
		for _, st := range asList(doc["Statement"]) {
			st := st.(map[string]any)
			res := fmt.Sprint(st["Resource"])
			// The queue's ARN, exported by the service stack (CDK names the
			// export after the attribute it carries).
			if m, _ := st["Resource"].(map[string]any); m != nil && strings.Contains(fmt.Sprint(m["Fn::ImportValue"]), "RequestQueueArn") {
				res = "the request queue"
			}
			got = append(got, fmt.Sprintf("%v %v on %v", st["Effect"], st["Action"], res))
		}
		want := []string{"Allow sqs:SendMessage on the request queue"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("policy %s (-want +got):\n%s", id, diff)
		}
	}
	if roles != 2 || policies != 2 {
		t.Errorf("%d roles and %d policies, want one of each per state machine", roles, policies)
	}
}

// ApprovalsService includes deploy/cloudformation/approvals.yml: every
// resource and output is there under its own name, the given parameters are
// filled in, and the keyring stays a NoEcho parameter given at deploy time.
func TestCDKApprovalsService(t *testing.T) {
	tpl := synthesized(t, "SfnApprovals")
	src, err := ProcessTemplate(filepath.Join(root(t), "deploy", "cloudformation", "approvals.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range src["Resources"].(map[string]any) {
		typ := r.(map[string]any)["Type"]
		if got := tpl.Resources[id].Type; got != typ {
			t.Errorf("resource %s: %q in the CDK stack, want %q", id, got, typ)
		}
	}
	for id := range src["Outputs"].(map[string]any) {
		if _, ok := tpl.Outputs[id]; !ok {
			t.Errorf("output %s is missing from the CDK stack", id)
		}
	}
	var left []string
	for name := range src["Parameters"].(map[string]any) {
		if _, ok := tpl.Parameters[name]; ok {
			left = append(left, name)
		}
	}
	for _, given := range []string{"ImageUri", "VpcId", "VpcCidr", "PublicSubnetIds", "PrivateSubnetIds", "DomainName", "CertificateArn", "SenderAddress", "SenderIdentity"} {
		if slices.Contains(left, given) {
			t.Errorf("parameter %s is still a parameter: the construct's props fill it", given)
		}
	}
	if p := tpl.Parameters["SigningKeys"]; p == nil || p["NoEcho"] != true {
		t.Errorf("SigningKeys: %v, want a NoEcho parameter", p)
	}
}

// ApprovalRequest's props become the request's fields: unset ones are left
// out, expiresIn is a Go duration in its largest whole unit, and actions
// that the worker would refuse are refused at synth time.
func TestCDKApprovalRequestProps(t *testing.T) {
	cdkSynth(t) // compiles dist/
	node := func(script string) ([]byte, error) {
		cmd := exec.Command("node", "-e", script)
		cmd.Dir = filepath.Join(root(t), "deploy", "cdk")
		return cmd.CombinedOutput()
	}
	const prelude = `const cdk = require('aws-cdk-lib'); const sfn = require('aws-cdk-lib/aws-stepfunctions');
const { ActionType, ApprovalRequest } = require('./dist/lib');
const body = (props) => JSON.stringify(ApprovalRequest.messageBody({ queryLanguage: sfn.QueryLanguage.JSONATA, ...props }));
`
	out, err := node(prelude + `process.stdout.write(body({
  to: ['ben@example.com', 'cy@example.com'], subject: 'Deploy?', data: {version: 'v1'},
  actions: [{name: 'ok', type: ActionType.SUCCESS, output: {go: true}}, {name: 'no', type: ActionType.FAILURE, error: 'Rejected'}],
  minApprovals: 2, requestedBy: 'ana@example.com', channels: ['ops'], expiresIn: cdk.Duration.minutes(90),
}));`)
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]any{
		"taskToken": "{% $states.context.Task.Token %}",
		"to":        []any{"ben@example.com", "cy@example.com"},
		"subject":   "Deploy?",
		"data":      map[string]any{"version": "v1"},
		"actions": []any{
			map[string]any{"name": "ok", "type": "success", "output": map[string]any{"go": true}},
			map[string]any{"name": "no", "type": "failure", "error": "Rejected"},
		},
		"minApprovals": float64(2),
		"requestedBy":  "ana@example.com",
		"channels":     []any{"ops"},
		"expiresIn":    "90m",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("message body (-want +got):\n%s", diff)
	}
	// The worker accepts the body as it is, given the channel and the votes
	// table that two approvals need.
	got["taskToken"] = sampleToken
	b, _ := json.Marshal(got)
	channels, err := channel.Parse(`{"ops": {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/x"}}`)
	if err != nil {
		t.Fatal(err)
	}
	r, err := worker.DecodeRequest(b, worker.DecodeOptions{Channels: channels, VotesTable: true})
	if err != nil {
		t.Errorf("decode: %v\n%s", err, b)
	} else if len(r.Channels) != 1 || r.Channels[0].Name != "ops" || r.MinApprovals != 2 || r.RequestedBy == nil || r.RequestedBy.Address != "ana@example.com" {
		t.Errorf("channels %v, minApprovals %d, requestedBy %v", r.Channels, r.MinApprovals, r.RequestedBy)
	}

	for _, tt := range []struct{ name, props, wantErr string }{
		{"failure without error", `{to: ['b@example.com'], subject: 's', actions: [{name: 'no', type: ActionType.FAILURE}]}`, "needs an error"},
		{"output on a failure", `{to: ['b@example.com'], subject: 's', actions: [{name: 'no', type: ActionType.FAILURE, error: 'E', output: {}}]}`, "output is for success"},
		{"sub-second expiry", `{to: ['b@example.com'], subject: 's', expiresIn: cdk.Duration.millis(1500)}`, "whole number of seconds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := node(prelude + `body(` + tt.props + `);`)
			if err == nil || !strings.Contains(string(out), tt.wantErr) {
				t.Errorf("err %v, want %q in:\n%s", err, tt.wantErr, out)
			}
		})
	}
}
