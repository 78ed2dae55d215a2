package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/worker"
)

// A state machine definition, as much of ASL as the checks read.
type definition struct {
	QueryLanguage string
	StartAt       string
	States        map[string]state
}

type state struct {
	Type           string
	Resource       string
	Parameters     map[string]any
	TimeoutSeconds *int
	ResultPath     json.RawMessage
	// JSONata states: Arguments in place of Parameters, Output and Assign
	// in place of the paths.
	Arguments map[string]any
	Output    any
	Assign    map[string]any
	Catch     []struct {
		ErrorEquals []string
		ResultPath  json.RawMessage
		Output      any
		Assign      map[string]any
		Next        string
	}
	Next    string
	End     bool
	Choices []struct{ Next string }
	Default string
}

const (
	sendMessage     = "arn:aws:states:::sqs:sendMessage"
	waitForToken    = sendMessage + ".waitForTaskToken"
	sampleToken     = "AQCEAAAAKgAAAAMAAAAAAAAAAeMdnOg0t4VSS7lEdfZPv9GYyb2Kn"
	sampleExecution = "arn:aws:states:eu-west-1:123456789012:execution:deploy:0b1d4c4e"
)

var placeholderRE = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

func readASL(t *testing.T) (raw string, def definition) {
	t.Helper()
	b := readJSON(t, &def, "deploy", "statemachines", "approval.asl.json")
	return string(b), def
}

func sampleInput(t *testing.T) map[string]any {
	t.Helper()
	var in map[string]any
	readJSON(t, &in, "deploy", "statemachines", "approval.input.json")
	return in
}

func placeholders(s string) []string {
	set := map[string]bool{}
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		set[m[1]] = true
	}
	return Sorted(set)
}

func TestApprovalStateMachineShape(t *testing.T) {
	raw, def := readASL(t)
	if diff := cmp.Diff([]string{"QueueUrl"}, placeholders(raw)); diff != "" {
		t.Errorf("placeholders (-want +got):\n%s", diff)
	}
	checkGraph(t, def)

	req, ok := def.States[def.StartAt]
	if !ok || req.Resource != waitForToken {
		t.Fatalf("the first state is not a waitForTaskToken request: %+v", req)
	}
	// The task times out when the links expire, not before or long after.
	body := req.Parameters["MessageBody"].(map[string]any)
	exp, err := time.ParseDuration(body["expiresIn"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if req.TimeoutSeconds == nil || time.Duration(*req.TimeoutSeconds)*time.Second != exp {
		t.Errorf("TimeoutSeconds %v, want expiresIn %s", req.TimeoutSeconds, exp)
	}
	caught := map[string]string{}
	for _, c := range req.Catch {
		for _, e := range c.ErrorEquals {
			caught[e] = c.Next
		}
	}
	for _, e := range []string{"Rejected", "States.Timeout", "Approvals.InvalidRequest", "Approvals.EmailRejected"} {
		if caught[e] == "" {
			t.Errorf("%s is not caught", e)
		}
	}
	// Every failure action's error is caught, so a click on it takes the
	// path written for it.
	for _, a := range body["actions"].([]any) {
		a := a.(map[string]any)
		if a["type"] == "failure" && caught[a["error"].(string)] == "" {
			t.Errorf("action %v fails with %v, which is not caught", a["name"], a["error"])
		}
	}
	// Approval, rejection and timeout each notify the requester.
	for _, path := range []string{req.Next, caught["Rejected"], caught["States.Timeout"]} {
		if s := def.States[path]; s.Resource != sendMessage {
			t.Errorf("%s does not send a notification: %+v", path, s)
		}
	}
}

// checkGraph asserts every transition names a state and every state is
// reachable.
func checkGraph(t *testing.T, def definition) {
	t.Helper()
	seen := map[string]bool{}
	var walk func(string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		s, ok := def.States[name]
		if !ok {
			t.Errorf("transition to missing state %q", name)
			return
		}
		seen[name] = true
		next := []string{s.Next, s.Default}
		for _, c := range s.Catch {
			next = append(next, c.Next)
		}
		for _, c := range s.Choices {
			next = append(next, c.Next)
		}
		if s.Next == "" && !s.End && s.Type != "Succeed" && s.Type != "Fail" && s.Type != "Choice" {
			t.Errorf("state %q has neither Next nor End", name)
		}
		for _, n := range next {
			if n != "" {
				walk(n)
			}
		}
	}
	walk(def.StartAt)
	for name := range def.States {
		if !seen[name] {
			t.Errorf("state %q is unreachable", name)
		}
	}
}

// sentBodies walks the definition from its start with input and returns
// the message body each SQS Task state sends, as the state machine would
// build it: a waitForTaskToken state continues with a decision (or, along
// each Catch, a failure from the redeemer) placed at its ResultPath.
func sentBodies(t *testing.T, def definition, input map[string]any) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var visit func(name string, in map[string]any)
	visit = func(name string, in map[string]any) {
		if _, done := out[name]; done {
			return
		}
		s := def.States[name]
		switch s.Type {
		case "Pass":
			visit(s.Next, in)
			return
		case "Task":
		default:
			return
		}
		if s.Resource != sendMessage && s.Resource != waitForToken {
			t.Fatalf("state %s: unexpected resource %s", name, s.Resource)
		}
		body, err := resolve(s.Parameters["MessageBody"], in)
		if err != nil {
			t.Fatalf("state %s: %v", name, err)
		}
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
		if s.Resource != waitForToken {
			if s.Next != "" {
				visit(s.Next, withResult(t, in, s.ResultPath, map[string]any{"MessageId": "m-1"}))
			}
			return
		}
		success, cause := decisionOf(t, body.(map[string]any))
		if s.Next != "" {
			visit(s.Next, withResult(t, in, s.ResultPath, success))
		}
		for _, c := range s.Catch {
			visit(c.Next, withResult(t, in, c.ResultPath, map[string]any{"Error": c.ErrorEquals[0], "Cause": cause}))
		}
	}
	visit(def.StartAt, input)
	return out
}

// decisionOf returns what the redeemer hands Step Functions for a request:
// the success action's output with the decision beside it, and a failure's
// cause (a JSON string).
func decisionOf(t *testing.T, body map[string]any) (success map[string]any, cause string) {
	t.Helper()
	decision := map[string]any{"approver": "ben@example.com", "decidedAt": "2026-03-04T05:06:07Z", "comment": "ok"}
	success = map[string]any{}
	actions, ok := body["actions"].([]any)
	if !ok { // the worker's default actions
		actions = []any{
			map[string]any{"name": "approve", "type": "success"},
			map[string]any{"name": "reject", "type": "failure", "error": "Rejected"},
		}
	}
	for _, a := range actions {
		a := a.(map[string]any)
		switch a["type"] {
		case "success":
			if o, ok := a["output"].(map[string]any); ok {
				maps.Copy(success, o)
			}
			success["decision"] = mergeMap(decision, map[string]any{"action": a["name"]})
		case "failure":
			c, _ := json.Marshal(map[string]any{"message": a["cause"], "decision": mergeMap(decision, map[string]any{"action": a["name"]})})
			cause = string(c)
		}
	}
	return success, cause
}

func mergeMap(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func withResult(t *testing.T, in map[string]any, resultPath json.RawMessage, result any) map[string]any {
	t.Helper()
	if string(resultPath) == "null" {
		return in
	}
	var p string
	if len(resultPath) > 0 {
		if err := json.Unmarshal(resultPath, &p); err != nil {
			t.Fatal(err)
		}
	}
	if p == "" || p == "$" {
		r, _ := result.(map[string]any)
		return r
	}
	out := maps.Clone(in)
	out[strings.TrimPrefix(p, "$.")] = result // one level is all the examples use
	return out
}

var formatRE = regexp.MustCompile(`^States\.Format\('((?:[^'\\]|\\.)*)'((?:\s*,\s*[^,]+)*)\)$`)

// resolve builds Parameters against a state's input: "key.$" fields take a
// path ($.a.b, or the context object's $$.Task.Token and $$.Execution.Id)
// or States.Format; other values are copied, objects recursively.
func resolve(v any, input map[string]any) (any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return v, nil
	}
	out := map[string]any{}
	for k, val := range obj {
		if name, isPath := strings.CutSuffix(k, ".$"); isPath {
			r, err := evalPath(val.(string), input)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[name] = r
			continue
		}
		r, err := resolve(val, input)
		if err != nil {
			return nil, err
		}
		out[k] = r
	}
	return out, nil
}

func evalPath(p string, input map[string]any) (any, error) {
	switch {
	case p == "$$.Task.Token":
		return sampleToken, nil
	case p == "$$.Execution.Id":
		return sampleExecution, nil
	case strings.HasPrefix(p, "States.Format("):
		m := formatRE.FindStringSubmatch(p)
		if m == nil {
			return nil, fmt.Errorf("cannot read %s", p)
		}
		s := m[1]
		for _, arg := range strings.Split(strings.TrimPrefix(strings.TrimSpace(m[2]), ","), ",") {
			v, err := evalPath(strings.TrimSpace(arg), input)
			if err != nil {
				return nil, err
			}
			s = strings.Replace(s, "{}", fmt.Sprint(v), 1)
		}
		return s, nil
	case p == "$":
		return input, nil
	case strings.HasPrefix(p, "$."):
		var cur any = input
		for _, f := range strings.Split(p[2:], ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: %q is not inside an object", p, f)
			}
			if cur, ok = m[f]; !ok {
				// Step Functions fails the execution (States.Runtime) here.
				return nil, fmt.Errorf("%s: the state's input has no %q", p, f)
			}
		}
		return cur, nil
	}
	return nil, fmt.Errorf("unsupported path %s", p)
}

// checkBodies decodes every body with the worker's strict decoder: a typo
// in a definition would fail every execution at run time.
func checkBodies(t *testing.T, def definition, bodies map[string][]byte) {
	t.Helper()
	if len(bodies) == 0 {
		t.Fatal("no SQS states found")
	}
	for name, b := range bodies {
		r, err := worker.DecodeRequest(b, worker.DecodeOptions{})
		if err != nil {
			t.Errorf("state %s sends a body the worker refuses: %v\n%s", name, err, b)
			continue
		}
		wantNotification := def.States[name].Resource == sendMessage
		if r.Notification() != wantNotification {
			t.Errorf("state %s: notification=%t, want %t", name, r.Notification(), wantNotification)
		}
	}
}

func TestApprovalStateMachineBodiesDecode(t *testing.T) {
	_, def := readASL(t)
	bodies := sentBodies(t, def, sampleInput(t))
	if diff := cmp.Diff([]string{"NotifyApproved", "NotifyRejected", "NotifyTimedOut", "RequestApproval"}, Sorted(bodies)); diff != "" {
		t.Errorf("states sending messages (-want +got):\n%s", diff)
	}
	checkBodies(t, def, bodies)
	// The notification after approval carries the decision.
	var n struct{ Data map[string]any }
	if err := json.Unmarshal(bodies["NotifyApproved"], &n); err != nil {
		t.Fatal(err)
	}
	if d, _ := n.Data["decision"].(map[string]any); d["action"] != "approve" || d["approver"] != "ben@example.com" {
		t.Errorf("approved notification data: %v", n.Data)
	}
}

// The decoder is strict, so the checks above mean something: an unknown
// field in a definition would be refused.
func TestDecoderRefusesUnknownFields(t *testing.T) {
	_, def := readASL(t)
	b := sentBodies(t, def, sampleInput(t))["RequestApproval"]
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["expiresin"] = "1h"
	b, _ = json.Marshal(m)
	_, err := worker.DecodeRequest(b, worker.DecodeOptions{})
	var ve *worker.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("unknown field accepted: %v", err)
	}
}

// The snippet for an existing workflow: its approval step decodes too, and
// its role may only send to the queue.
func TestExistingWorkflowSnippet(t *testing.T) {
	tpl, err := OpenTemplate(filepath.Join(root(t), "deploy", "statemachines", "existing-workflow.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := tpl.GetStepFunctionsStateMachineWithName("DeployWorkflow")
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(sm.Definition)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Sorted(sm.DefinitionSubstitutions), placeholders(string(js))); diff != "" {
		t.Errorf("placeholders vs DefinitionSubstitutions (-want +got):\n%s", diff)
	}
	if got := fmt.Sprint(sm.DefinitionSubstitutions["ApprovalsQueueUrl"]); got != "import:sfn-approvals-QueueUrl" {
		t.Errorf("queue URL from %q", got)
	}
	var def definition
	if err := json.Unmarshal(js, &def); err != nil {
		t.Fatal(err)
	}
	checkGraph(t, def)
	input := map[string]any{"service": "web-frontend", "version": "v1.42.0", "approvers": []any{"ben@example.com"}}
	bodies := sentBodies(t, def, input)
	checkBodies(t, def, bodies)
	if !strings.Contains(string(bodies["RequestApproval"]), `"subject":"Deploy web-frontend v1.42.0 to production?"`) {
		t.Errorf("subject not formatted: %s", bodies["RequestApproval"])
	}
	if diff := cmp.Diff([]string{"sqs:SendMessage"}, roleActions(t, tpl, "DeployRole")); diff != "" {
		t.Errorf("role actions (-want +got):\n%s", diff)
	}
}

// The example stack deploys approval.asl.json itself, fills every
// placeholder, and imports the queue the main stack exports.
func TestExampleStack(t *testing.T) {
	dir := filepath.Join(root(t), "deploy", "statemachines")
	raw, err := ProcessTemplate(filepath.Join(dir, "approval-stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	res := raw["Resources"].(map[string]any)
	props := res["ApprovalStateMachine"].(map[string]any)["Properties"].(map[string]any)
	loc, _ := props["DefinitionS3Location"].(string)
	if loc != "approval.asl.json" {
		t.Fatalf("DefinitionS3Location %v: want the local file, for `aws cloudformation package`", props["DefinitionS3Location"])
	}
	asl, _ := readASL(t)
	subs := props["DefinitionSubstitutions"].(map[string]any)
	if diff := cmp.Diff(placeholders(asl), Sorted(subs)); diff != "" {
		t.Errorf("DefinitionSubstitutions vs placeholders (-want +got):\n%s", diff)
	}
	if props["StateMachineType"] != "STANDARD" {
		t.Errorf("type %v: waitForTaskToken needs STANDARD", props["StateMachineType"])
	}

	// Imports name the main stack's exports.
	main, err := ProcessTemplate(filepath.Join(root(t), "deploy", "cloudformation", "approvals.yml"))
	if err != nil {
		t.Fatal(err)
	}
	exports := map[string]bool{}
	for _, o := range main["Outputs"].(map[string]any) {
		if e, ok := o.(map[string]any)["Export"].(map[string]any); ok {
			if m := exportRE.FindStringSubmatch(fmt.Sprint(e["Name"])); m != nil {
				exports[m[1]] = true
			}
		}
	}
	imports := importSuffixes(raw)
	if len(imports) != 2 {
		t.Errorf("imports %v, want the queue URL and ARN", imports)
	}
	for _, i := range imports {
		if !exports[i] {
			t.Errorf("import %q matches no export of the main stack (%v)", i, Sorted(exports))
		}
	}

	role := res["StateMachineRole"].(map[string]any)["Properties"].(map[string]any)
	var actions []string
	for _, p := range role["Policies"].([]any) {
		for _, st := range asList(p.(map[string]any)["PolicyDocument"].(map[string]any)["Statement"]) {
			for _, a := range asList(st.(map[string]any)["Action"]) {
				actions = append(actions, a.(string))
			}
		}
	}
	if diff := cmp.Diff([]string{"sqs:SendMessage"}, actions); diff != "" {
		t.Errorf("state machine role actions (-want +got):\n%s", diff)
	}
}

var exportRE = regexp.MustCompile(`^map\[Fn::Sub:\$\{AWS::StackName\}(-[A-Za-z]+)\]$`)

var importRE = regexp.MustCompile(`Fn::ImportValue:map\[Fn::Sub:\$\{ApprovalsStack\}(-[A-Za-z]+)\]`)

func importSuffixes(raw map[string]any) []string {
	var out []string
	for _, m := range importRE.FindAllStringSubmatch(fmt.Sprint(raw["Resources"]), -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}
