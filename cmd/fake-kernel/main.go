// Command fake-kernel is a fake Jupyter kernel for benchmarks and tests (see package
// internal/fakekernel): a few MiB per process instead of ipykernel's ~60, speaking the real
// protocol. Its kernelspec argv is shaped like ipykernel's:
//
//	fake-kernel [-log-level LEVEL] -f {connection_file}
//
// A kernelspec (kernel.json) for it:
//
//	{"argv": ["fake-kernel", "-f", "{connection_file}"], "display_name": "Fake Python",
//	 "language": "python", "interrupt_mode": "signal"}
//
// SIGINT interrupts the running execution (interrupt_mode "signal"); SIGTERM and SIGHUP stop
// the kernel. It exits 0 after a shutdown_request or a stop signal, 1 when it cannot read the
// connection file or bind its ports, 2 on bad arguments. GOGC defaults to 50 (see gcPercent).
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/elastic-jupyter/elastic-jupyter/internal/fakekernel"
	"github.com/elastic-jupyter/elastic-jupyter/internal/loglevel"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// gcPercent is the default GOGC. The kernel's live heap is well under 1 MiB, so Go's default
// (a 4 MiB minimum heap goal) would be most of its RSS; at 50, a kernel that executed a
// thousand cells holds about 4 MiB of anonymous memory instead of 6, for no measurable CPU.
const gcPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("fake-kernel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "the kernel's connection file (required)")
	logLevel := loglevel.Var(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: fake-kernel [-log-level LEVEL] -f CONNECTION_FILE")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel.Level})).With("component", "fake-kernel")

	info, err := jupyter.ReadConnectionFile(*file)
	if err != nil {
		fmt.Fprintln(stderr, "fake-kernel:", err)
		return 1
	}
	// Before Start, so that an interrupt right after the ports open does not kill the kernel.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	k, err := fakekernel.Start(info, fakekernel.Options{Log: log})
	if err != nil {
		fmt.Fprintln(stderr, "fake-kernel:", err)
		return 1
	}
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGINT {
				k.Interrupt()
				continue
			}
			log.Info("stopping", "signal", s.String())
			if err := k.Close(); err != nil {
				fmt.Fprintln(stderr, "fake-kernel:", err)
				return 1
			}
			return 0
		case <-k.Done():
			if err := k.Err(); err != nil {
				fmt.Fprintln(stderr, "fake-kernel:", err)
				return 1
			}
			return 0
		}
	}
}
