package check

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// OpenTemplate parses a CloudFormation template with goformation, taking
// parameter values from params (else their defaults). References to
// resources, which only exist once deployed, become the strings
// "ref:Name", "getatt:Name.Attribute" and "import:Name", so checks can
// follow them; Fn::If is decided on the template's Conditions.
func OpenTemplate(path string, params map[string]any) (*cloudformation.Template, error) {
	opts := &intrinsics.ProcessorOptions{
		ParameterOverrides: params,
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
			"Ref":             ref,
			"Fn::GetAtt":      getAtt,
			"Fn::ImportValue": importValue,
			"Fn::If":          fnIf,
			"Fn::Sub":         fnSub,
			"Fn::Split":       fnSplit,
		},
	}
	t, err := goformation.OpenWithOptions(path, opts)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return t, nil
}

// ProcessTemplate returns the template as generic JSON-like values with the
// short-form tags (!Ref, !Sub...) in long form and nothing resolved, for
// properties goformation's types cannot hold (a DefinitionS3Location that
// `aws cloudformation package` will replace, say).
func ProcessTemplate(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := intrinsics.ProcessYAML(b, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var out map[string]any
	if err := json.Unmarshal(js, &out); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return out, nil
}

func parameters(template any) map[string]any {
	t, _ := template.(map[string]any)
	p, _ := t["Parameters"].(map[string]any)
	return p
}

func ref(name string, input, template any) any {
	s, ok := input.(string)
	if !ok {
		return nil
	}
	if s == "AWS::Partition" {
		return "aws" // unknown to goformation
	}
	if strings.HasPrefix(s, "AWS::") {
		return intrinsics.Ref(name, input, template)
	}
	if _, isParam := parameters(template)[s]; isParam {
		return intrinsics.Ref(name, input, template)
	}
	return "ref:" + s
}

// subRE matches ${Name}, ${Resource.Attribute} and the literal ${!...}.
var subRE = regexp.MustCompile(`\$\{(!?)([A-Za-z0-9:.]+)\}`)

// fnSub is goformation's Fn::Sub, resolving through ref and getAtt (its own
// calls the default handlers directly).
func fnSub(_ string, input, template any) any {
	src, vars := "", map[string]any{}
	switch v := input.(type) {
	case string:
		src = v
	case []any:
		if len(v) != 2 {
			return nil
		}
		src, _ = v[0].(string)
		vars, _ = v[1].(map[string]any)
	default:
		return nil
	}
	return subRE.ReplaceAllStringFunc(src, func(m string) string {
		g := subRE.FindStringSubmatch(m)
		if g[1] == "!" {
			return "${" + g[2] + "}"
		}
		var val any
		if v, ok := vars[g[2]]; ok {
			val = v
		} else if strings.Contains(g[2], ".") {
			val = getAtt("Fn::GetAtt", g[2], template)
		} else {
			val = ref("Ref", g[2], template)
		}
		if val == nil {
			return ""
		}
		return fmt.Sprint(val)
	})
}

// fnSplit is Fn::Split returning a list Fn::Select can read (goformation's
// returns []string, which its own Fn::Select does not take).
func fnSplit(_ string, input, _ any) any {
	arr, ok := input.([]any)
	if !ok || len(arr) != 2 {
		return nil
	}
	delim, _ := arr[0].(string)
	src, ok := arr[1].(string)
	if !ok {
		return nil
	}
	var out []any
	for _, p := range strings.Split(src, delim) {
		out = append(out, p)
	}
	return out
}

func getAtt(_ string, input, _ any) any {
	switch v := input.(type) {
	case string:
		return "getatt:" + v
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmt.Sprint(p)
		}
		return "getatt:" + strings.Join(parts, ".")
	}
	return nil
}

func importValue(_ string, input, _ any) any {
	return fmt.Sprintf("import:%v", input)
}

func fnIf(_ string, input, template any) any {
	arr, ok := input.([]any)
	if !ok || len(arr) != 3 {
		return nil
	}
	name, _ := arr[0].(string)
	if evalCondition(template, name) {
		return arr[1]
	}
	return arr[2]
}

// evalCondition decides a named condition built from Fn::Equals, Fn::Not,
// Fn::And, Fn::Or, Condition, Ref to parameters and the string functions
// Fn::Join, Fn::Split and Fn::Select, which is all a deployment template's
// conditions need.
func evalCondition(template any, name string) bool {
	t, _ := template.(map[string]any)
	conds, _ := t["Conditions"].(map[string]any)
	return evalExpr(template, conds[name]).(bool)
}

func evalExpr(template, e any) any {
	m, ok := e.(map[string]any)
	if !ok || len(m) != 1 {
		return e
	}
	for k, v := range m {
		args, _ := v.([]any)
		switch k {
		case "Ref":
			return ref(k, v, template)
		case "Condition":
			return evalCondition(template, v.(string))
		case "Fn::Equals":
			return fmt.Sprint(evalExpr(template, args[0])) == fmt.Sprint(evalExpr(template, args[1]))
		case "Fn::Not":
			return !evalExpr(template, args[0]).(bool)
		case "Fn::And":
			for _, a := range args {
				if !evalExpr(template, a).(bool) {
					return false
				}
			}
			return true
		case "Fn::Or":
			for _, a := range args {
				if evalExpr(template, a).(bool) {
					return true
				}
			}
			return false
		case "Fn::Join":
			var parts []string
			for _, p := range args[1].([]any) {
				parts = append(parts, fmt.Sprint(evalExpr(template, p)))
			}
			return strings.Join(parts, args[0].(string))
		case "Fn::Split":
			var out []any
			for _, p := range strings.Split(fmt.Sprint(evalExpr(template, args[1])), args[0].(string)) {
				out = append(out, p)
			}
			return out
		case "Fn::Select":
			var i int
			fmt.Sscan(fmt.Sprint(args[0]), &i)
			list, _ := evalExpr(template, args[1]).([]any)
			if i < 0 || i >= len(list) {
				// CloudFormation fails the stack here.
				panic(fmt.Sprintf("Fn::Select index %d out of %v", i, list))
			}
			return list[i]
		}
	}
	return e
}
