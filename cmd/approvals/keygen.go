package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/sfn-approvals/sfn-approvals/link"
)

func keygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	k, err := link.GenerateKey()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, k)
	return err
}
