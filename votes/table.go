package votes

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Table is the part of the DynamoDB client the votes table needs;
// *dynamodb.Client satisfies it.
type Table interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

var _ Table = (*dynamodb.Client)(nil)

// ErrNoTable says the configured votes table does not exist (in this account
// and region).
var ErrNoTable = errors.New("no such table")

// conditionFailed reports whether a conditional write lost: the item was not
// in the state the write required. That is an answer, not a failure: the
// caller reads the table again and acts on what it finds.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// tableErr adds the table's name to err, and ErrNoTable when it is missing.
func (s *Store) tableErr(op string, err error) error {
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("%s: votes table %q: %w: %w", op, s.name, ErrNoTable, err)
	}
	return fmt.Errorf("%s: votes table %q: %w", op, s.name, err)
}

// Check verifies that the table exists with the key schema this package
// writes (pk and sk, strings), so a service can refuse to start without it.
func (s *Store) Check(ctx context.Context) error {
	out, err := s.table.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.name)})
	if err != nil {
		return s.tableErr("describe", err)
	}
	if out.Table == nil {
		return fmt.Errorf("describe: votes table %q: no description", s.name)
	}
	attrTypes := map[string]types.ScalarAttributeType{}
	for _, d := range out.Table.AttributeDefinitions {
		attrTypes[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	want := map[types.KeyType]string{types.KeyTypeHash: attrPK, types.KeyTypeRange: attrSK}
	got := map[types.KeyType]string{}
	for _, k := range out.Table.KeySchema {
		got[k.KeyType] = aws.ToString(k.AttributeName)
	}
	var problems []string
	for kt, name := range want {
		if got[kt] != name || attrTypes[name] != types.ScalarAttributeTypeS {
			problems = append(problems, fmt.Sprintf("%s key must be %q (string)", strings.ToLower(string(kt)), name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("votes table %q: %s", s.name, strings.Join(problems, "; "))
	}
	return nil
}

// load reads every item of a request with one strongly consistent Query:
// a vote written a moment ago by another redeemer must count.
func (s *Store) load(ctx context.Context, pk string) (state, error) {
	expr, err := expression.NewBuilder().WithKeyCondition(expression.Key(attrPK).Equal(expression.Value(pk))).Build()
	if err != nil {
		return state{}, fmt.Errorf("build query: %w", err)
	}
	p := dynamodb.NewQueryPaginator(s.table, &dynamodb.QueryInput{
		TableName:                 aws.String(s.name),
		KeyConditionExpression:    expr.KeyCondition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ConsistentRead:            aws.Bool(true),
	})
	st := state{votes: map[string]voteItem{}}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return state{}, s.tableErr("query", err)
		}
		for _, it := range page.Items {
			sk, _ := it[attrSK].(*types.AttributeValueMemberS)
			switch {
			case sk == nil:
				continue
			case sk.Value == skCompletion:
				var c completionItem
				if err := unmarshal(it, &c); err != nil {
					return state{}, fmt.Errorf("read completion record: %w", err)
				}
				st.completion = &c
			case strings.HasPrefix(sk.Value, skVotePrefix):
				var v voteItem
				if err := unmarshal(it, &v); err != nil {
					return state{}, fmt.Errorf("read vote: %w", err)
				}
				st.votes[approverKey(v.Decision.Approver)] = v
			}
		}
	}
	return st, nil
}

// putNew writes an item that must not exist yet. A lost race answers
// conditionFailed.
func (s *Store) putNew(ctx context.Context, item any) error {
	av, err := marshal(item)
	if err != nil {
		return fmt.Errorf("encode item: %w", err)
	}
	expr, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name(attrPK))).Build()
	if err != nil {
		return fmt.Errorf("build condition: %w", err)
	}
	_, err = s.table.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.name),
		Item:                      av,
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	if conditionFailed(err) {
		s.onLost()
	} else if err != nil {
		return s.tableErr("put", err)
	}
	return err
}

// updateCompletion applies upd to the completion record if it is still
// IN_PROGRESS with the lease the caller last saw.
func (s *Store) updateCompletion(ctx context.Context, pk string, seenLease int64, upd expression.UpdateBuilder) error {
	cond := expression.Name("status").Equal(expression.Value(statusInProgress)).
		And(expression.Name("leaseUntil").Equal(expression.Value(seenLease)))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return fmt.Errorf("build update: %w", err)
	}
	key, err := marshal(struct {
		PK string `json:"pk"`
		SK string `json:"sk"`
	}{pk, skCompletion})
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	_, err = s.table.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.name),
		Key:                       key,
		ConditionExpression:       expr.Condition(),
		UpdateExpression:          expr.Update(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	if conditionFailed(err) {
		s.onLost()
	} else if err != nil {
		return s.tableErr("update", err)
	}
	return err
}
