package stack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
)

// Dirs are where a run finds the worker and redeemer binaries and writes
// the services' logs. The options of the stack, the bench and the soak
// embed it, so the three find them the same way.
type Dirs struct {
	Root   string // repository root (default: found from the go command)
	BinDir string // worker and redeemer binaries (default Root/bin)
	LogDir string // service logs (default Root/bin/logs, or the subdirectory Prepare names)
}

// Prepare fills the empty fields (LogDir as Root/bin/logs/logs, logs may be
// empty), checks that BinDir holds the worker and redeemer, and makes LogDir.
func (d *Dirs) Prepare(logs string) error {
	if d.Root == "" {
		r, err := kumo.RepoRoot()
		if err != nil {
			return err
		}
		d.Root = r
	}
	if d.BinDir == "" {
		d.BinDir = filepath.Join(d.Root, "bin")
	}
	if d.LogDir == "" {
		d.LogDir = filepath.Join(d.Root, "bin", "logs", logs)
	}
	for _, b := range []string{"worker", "redeemer"} {
		if _, err := os.Stat(filepath.Join(d.BinDir, b)); err != nil {
			return fmt.Errorf("%s binary missing in %s: run make build", b, d.BinDir)
		}
	}
	return os.MkdirAll(d.LogDir, 0o755)
}

// BuildServices compiles the worker and redeemer into binDir, from the
// repository at root ("": found from the go command). Tests run it where
// operators run make build.
func BuildServices(root, binDir string) error {
	if root == "" {
		r, err := kumo.RepoRoot()
		if err != nil {
			return err
		}
		root = r
	}
	cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./cmd/worker", "./cmd/redeemer")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the worker and redeemer: %v\n%s", err, out)
	}
	return nil
}
