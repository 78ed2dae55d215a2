package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var got []string
	cmds := []Command{
		{Name: "ok", Summary: "succeeds", Run: func(_ context.Context, args []string, stdout, _ io.Writer) error {
			got = args
			_, err := io.WriteString(stdout, "done")
			return err
		}},
		{Name: "fail", Summary: "fails", Run: func(context.Context, []string, io.Writer, io.Writer) error {
			return errors.New("boom")
		}},
		{Name: "flags", Summary: "has flags", Run: func(_ context.Context, args []string, _, stderr io.Writer) error {
			fs := flag.NewFlagSet("flags", flag.ContinueOnError)
			fs.SetOutput(stderr)
			return fs.Parse(args)
		}},
	}
	tests := []struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{args: []string{"ok", "-x", "y"}, wantCode: 0, wantStdout: "done"},
		{args: []string{"fail"}, wantCode: 1, wantStderr: []string{"prog fail: boom"}},
		{args: []string{"flags", "-h"}, wantCode: 0, wantStderr: []string{"Usage of flags"}},
		{args: []string{"flags", "-nope"}, wantCode: 1, wantStderr: []string{"prog flags: flag provided but not defined: -nope"}},
		{args: nil, wantCode: 2, wantStderr: []string{"usage: prog COMMAND", "  ok         succeeds\n", "  fail       fails\n"}},
		{args: []string{"help"}, wantCode: 2, wantStderr: []string{"usage: prog COMMAND"}},
		{args: []string{"bench"}, wantCode: 2, wantStderr: []string{`prog: unknown command "bench"`, "usage: prog COMMAND"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Run(context.Background(), "prog", cmds, tt.args, &stdout, &stderr); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.wantStdout)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
	if strings.Join(got, " ") != "-x y" {
		t.Errorf("ok got args %q, want the rest after the command", got)
	}
}
