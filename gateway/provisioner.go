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
	// User is the user the kernel runs for (the client's identity).
	User string
	// Owner is the identity that starts the kernel; it is recorded with the kernel so a
	// restarted gateway knows whose it is.
	Owner Identity
	// Timeout is the longest the kernel may take to start (waiting for a GPU included).
	Timeout time.Duration
}

// Instance is a kernel a provisioner runs.
type Instance struct {
	// ID is the kernel's id.
	ID string
	// SpecName is its kernelspec's name.
	SpecName string
	// InterruptMode is "signal" or "message".
	InterruptMode string
	// Info is how to reach it; nil while it is suspended or starting.
	Info *jupyter.ConnectionInfo
	// Suspended is true for a kernel without a running process or pod.
	Suspended bool
	// Failed says why a kernel could not start; empty for the others.
	Failed string
	// Owner is the identity that started it.
	Owner Identity
	// LastActivity is the last activity recorded for a restored kernel (zero when new).
	LastActivity time.Time
}

// Provisioner runs kernels: as local processes, or as pods through JupyterKernels.
type Provisioner interface {
	// Start creates a new kernel and returns at once, while it starts; Wait tells when it
	// runs. An error means nothing of the kernel was created.
	Start(ctx context.Context, req StartRequest) error
	// Wait returns the kernel's connection info once it accepts connections (after a start,
	// a resume or a restart), or an error saying why it will not. progress is told what the
	// kernel waits for ("waiting for a GPU: ..."), each time that changes.
	Wait(ctx context.Context, id string, progress func(string)) (*jupyter.ConnectionInfo, error)
	// Interrupt interrupts a kernel whose interrupt mode is signal.
	Interrupt(ctx context.Context, id string) error
	// Restart restarts a kernel in place and returns its (possibly new) connection info once it
	// accepts connections.
	Restart(ctx context.Context, id string) (*jupyter.ConnectionInfo, error)
	// Suspend stops the kernel's process or pod, keeping the kernel so Resume can bring it back.
	Suspend(ctx context.Context, id string) error
	// Resume asks for a suspended (or failed) kernel to run again and returns at once; Wait
	// tells when it runs.
	Resume(ctx context.Context, id string) error
	// Shutdown removes the kernel for good.
	Shutdown(ctx context.Context, id string) error
	// Alive reports whether a kernel that should run still does (false: it died).
	Alive(ctx context.Context, id string) bool
	// Restore returns the kernels that already exist (after a gateway restart).
	Restore(ctx context.Context) ([]*Instance, error)
	// Report records a kernel's activity where operators can see it (best effort, throttled
	// by the provisioner).
	Report(id string, a Activity)
	// GPUs is the number of GPUs a kernel holds now (what a suspension gives back).
	GPUs(ctx context.Context, id string) int
	// State tells where a kernel keeps its variables across a suspension (false: it keeps
	// none), as its current process or pod has it.
	State(ctx context.Context, id string) (StateLocation, bool)
	// RecordState records what a save or load of a kernel's variables left, so a restarted
	// gateway knows, and a snapshot left by a deleted kernel is removed.
	RecordState(ctx context.Context, id string, o StateOutcome) error
}

// RefusedError is a start or resume the cluster refused (a per-user limit, a policy): the
// kernel is not changed, and the reason goes to the user.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// Activity is what the gateway knows of a kernel's use.
type Activity struct {
	// LastActivity is when a message last went to or came from the kernel.
	LastActivity time.Time
	// ExecutionState is starting, idle, busy or dead.
	ExecutionState string
	// Connections is the number of connected websockets.
	Connections int
}
