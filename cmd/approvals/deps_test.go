package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sfn-approvals/sfn-approvals"

// shipped are the commands the image holds (deploy/Dockerfile).
var shipped = []string{module + "/cmd/worker", module + "/cmd/redeemer", module + "/cmd/approvals"}

// development are the packages of the test and development harness, with
// their subpackages: none of them may reach the image.
var development = []string{
	module + "/cmd/approvals-dev",
	module + "/e2e",
	module + "/internal/bench",
	module + "/internal/faultproxy",
	module + "/internal/kumo",
	module + "/internal/kumotest",
	module + "/internal/soak",
	module + "/internal/stack",
	"testing",
	"net/http/httptest",
}

func TestShippedCommandsLinkNoDevelopmentPackage(t *testing.T) {
	for _, cmd := range shipped {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", cmd).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", cmd, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, cmd) {
			t.Fatalf("go list -deps %s lacks the command itself: %v", cmd, deps)
		}
		for _, dep := range deps {
			for _, dev := range development {
				if dep == dev || strings.HasPrefix(dep, dev+"/") {
					t.Errorf("%s links %s", cmd, dep)
				}
			}
		}
	}
}
