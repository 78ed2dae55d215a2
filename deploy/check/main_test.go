package check

import (
	"os"
	"testing"
)

func mkdirTemp() (string, error) { return os.MkdirTemp("", "approvals-check-") }

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{binsDir, synthDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}
