package check

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The JSONata form of the example is checked against the JSONPath one:
// kumo runs only JSONPath, so the JSONata definition is evaluated here,
// with the few expressions it uses, and must send the same requests.

func readDefinition(t *testing.T, file string) (raw string, def definition) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "deploy", "statemachines", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &def); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return string(b), def
}

// shape is what both forms of one state must agree on: everything but the
// way data moves.
type shape struct {
	Type, Resource, Next string
	TimeoutSeconds       *int
	Catch                [][]string // ErrorEquals, then Next
}

func shapes(def definition) map[string]shape {
	out := map[string]shape{}
	for name, s := range def.States {
		sh := shape{Type: s.Type, Resource: s.Resource, Next: s.Next, TimeoutSeconds: s.TimeoutSeconds}
		for _, c := range s.Catch {
			sh.Catch = append(sh.Catch, append(append([]string{}, c.ErrorEquals...), c.Next))
		}
		out[name] = sh
	}
	return out
}

func TestJSONataStateMachineShape(t *testing.T) {
	raw, def := readDefinition(t, "approval.jsonata.asl.json")
	if def.QueryLanguage != "JSONata" {
		t.Fatalf("QueryLanguage %q, want JSONata", def.QueryLanguage)
	}
	pathRaw, pathDef := readASL(t)
	if diff := cmp.Diff(placeholders(pathRaw), placeholders(raw)); diff != "" {
		t.Errorf("placeholders (-JSONPath +JSONata):\n%s", diff)
	}
	checkGraph(t, def)
	if diff := cmp.Diff(shapes(pathDef), shapes(def)); diff != "" {
		t.Errorf("states (-JSONPath +JSONata):\n%s", diff)
	}
	for name, s := range def.States {
		if s.Parameters != nil || s.ResultPath != nil {
			t.Errorf("state %s uses JSONPath fields (Parameters, ResultPath) in a JSONata definition", name)
		}
	}
}

// For the example input, every SQS state of the JSONata form sends what the
// JSONPath form sends, along each ending. The one difference is on purpose:
// the rejection's cause, a JSON string from the redeemer, is parsed.
func TestJSONataBodiesMatchJSONPath(t *testing.T) {
	_, pathDef := readASL(t)
	_, def := readDefinition(t, "approval.jsonata.asl.json")
	input := sampleInput(t)
	want := sentBodies(t, pathDef, input)
	got := jsonataBodies(t, def, input)
	if diff := cmp.Diff(Sorted(want), Sorted(got)); diff != "" {
		t.Fatalf("states sending messages (-JSONPath +JSONata):\n%s", diff)
	}
	checkBodies(t, def, got)
	for name := range want {
		var w, g map[string]any
		if err := json.Unmarshal(want[name], &w); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got[name], &g); err != nil {
			t.Fatal(err)
		}
		if name == "NotifyRejected" {
			data := w["data"].(map[string]any)
			var cause any
			if err := json.Unmarshal([]byte(data["cause"].(string)), &cause); err != nil {
				t.Fatalf("the JSONPath rejection's cause is not JSON: %v", err)
			}
			data["cause"] = cause
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("state %s body (-JSONPath +JSONata):\n%s", name, diff)
		}
	}
	// The requester hears who rejected: the parsed cause holds the decision.
	var n struct{ Data map[string]any }
	if err := json.Unmarshal(got["NotifyRejected"], &n); err != nil {
		t.Fatal(err)
	}
	if c, _ := n.Data["cause"].(map[string]any); c["decision"] == nil {
		t.Errorf("rejected notification: cause %v has no decision", n.Data["cause"])
	}
}

// jsonataBodies is sentBodies for a JSONata definition: each state's
// Arguments are evaluated against its input, its result (or a Catch's error
// output) goes through Assign and Output to the next state.
func jsonataBodies(t *testing.T, def definition, input any) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var visit func(name string, input any, vars map[string]any)
	visit = func(name string, input any, vars map[string]any) {
		if _, done := out[name]; done {
			return
		}
		s := def.States[name]
		if s.Type != "Task" {
			return
		}
		if s.Resource != sendMessage && s.Resource != waitForToken {
			t.Fatalf("state %s: unexpected resource %s", name, s.Resource)
		}
		env := &jsonataEnv{states: map[string]any{
			"input":   input,
			"context": map[string]any{"Task": map[string]any{"Token": sampleToken}},
		}, vars: vars}
		body, err := env.template(s.Arguments["MessageBody"])
		if err != nil {
			t.Fatalf("state %s: %v", name, err)
		}
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
		// leave moves on with result (or an error output) in $states.
		leave := func(key string, result any, assign map[string]any, output any, next string) {
			env := &jsonataEnv{states: maps.Clone(env.states), vars: vars}
			env.states[key] = result
			// Assignments all see the variables as they were before the
			// state, and take effect for the next one.
			nextVars := maps.Clone(vars)
			for k, v := range assign {
				r, err := env.template(v)
				if err != nil {
					t.Fatalf("state %s: Assign %s: %v", name, k, err)
				}
				nextVars[k] = r
			}
			nextInput := result
			if output != nil {
				if nextInput, err = env.template(output); err != nil {
					t.Fatalf("state %s: Output: %v", name, err)
				}
			}
			visit(next, nextInput, nextVars)
		}
		if s.Resource != waitForToken {
			leave("result", map[string]any{"MessageId": "m-1"}, s.Assign, s.Output, s.Next)
			return
		}
		success, cause := decisionOf(t, body.(map[string]any))
		leave("result", success, s.Assign, s.Output, s.Next)
		for _, c := range s.Catch {
			leave("errorOutput", map[string]any{"Error": c.ErrorEquals[0], "Cause": cause}, c.Assign, c.Output, c.Next)
		}
	}
	visit(def.StartAt, input, map[string]any{})
	return out
}

// jsonataEnv evaluates the subset of JSONata the examples use: paths from
// $states and from variables, string, object and array literals, and the
// functions $merge and $parse. Anything else is an error, so a definition
// that grows past the subset fails here rather than being misread.
type jsonataEnv struct {
	states map[string]any
	vars   map[string]any
}

// template evaluates every "{% ... %}" string inside v.
func (e *jsonataEnv) template(v any) (any, error) {
	switch v := v.(type) {
	case string:
		expr, ok := strings.CutPrefix(v, "{%")
		if !ok {
			return v, nil
		}
		expr, ok = strings.CutSuffix(expr, "%}")
		if !ok {
			return nil, fmt.Errorf("unterminated expression %q", v)
		}
		p := &jsonataParser{src: expr, env: e}
		r, err := p.expr()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v, err)
		}
		if p.skip(); p.pos != len(p.src) {
			return nil, fmt.Errorf("%s: unsupported from %q", v, p.src[p.pos:])
		}
		return r, nil
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			r, err := e.template(x)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			r, err := e.template(x)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

type jsonataParser struct {
	src string
	pos int
	env *jsonataEnv
}

func (p *jsonataParser) skip() {
	for p.pos < len(p.src) && strings.ContainsRune(" \t\n", rune(p.src[p.pos])) {
		p.pos++
	}
}

func (p *jsonataParser) peek() byte {
	p.skip()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *jsonataParser) expect(c byte) error {
	if p.peek() != c {
		return fmt.Errorf("want %q at %d", c, p.pos)
	}
	p.pos++
	return nil
}

func (p *jsonataParser) ident() string {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			break
		}
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *jsonataParser) expr() (any, error) {
	switch c := p.peek(); c {
	case '\'', '"':
		return p.str()
	case '[':
		p.pos++
		var out []any
		for p.peek() != ']' {
			v, err := p.expr()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			if p.peek() == ',' {
				p.pos++
			}
		}
		p.pos++
		return out, nil
	case '{':
		p.pos++
		out := map[string]any{}
		for p.peek() != '}' {
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			if err := p.expect(':'); err != nil {
				return nil, err
			}
			v, err := p.expr()
			if err != nil {
				return nil, err
			}
			out[k] = v
			if p.peek() == ',' {
				p.pos++
			}
		}
		p.pos++
		return out, nil
	case '$':
		p.pos++
		name := p.ident()
		if p.peek() == '(' {
			return p.call(name)
		}
		var cur any
		switch v, ok := p.env.vars[name]; {
		case name == "states":
			cur = p.env.states
		case ok:
			cur = v
		default:
			return nil, fmt.Errorf("no variable $%s", name)
		}
		for p.pos < len(p.src) && p.src[p.pos] == '.' {
			p.pos++
			f := p.ident()
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("$%s: .%s of a non-object", name, f)
			}
			// Step Functions fails the state (States.QueryEvaluationError)
			// when a field is missing; so does the check.
			if cur, ok = m[f]; !ok {
				return nil, fmt.Errorf("$%s: no field %q", name, f)
			}
		}
		return cur, nil
	}
	return nil, fmt.Errorf("unsupported at %q", p.src[p.pos:])
}

func (p *jsonataParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", fmt.Errorf("want a string at %d", p.pos)
	}
	end := strings.IndexByte(p.src[p.pos+1:], q)
	if end < 0 || strings.Contains(p.src[p.pos+1:p.pos+1+end], `\`) {
		return "", fmt.Errorf("unsupported string at %d", p.pos)
	}
	s := p.src[p.pos+1 : p.pos+1+end]
	p.pos += end + 2
	return s, nil
}

func (p *jsonataParser) call(name string) (any, error) {
	p.pos++ // (
	var args []any
	for p.peek() != ')' {
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		args = append(args, v)
		if p.peek() == ',' {
			p.pos++
		}
	}
	p.pos++
	switch {
	case name == "parse" && len(args) == 1:
		s, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("$parse of %T", args[0])
		}
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("$parse: %w", err)
		}
		return v, nil
	case name == "merge" && len(args) == 1:
		objs, ok := args[0].([]any)
		if !ok {
			return nil, fmt.Errorf("$merge of %T", args[0])
		}
		out := map[string]any{}
		for _, o := range objs {
			m, ok := o.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("$merge of a %T", o)
			}
			maps.Copy(out, m)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported function $%s/%d", name, len(args))
}
