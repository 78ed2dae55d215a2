package votes

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
)

// fakeTable is an in-memory DynamoDB table with the semantics this package
// relies on: items by (pk, sk), condition expressions evaluated atomically
// with the write, ConditionalCheckFailedException when they fail,
// ResourceNotFoundException for another table's name. It understands the
// expression syntax feature/dynamodb/expression produces for comparisons,
// attribute_exists / attribute_not_exists, AND / OR / NOT and SET; anything
// else is a ValidationException, as a typo would be for DynamoDB.
type fakeTable struct {
	name string

	mu    sync.Mutex
	items map[[2]string]map[string]types.AttributeValue
	// fail, when set, is asked before each write (op "PutItem" or
	// "UpdateItem", the item's sk); an error it returns is the call's
	// answer and nothing is written: a crashed or cut-off caller.
	fail func(op, sk string) error
	// beforeQuery and afterQuery, when set, run before each Query reads
	// the table and after it has read it, so a test can line up concurrent
	// callers.
	beforeQuery, afterQuery func()
	writes                  int
}

var _ Table = (*fakeTable)(nil)

func newFakeTable(name string) *fakeTable {
	return &fakeTable{name: name, items: map[[2]string]map[string]types.AttributeValue{}}
}

func (f *fakeTable) checkName(name *string) error {
	if aws.ToString(name) != f.name {
		return &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	return nil
}

func keyOf(item map[string]types.AttributeValue) ([2]string, error) {
	pk, ok1 := item[attrPK].(*types.AttributeValueMemberS)
	sk, ok2 := item[attrSK].(*types.AttributeValueMemberS)
	if !ok1 || !ok2 {
		return [2]string{}, validation("The provided key element does not match the schema")
	}
	return [2]string{pk.Value, sk.Value}, nil
}

func validation(msg string) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: msg, Fault: smithy.FaultClient}
}

func (f *fakeTable) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkName(in.TableName); err != nil {
		return nil, err
	}
	k, err := keyOf(in.Item)
	if err != nil {
		return nil, err
	}
	if f.fail != nil {
		if err := f.fail("PutItem", k[1]); err != nil {
			return nil, err
		}
	}
	ok, err := evalCondition(aws.ToString(in.ConditionExpression), f.items[k], in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	}
	f.items[k] = copyItem(in.Item)
	f.writes++
	return &dynamodb.PutItemOutput{}, nil
}

func (f *fakeTable) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkName(in.TableName); err != nil {
		return nil, err
	}
	k, err := keyOf(in.Key)
	if err != nil {
		return nil, err
	}
	if f.fail != nil {
		if err := f.fail("UpdateItem", k[1]); err != nil {
			return nil, err
		}
	}
	old := f.items[k]
	ok, err := evalCondition(aws.ToString(in.ConditionExpression), old, in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	}
	item := copyItem(old)
	if item == nil {
		item = copyItem(in.Key)
	}
	if err := applySet(item, aws.ToString(in.UpdateExpression), in.ExpressionAttributeNames, in.ExpressionAttributeValues); err != nil {
		return nil, err
	}
	f.items[k] = item
	f.writes++
	return &dynamodb.UpdateItemOutput{}, nil
}

func (f *fakeTable) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if f.beforeQuery != nil {
		f.beforeQuery()
	}
	if f.afterQuery != nil {
		defer f.afterQuery()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkName(in.TableName); err != nil {
		return nil, err
	}
	// Key conditions here are "pk = value" only.
	name, val, err := comparisonOperands(aws.ToString(in.KeyConditionExpression), "=", in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	if err != nil {
		return nil, err
	}
	pk, ok := val.(*types.AttributeValueMemberS)
	if name != attrPK || !ok {
		return nil, validation("Query condition missed key schema element")
	}
	var keys [][2]string
	for k := range f.items {
		if k[0] == pk.Value {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][1] < keys[j][1] })
	out := &dynamodb.QueryOutput{}
	for _, k := range keys {
		out.Items = append(out.Items, copyItem(f.items[k]))
	}
	out.Count = int32(len(out.Items))
	return out, nil
}

func (f *fakeTable) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	if err := f.checkName(in.TableName); err != nil {
		return nil, err
	}
	return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{
		TableName: aws.String(f.name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
	}}, nil
}

// item returns a copy of one item, nil when there is none.
func (f *fakeTable) item(pk, sk string) map[string]types.AttributeValue {
	f.mu.Lock()
	defer f.mu.Unlock()
	return copyItem(f.items[[2]string{pk, sk}])
}

// sks lists the sort keys stored under pk.
func (f *fakeTable) sks(pk string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.items {
		if k[0] == pk {
			out = append(out, k[1])
		}
	}
	sort.Strings(out)
	return out
}

func copyItem(m map[string]types.AttributeValue) map[string]types.AttributeValue {
	if m == nil {
		return nil
	}
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		out[k] = v // values are never mutated in place
	}
	return out
}

// evalCondition evaluates a condition expression against item (nil: none).
func evalCondition(expr string, item map[string]types.AttributeValue, names map[string]string, values map[string]types.AttributeValue) (bool, error) {
	if strings.TrimSpace(expr) == "" {
		return true, nil
	}
	p := &condParser{toks: tokenize(expr), item: item, names: names, values: values}
	v, err := p.or()
	if err != nil {
		return false, err
	}
	if p.pos != len(p.toks) {
		return false, validation("Invalid ConditionExpression: unexpected " + p.toks[p.pos])
	}
	return v, nil
}

func tokenize(s string) []string {
	var toks []string
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\n' || c == '\t':
			i++
		case c == '(' || c == ')' || c == ',' || c == '=':
			toks = append(toks, string(c))
			i++
		case c == '<' || c == '>':
			if i+1 < len(s) && (s[i+1] == '=' || (c == '<' && s[i+1] == '>')) {
				toks = append(toks, s[i:i+2])
				i += 2
			} else {
				toks = append(toks, string(c))
				i++
			}
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \n\t(),=<>", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

type condParser struct {
	toks   []string
	pos    int
	item   map[string]types.AttributeValue
	names  map[string]string
	values map[string]types.AttributeValue
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *condParser) next() string { t := p.peek(); p.pos++; return t }

func (p *condParser) expect(t string) error {
	if got := p.next(); got != t {
		return validation(fmt.Sprintf("Invalid ConditionExpression: want %q, got %q", t, got))
	}
	return nil
}

func (p *condParser) or() (bool, error) {
	v, err := p.and()
	for err == nil && p.peek() == "OR" {
		p.next()
		var r bool
		r, err = p.and()
		v = v || r
	}
	return v, err
}

func (p *condParser) and() (bool, error) {
	v, err := p.not()
	for err == nil && p.peek() == "AND" {
		p.next()
		var r bool
		r, err = p.not()
		v = v && r
	}
	return v, err
}

func (p *condParser) not() (bool, error) {
	if p.peek() == "NOT" {
		p.next()
		v, err := p.primary()
		return !v, err
	}
	return p.primary()
}

func (p *condParser) primary() (bool, error) {
	switch t := p.peek(); t {
	case "(":
		p.next()
		v, err := p.or()
		if err != nil {
			return false, err
		}
		return v, p.expect(")")
	case "attribute_exists", "attribute_not_exists":
		p.next()
		if err := p.expect("("); err != nil {
			return false, err
		}
		name, err := p.name(p.next())
		if err != nil {
			return false, err
		}
		if err := p.expect(")"); err != nil {
			return false, err
		}
		_, exists := p.item[name]
		return exists == (t == "attribute_exists"), nil
	}
	name, err := p.name(p.next())
	if err != nil {
		return false, err
	}
	op := p.next()
	val, ok := p.values[p.next()]
	if !ok {
		return false, validation("Invalid ConditionExpression: undefined value")
	}
	return compare(p.item[name], op, val)
}

func (p *condParser) name(tok string) (string, error) {
	if n, ok := p.names[tok]; ok {
		return n, nil
	}
	return "", validation(fmt.Sprintf("Invalid expression: undefined attribute name %q", tok))
}

// compare is DynamoDB's comparison: a missing attribute or one of another
// type compares false (and <> true).
func compare(have types.AttributeValue, op string, want types.AttributeValue) (bool, error) {
	var c int
	switch w := want.(type) {
	case *types.AttributeValueMemberS:
		h, ok := have.(*types.AttributeValueMemberS)
		if !ok {
			return op == "<>", nil
		}
		c = strings.Compare(h.Value, w.Value)
	case *types.AttributeValueMemberN:
		h, ok := have.(*types.AttributeValueMemberN)
		if !ok {
			return op == "<>", nil
		}
		a, err1 := strconv.ParseFloat(h.Value, 64)
		b, err2 := strconv.ParseFloat(w.Value, 64)
		if err1 != nil || err2 != nil {
			return false, validation("bad number")
		}
		switch {
		case a < b:
			c = -1
		case a > b:
			c = 1
		}
	default:
		return false, validation("the fake compares strings and numbers only")
	}
	switch op {
	case "=":
		return c == 0, nil
	case "<>":
		return c != 0, nil
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	case ">=":
		return c >= 0, nil
	}
	return false, validation("Invalid ConditionExpression: operator " + op)
}

// comparisonOperands parses "#n OP :v" into the attribute name and value.
func comparisonOperands(expr, op string, names map[string]string, values map[string]types.AttributeValue) (string, types.AttributeValue, error) {
	toks := tokenize(expr)
	if len(toks) != 3 || toks[1] != op {
		return "", nil, validation("Invalid KeyConditionExpression: " + expr)
	}
	n, ok1 := names[toks[0]]
	v, ok2 := values[toks[2]]
	if !ok1 || !ok2 {
		return "", nil, validation("Invalid KeyConditionExpression: undefined placeholder")
	}
	return n, v, nil
}

// applySet applies "SET #a = :v, #b = :w".
func applySet(item map[string]types.AttributeValue, expr string, names map[string]string, values map[string]types.AttributeValue) error {
	toks := tokenize(expr)
	if len(toks) == 0 || toks[0] != "SET" {
		return validation("Invalid UpdateExpression: the fake knows SET only: " + expr)
	}
	toks = toks[1:]
	for len(toks) > 0 {
		if len(toks) < 3 || toks[1] != "=" {
			return validation("Invalid UpdateExpression: " + expr)
		}
		n, ok1 := names[toks[0]]
		v, ok2 := values[toks[2]]
		if !ok1 || !ok2 {
			return validation("Invalid UpdateExpression: undefined placeholder")
		}
		if n == attrPK || n == attrSK {
			return validation("Cannot update attribute " + n + ". This attribute is part of the key")
		}
		item[n] = v
		toks = toks[3:]
		if len(toks) > 0 {
			if toks[0] != "," {
				return validation("Invalid UpdateExpression: " + expr)
			}
			toks = toks[1:]
		}
	}
	return nil
}

// fakeTask is Step Functions' task-token API for one or more open tasks: a
// token can be answered once; after that, or once timed out, every call on
// it is TaskTimedOut, as Step Functions says.
type fakeTask struct {
	mu     sync.Mutex
	closed map[string]bool
	calls  []taskCall // the answers Step Functions took
	// attempts counts every call, refused ones included.
	attempts int
	// fail, when set, is asked before each call; an error it returns is
	// the call's answer and the task stays open.
	fail func(op string) error
}

type taskCall struct {
	Op, Token, Output, Error, Cause string
}

var _ Task = (*fakeTask)(nil)

func newFakeTask() *fakeTask { return &fakeTask{closed: map[string]bool{}} }

func (f *fakeTask) call(op string, c taskCall, closes bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if f.fail != nil {
		if err := f.fail(op); err != nil {
			return err
		}
	}
	if f.closed[c.Token] {
		return &sfntypes.TaskTimedOut{Message: aws.String("Task Timed Out")}
	}
	c.Op = op
	f.calls = append(f.calls, c)
	if closes {
		f.closed[c.Token] = true
	}
	return nil
}

func (f *fakeTask) Succeed(_ context.Context, token, output string) error {
	return f.call("SendTaskSuccess", taskCall{Token: token, Output: output}, true)
}

func (f *fakeTask) Fail(_ context.Context, token, errorName, cause string) error {
	return f.call("SendTaskFailure", taskCall{Token: token, Error: errorName, Cause: cause}, true)
}

func (f *fakeTask) Heartbeat(_ context.Context, token string) error {
	return f.call("SendTaskHeartbeat", taskCall{Token: token}, false)
}

// timeOut ends the task as Step Functions does when TimeoutSeconds pass.
func (f *fakeTask) timeOut(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed[token] = true
}

func (f *fakeTask) recorded() []taskCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]taskCall(nil), f.calls...)
}

// The SFN adapter is checked against the same interface as the SDK client.
var _ SFNAPI = (*sfn.Client)(nil)
