package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirsPrepare(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	d := Dirs{Root: root}
	err := d.Prepare("soak")
	if err == nil || !strings.Contains(err.Error(), "worker binary missing in "+bin) {
		t.Fatalf("Prepare without binaries: %v, want the worker named missing", err)
	}
	for _, b := range []string{"worker", "redeemer"} {
		if err := os.WriteFile(filepath.Join(bin, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d = Dirs{Root: root}
	if err := d.Prepare("soak"); err != nil {
		t.Fatal(err)
	}
	want := Dirs{Root: root, BinDir: bin, LogDir: filepath.Join(bin, "logs", "soak")}
	if d != want {
		t.Errorf("Prepare filled %+v, want %+v", d, want)
	}
	if fi, err := os.Stat(want.LogDir); err != nil || !fi.IsDir() {
		t.Errorf("log directory not made: %v", err)
	}

	// Set fields are kept.
	logs := filepath.Join(root, "elsewhere")
	d = Dirs{Root: root, BinDir: bin, LogDir: logs}
	if err := d.Prepare("soak"); err != nil || d.LogDir != logs {
		t.Errorf("Prepare = %v, LogDir %s, want %s", err, d.LogDir, logs)
	}
}
