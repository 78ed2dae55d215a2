package votes

import (
	"crypto/sha256"
	"encoding/base64"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

// Attribute names the table's schema depends on.
const (
	attrPK  = "pk"
	attrSK  = "sk"
	attrTTL = "ttl"
)

const (
	skVotePrefix = "vote#"
	skCompletion = "completion"

	statusInProgress = "IN_PROGRESS"
	statusCompleted  = "COMPLETED"
)

// Retention is how long items outlive the links of their request: long enough
// for a gone page to name who decided after the last link has expired.
const Retention = 7 * 24 * time.Hour

// RequestKey is the partition key of the request a task token belongs to.
// The token grants completing the task, so only its hash is stored.
func RequestKey(taskToken string) string {
	sum := sha256.Sum256([]byte(taskToken))
	return "req#" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// approverKey makes addresses that differ only in case one voter.
func approverKey(approver string) string {
	return strings.ToLower(approver)
}

// voteItem is one approving vote that did not decide.
type voteItem struct {
	PK string `json:"pk"`
	SK string `json:"sk"`
	// Seq orders votes (Unix nanoseconds when cast); approver breaks ties.
	Seq      int64             `json:"seq"`
	Decision approval.Decision `json:"decision"`
	// ActionOutput is the action's own output object, so that whoever
	// finds this vote completing a quorum can build the task's output.
	ActionOutput string `json:"actionOutput,omitempty"`
	TTL          int64  `json:"ttl"`
}

// completionItem is the decision of a request and the answer Step Functions
// gets for it.
type completionItem struct {
	PK     string `json:"pk"`
	SK     string `json:"sk"`
	Status string `json:"status"`
	// LeaseUntil (Unix milliseconds): until then an IN_PROGRESS record
	// belongs to the caller that wrote it; after it, to whoever comes next.
	LeaseUntil int64               `json:"leaseUntil"`
	Type       approval.ActionType `json:"type"`
	Decision   approval.Decision   `json:"decision"`
	Decisions  []approval.Decision `json:"decisions"`
	// The answer: Output for SendTaskSuccess, Error and Cause for
	// SendTaskFailure.
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
	Cause  string `json:"cause,omitempty"`
	// Result is Step Functions' error code when it refused the answer
	// (TaskTimedOut: the task had ended); empty when it took it.
	Result      string `json:"result,omitempty"`
	CompletedAt string `json:"completedAt,omitempty"`
	TTL         int64  `json:"ttl"`
}

// state is everything the table holds for one request.
type state struct {
	votes      map[string]voteItem // by approverKey
	completion *completionItem
}

// approvals returns the request's approving votes in the order they were cast.
func (st state) approvals() []voteItem {
	out := make([]voteItem, 0, len(st.votes))
	for _, v := range st.votes {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Seq != out[j].Seq {
			return out[i].Seq < out[j].Seq
		}
		return approverKey(out[i].Decision.Approver) < approverKey(out[j].Decision.Approver)
	})
	return out
}

func decisionsOf(vs []voteItem) []approval.Decision {
	out := make([]approval.Decision, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Decision)
	}
	return out
}

// The table's items use the same field names as the JSON the state machine
// sees, so a decision reads the same in both.
func withJSONTags(o *attributevalue.EncoderOptions) { o.TagKey = "json" }
func fromJSONTags(o *attributevalue.DecoderOptions) { o.TagKey = "json" }
func marshal(v any) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMapWithOptions(v, withJSONTags)
}
func unmarshal(m map[string]types.AttributeValue, v any) error {
	return attributevalue.UnmarshalMapWithOptions(m, v, fromJSONTags)
}
