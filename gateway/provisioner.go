package gateway

import (
	"context"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// StartRequest asks a provisioner for a new kernel.
type StartRequest struct {
	// ID is the new kernel's id (a UUID).
	ID string
	// Spec is the kernelspec to run.
	Spec KernelSpec
	// Env is the client's validated environment (KERNEL_* and allowed names).
	Env map[string]string
	// User is the client's KERNEL_USERNAME, if any.
	User string
}

// Instance is a kernel a provisioner runs.
type Instance struct {
	// ID is the kernel's id.
	ID string
	// SpecName is its kernelspec's name.
	SpecName string
	// InterruptMode is "signal" or "message".
	InterruptMode string
	// Info is how to reach it; nil while it is suspended.
	Info *jupyter.ConnectionInfo
	// Suspended is true for a kernel without a running process or pod.
	Suspended bool
	// LastActivity is the last activity recorded for a restored kernel (zero when new).
	LastActivity time.Time
}

// Provisioner runs kernels: as local processes, or as pods through JupyterKernels.
type Provisioner interface {
	// Start runs a new kernel and returns once it accepts connections (or ctx ends, in which
	// case nothing of the kernel is left behind).
	Start(ctx context.Context, req StartRequest) (*Instance, error)
	// Interrupt interrupts a kernel whose interrupt mode is signal.
	Interrupt(ctx context.Context, id string) error
	// Restart restarts a kernel in place and returns its (possibly new) connection info once it
	// accepts connections.
	Restart(ctx context.Context, id string) (*jupyter.ConnectionInfo, error)
	// Suspend stops the kernel's process or pod, keeping the kernel so Resume can bring it back.
	Suspend(ctx context.Context, id string) error
	// Resume brings a suspended kernel back and returns its connection info once it accepts
	// connections.
	Resume(ctx context.Context, id string) (*jupyter.ConnectionInfo, error)
	// Shutdown removes the kernel for good.
	Shutdown(ctx context.Context, id string) error
	// Alive reports whether a kernel that should run still does (false: it died).
	Alive(ctx context.Context, id string) bool
	// Restore returns the kernels that already exist (after a gateway restart).
	Restore(ctx context.Context) ([]*Instance, error)
	// Report records a kernel's activity where operators can see it (best effort, throttled
	// by the provisioner).
	Report(id string, a Activity)
}

// Activity is what the gateway knows of a kernel's use.
type Activity struct {
	// LastActivity is when a message last went to or came from the kernel.
	LastActivity time.Time
	// ExecutionState is starting, idle, busy or dead.
	ExecutionState string
	// Connections is the number of connected websockets.
	Connections int
}
