package templates

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestOverlay(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "email"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "email", "custom.txt.tmpl"), []byte("custom"), 0o644)
	os.WriteFile(filepath.Join(dir, "email", "approval.txt.tmpl"), []byte("replaced"), 0o644)
	fsys, err := FS(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.ReadFile(fsys, "email/approval.txt.tmpl")
	if err != nil || string(got) != "replaced" {
		t.Errorf("override not used: %q %v", got, err)
	}
	matches, err := fs.Glob(fsys, "email/*.txt.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"email/custom.txt.tmpl": true, "email/approval.txt.tmpl": true, "email/notification.txt.tmpl": true}
	n := 0
	for _, m := range matches {
		if want[m] {
			n++
		}
	}
	if n != len(want) {
		t.Errorf("glob = %v, want to include %v once each", matches, want)
	}
	if _, err := FS(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing override dir accepted")
	}
}
