// Package cli is the subcommand table shared by the approvals (operator) and
// approvals-dev (development) binaries. It never touches signals or exits:
// each main builds the context and calls os.Exit with what Run returns.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Command is one subcommand. Run parses its own flags from args.
type Command struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// Run dispatches args (os.Args[1:]) to the named command and returns the exit
// code: 0, 1 when the command failed, 2 for a usage error. A command's -h
// exits 0, as flag.ExitOnError does.
func Run(ctx context.Context, prog string, cmds []Command, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, prog, cmds)
		return 2
	}
	for _, c := range cmds {
		if c.Name != args[0] {
			continue
		}
		err := c.Run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			// On ErrHelp the flag set has printed the command's usage.
			return 0
		default:
			fmt.Fprintf(stderr, "%s %s: %v\n", prog, c.Name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", prog, args[0])
	usage(stderr, prog, cmds)
	return 2
}

func usage(w io.Writer, prog string, cmds []Command) {
	fmt.Fprintf(w, "usage: %s COMMAND [flags]\n\ncommands:\n", prog)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND -h' for a command's flags.\n", prog)
}
