package main

import (
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sfn-approvals/sfn-approvals"

// shipped are the commands the image holds (deploy/Dockerfile).
var shipped = []string{module + "/cmd/worker", module + "/cmd/redeemer", module + "/cmd/approvals"}

// development are the packages of the test and development harness, with
// their subpackages: none of them may reach the image. Nor may any package
// of this module named *test (kumotest, albtest: test helpers by
// convention).
var development = []string{
	module + "/cmd/approvals-dev",
	module + "/e2e",
	module + "/internal/bench",
	module + "/internal/faultproxy",
	module + "/internal/kumo",
	module + "/internal/soak",
	module + "/internal/stack",
	module + "/internal/testio",
	"testing",
	"net/http/httptest",
}

func isDevelopment(pkg string) bool {
	if strings.HasPrefix(pkg, module+"/") && strings.HasSuffix(path.Base(pkg), "test") {
		return true
	}
	for _, dev := range development {
		if pkg == dev || strings.HasPrefix(pkg, dev+"/") {
			return true
		}
	}
	return false
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
			if isDevelopment(dep) {
				t.Errorf("%s links %s", cmd, dep)
			}
		}
	}
}

func TestIsDevelopment(t *testing.T) {
	for pkg, want := range map[string]bool{
		module + "/internal/kumo":        true,
		module + "/internal/kumotest":    true,
		module + "/internal/bench/micro": true,
		module + "/identity/albtest":     true,
		"net/http/httptest":              true,
		"testing":                        true,
		module + "/internal/awsx":        false,
		module + "/internal/stacked":     false,
		module + "/worker":               false,
		"net/http":                       false,
	} {
		if got := isDevelopment(pkg); got != want {
			t.Errorf("isDevelopment(%s) = %v, want %v", pkg, got, want)
		}
	}
}
