// Package templates holds the embedded email and page templates, and the
// overlay that lets an operator replace any of them, or add new email
// templates, from a directory (APPROVALS_TEMPLATES_DIR).
//
// Layout: email/NAME.html.tmpl and email/NAME.txt.tmpl for each email
// template NAME; pages/*.html.tmpl for the redeemer's pages.
package templates

import (
	"embed"
	"errors"
	"io/fs"
	"os"
	"slices"
)

//go:embed email pages
var embedded embed.FS

// Embedded returns the built-in templates.
func Embedded() fs.FS { return embedded }

// FS returns the built-in templates overlaid by dir: a file in dir replaces
// the embedded file of the same path, and new files are added. An empty dir
// gives the built-in templates alone.
func FS(dir string) (fs.FS, error) {
	if dir == "" {
		return embedded, nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, errors.New(dir + " is not a directory")
	}
	return overlay{top: os.DirFS(dir), base: embedded}, nil
}

type overlay struct{ top, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	f, err := o.top.Open(name)
	if err == nil {
		return f, nil
	}
	return o.base.Open(name)
}

// ReadDir merges both directories, so fs.Glob (and template.ParseFS) sees
// files from either side once.
func (o overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	top, errTop := fs.ReadDir(o.top, name)
	base, errBase := fs.ReadDir(o.base, name)
	if errTop != nil && errBase != nil {
		return nil, errBase
	}
	seen := map[string]bool{}
	var out []fs.DirEntry
	for _, e := range append(top, base...) {
		if !seen[e.Name()] {
			seen[e.Name()] = true
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int {
		switch {
		case a.Name() < b.Name():
			return -1
		case a.Name() > b.Name():
			return 1
		}
		return 0
	})
	return out, nil
}
