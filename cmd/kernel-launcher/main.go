// Command kernel-launcher runs a Jupyter kernel inside its pod (see package launcher).
//
//	kernel-launcher install DIR
//	kernel-launcher run [flags] -- ARGV...
//	kernel-launcher state remove --dir DIR --kernel ID
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/internal/loglevel"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "install":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: kernel-launcher install DIR")
			os.Exit(2)
		}
		dst, err := launcher.Install(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "kernel-launcher install:", err)
			os.Exit(1)
		}
		fmt.Println("installed", dst)
		fmt.Println("installed", launcher.StateHelperInstallPath(os.Args[2]))
	case "run":
		os.Exit(run(os.Args[2:]))
	case "state":
		os.Exit(state(os.Args[2:]))
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "kernel-launcher: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `Usage:
  kernel-launcher install DIR           copy this binary to DIR/kernel-launcher and
                                        the kernel-state helper to DIR/../lib
  kernel-launcher run [flags] -- ARGV   run the kernel ARGV ({connection_file} is substituted)
  kernel-launcher state remove --dir DIR --kernel ID
                                        delete kernel ID's state snapshot (and temp files) in DIR

Run 'kernel-launcher run -h' for the flags.`)
}

func run(args []string) int {
	fs := flag.NewFlagSet("kernel-launcher run", flag.ContinueOnError)
	var cfg launcher.Config
	fs.StringVar(&cfg.ConnectionFile, "connection-file", "", "the kernel's connection file (from its Secret; read-only)")
	fs.StringVar(&cfg.RuntimeDir, "runtime-dir", os.TempDir(), "a private writable directory for the kernel's copy of the connection file")
	fs.StringVar(&cfg.IP, "ip", "0.0.0.0", "the address the kernel and the control port bind (the pod IP)")
	fs.IntVar(&cfg.ControlPort, "control-port", launcher.DefaultControlPort, "the control port (-1: none)")
	fs.StringVar(&cfg.InterruptMode, "interrupt-mode", launcher.InterruptSignal, "how the kernel is interrupted: signal or message")
	fs.DurationVar(&cfg.StopGrace, "stop-grace", 5*time.Second, "time between SIGTERM and SIGKILL when stopping the kernel")
	logLevel := loglevel.Var(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Argv = fs.Args()
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel.Level})).With("component", "kernel-launcher")
	status, err := launcher.Run(context.Background(), cfg)
	if err != nil {
		cfg.Log.Error("kernel launcher failed", "err", err.Error())
		// The last line of the log, and the termination message a kubelet reports, say why
		// in words the notebook's user reads.
		fmt.Fprintf(os.Stderr, "kernel-launcher: %v\n", err)
		writeTerminationLog(err.Error())
		if status == 0 {
			status = 1
		}
	}
	return status
}

// terminationLog is the default terminationMessagePath a kubelet mounts into containers.
const terminationLog = "/dev/termination-log"

// writeTerminationLog writes msg to the termination log where the runtime made one (never
// creating a file in a /dev that is not the container's own).
func writeTerminationLog(msg string) {
	f, err := os.OpenFile(terminationLog, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return
	}
	_, _ = f.WriteString(msg)
	_ = f.Close()
}

// state runs "state remove": the controller's cleanup of a deleted kernel's snapshot, when no
// kernel runs to do it.
func state(args []string) int {
	if len(args) == 0 || args[0] != "remove" {
		fmt.Fprintln(os.Stderr, "usage: kernel-launcher state remove --dir DIR --kernel ID")
		return 2
	}
	fs := flag.NewFlagSet("kernel-launcher state remove", flag.ContinueOnError)
	dir := fs.String("dir", launcher.DefaultStateDir, "the directory of the snapshots")
	id := fs.String("kernel", "", "the kernel id whose snapshot to delete")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 || *id == "" {
		fmt.Fprintln(os.Stderr, "usage: kernel-launcher state remove --dir DIR --kernel ID")
		return 2
	}
	removed, err := launcher.RemoveState(*dir, *id)
	for _, p := range removed {
		fmt.Println("removed", p)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kernel-launcher state remove:", err)
		return 1
	}
	if len(removed) == 0 {
		fmt.Printf("no snapshot of kernel %s in %s\n", *id, *dir)
	}
	return 0
}
