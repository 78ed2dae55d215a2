package main

import (
	"bytes"
	"errors"
	"testing"
)

type fakeDocument struct {
	written string
	err     error
}

func (d *fakeDocument) Markdown() string { return "| table |\n" }

func (d *fakeDocument) WriteFile(path string) error {
	d.written = path
	return d.err
}

func TestPublish(t *testing.T) {
	var out bytes.Buffer
	d := &fakeDocument{}
	if err := publish(&out, d, ""); err != nil || d.written != "" || out.String() != "\n| table |\n" {
		t.Errorf("without -write: err %v, wrote %q, printed %q", err, d.written, out.String())
	}
	out.Reset()
	if err := publish(&out, d, "BENCHMARKS.md"); err != nil || d.written != "BENCHMARKS.md" ||
		out.String() != "\n| table |\n\nwritten to BENCHMARKS.md\n" {
		t.Errorf("with -write: err %v, wrote %q, printed %q", err, d.written, out.String())
	}
	out.Reset()
	d.err = errors.New("no markers")
	if err := publish(&out, d, "README.md"); !errors.Is(err, d.err) || bytes.Contains(out.Bytes(), []byte("written")) {
		t.Errorf("failed write: err %v, printed %q", err, out.String())
	}
}
