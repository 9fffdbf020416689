// Command elastic-jupyter is the one binary of the elastic-jupyter image. Each component is a
// subcommand (controller, webhook, gateway; and simulate, a tool for teams choosing
// their culling settings), registered by a file of its own in this package; each parses its
// own flags and hands over to its package at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// subcommand is one component of the binary.
type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var subcommands = map[string]subcommand{}

// register adds a subcommand; it is called from the init functions of this package's files.
func register(name, summary string, run func(ctx context.Context, args []string) error) {
	if _, dup := subcommands[name]; dup {
		panic("subcommand registered twice: " + name)
	}
	subcommands[name] = subcommand{summary: summary, run: run}
}

func usage() {
	fmt.Fprintf(os.Stderr, "Usage: elastic-jupyter <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", n, subcommands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'elastic-jupyter <command> -h' for a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := subcommands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "elastic-jupyter: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "elastic-jupyter %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
