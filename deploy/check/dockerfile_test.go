package check

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// shippedCommands are the commands the image holds; cmd/approvals tests that
// they link no development package.
var shippedCommands = []string{"./cmd/worker", "./cmd/redeemer", "./cmd/approvals"}

// The image cannot be built here (no container engine), so its recipe is
// read instead: static binaries for every command ECS runs, a non-root
// final stage, and a build context that holds every package they need.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(b), " ")
	var stages [][]string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %s", line)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], line)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(stages))
	}
	// Every base image is pinned by digest, with its tag beside it for the
	// reader, so a rebuild of one commit starts from the same bytes.
	for _, st := range stages {
		image := baseImage(st[0])
		if !pinnedRE.MatchString(image) {
			t.Errorf("base image %s is not pinned as NAME:TAG@sha256:DIGEST", image)
		}
	}

	build := strings.Join(stages[0], "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath"} {
		if !strings.Contains(build, want) {
			t.Errorf("build stage lacks %s", want)
		}
	}
	// The image builds the shipped commands by name, and nothing else: not
	// ./cmd/..., which would bring the development harness (approvals-dev).
	var built []string
	for _, line := range stages[0] {
		if _, after, ok := strings.Cut(line, "go build "); ok {
			built = append(built, regexp.MustCompile(`\./\S*`).FindAllString(after, -1)...)
		}
	}
	if !slices.Equal(built, shippedCommands) {
		t.Errorf("build stage builds %v, want %v", built, shippedCommands)
	}
	if !regexp.MustCompile(`(?m)^FROM (--platform=\S+ )?golang:1\.26\b`).MatchString(build) {
		t.Errorf("build stage is not golang:1.26: %s", stages[0][0])
	}

	final := stages[len(stages)-1]
	var user string
	var copied []string
	for _, line := range final {
		fields := strings.Fields(line)
		switch strings.ToUpper(fields[0]) {
		case "USER":
			user = fields[1]
		case "COPY":
			copied = append(copied, fields[1:len(fields)-1]...)
		case "ENTRYPOINT":
			t.Errorf("ENTRYPOINT set (%s): the task definitions' command names the binary", line)
		}
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root:") {
		t.Errorf("final stage runs as %q, want a non-root user", user)
	}
	// The commands the task definitions run are in the image.
	tpl := mainTemplate(t)
	for _, td := range []string{"WorkerTaskDefinition", "RedeemerTaskDefinition"} {
		cmd := containerOf(t, tpl, td).def.Command[0]
		if !slices.ContainsFunc(copied, func(s string) bool { return strings.HasSuffix(s, "/"+cmd) }) {
			t.Errorf("%s runs %q, which the final stage does not copy (%v)", td, cmd, copied)
		}
	}
}

var pinnedRE = regexp.MustCompile(`^[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$`)

// baseImage returns the image of a FROM line: its first argument that is
// not a flag.
func baseImage(from string) string {
	for _, f := range strings.Fields(from)[1:] {
		if !strings.HasPrefix(f, "--") {
			return f
		}
	}
	return ""
}

// The build context is filtered by Dockerfile.dockerignore (an allow-list);
// every package the commands import must pass it, or the image build fails.
func TestDockerignoreAllowsEveryPackage(t *testing.T) {
	r := root(t)
	b, err := os.ReadFile(filepath.Join(r, "deploy", "Dockerfile.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if dir, ok := strings.CutPrefix(strings.TrimSpace(line), "!"); ok {
			allowed[strings.TrimSuffix(dir, "/")] = true
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if !allowed[f] {
			t.Errorf("%s is not in the build context", f)
		}
	}
	cmd := exec.Command("go", append([]string{"list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}"},
		shippedCommands...)...)
	cmd.Dir = r
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(r, dir)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if top := strings.Split(filepath.ToSlash(rel), "/")[0]; !allowed[top] {
			t.Errorf("package %s is outside the build context (add !%s/ to Dockerfile.dockerignore)", rel, top)
		}
	}
	if n < 3 {
		t.Fatalf("go list found %d packages", n)
	}
}
