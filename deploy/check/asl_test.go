package check

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// aslValidator is asl-validator as installed from deploy/cdk's lock file
// (make test-deploy runs npm ci there).
func aslValidator(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(root(t), "deploy", "cdk", "node_modules", ".bin", "asl-validator")
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("asl-validator is not installed (make test-deploy runs npm ci in deploy/cdk): %v", err)
	}
	return bin
}

// Both example definitions pass asl-validator: the ASL schema for each
// query language (JSONata fields only in a JSONata state, and its
// expressions parse), and JSONPath paths.
func TestStateMachinesValidate(t *testing.T) {
	bin := aslValidator(t)
	for _, f := range []string{"approval.asl.json", "approval.jsonata.asl.json"} {
		t.Run(f, func(t *testing.T) {
			out, err := exec.Command(bin, "--json-path", filepath.Join(root(t), "deploy", "statemachines", f)).CombinedOutput()
			if err != nil {
				t.Errorf("asl-validator: %v\n%s", err, out)
			}
		})
	}
}
