// Command approvals is the operator's tool, shipped in the image: signing
// keys, template previews and a request's links. It links none of the development harness
// (that is approvals-dev); deps_test.go asserts it for every shipped command.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sfn-approvals/sfn-approvals/internal/cli"
)

var commands = []cli.Command{
	{Name: "keygen", Summary: "print a fresh signing key in APPROVALS_SIGNING_KEYS syntax (kid:base64key)", Run: keygen},
	{Name: "preview", Summary: "render an email template to stdout without sending it", Run: preview},
	{Name: "links", Summary: "validate a request as the worker does and print the links it would mint, per recipient and channel", Run: links},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, "approvals", commands, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
