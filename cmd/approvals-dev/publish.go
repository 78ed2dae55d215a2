package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// document is a run's result: the bench's Report, the soak's Ledger.
type document interface {
	Markdown() string
	WriteFile(path string) error
}

// publish prints d and, when file is set (-write), puts it into that file
// between its markers too.
func publish(stdout io.Writer, d document, file string) error {
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, d.Markdown())
	if file == "" {
		return nil
	}
	if err := d.WriteFile(file); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwritten to %s\n", file)
	return nil
}

// commandLine is how this run was started, as the report shows it:
// relative to the repository (bin/approvals-dev bench ...), never a local path.
func commandLine() string {
	name := "approvals-dev"
	if wd, err := os.Getwd(); err == nil {
		if exe, err := os.Executable(); err == nil {
			if rel, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(rel, "..") {
				name = rel
			}
		}
	}
	args := []string{name}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " '\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}
