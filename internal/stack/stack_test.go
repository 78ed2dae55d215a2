package stack

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
)

// variantDiff applies variant (ChannelDefinition, QuorumDefinition) to the
// example state machine and returns how the result differs from the
// example with edit applied to its MessageBody by hand: "" when the variant
// changes that and nothing else.
func variantDiff(t *testing.T, variant func(string) (string, error), edit func(body map[string]any)) string {
	t.Helper()
	root, err := kumo.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	def, err := Definition(root, "https://sqs.example/q")
	if err != nil {
		t.Fatal(err)
	}
	got, err := variant(def)
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	if err := json.Unmarshal([]byte(def), &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(got), &after); err != nil {
		t.Fatal(err)
	}
	edit(before["States"].(map[string]any)["RequestApproval"].(map[string]any)["Parameters"].(map[string]any)["MessageBody"].(map[string]any))
	return cmp.Diff(before, after)
}
