// Package launcher is the kernel launcher: a small program that runs in every kernel pod (copied
// there by an init container), prepares the kernel's connection file, runs the kernel, and
// serves a control port through which the gateway interrupts, restarts and shuts the kernel
// down. It has no Kubernetes dependencies and never logs the kernel's key.
//
// # Control port
//
// HTTP on the pod IP, port DefaultControlPort (8778):
//
//   - GET /healthz: 200 while the launcher runs.
//   - GET /readyz: 200 once the kernel accepts TCP connections on its shell and heartbeat
//     ports, 503 before (and while it restarts).
//   - POST /interrupt: SIGINT to the kernel's process group (interrupt mode "signal"; in mode
//     "message" it answers 409: send interrupt_request on the control channel instead).
//   - POST /restart: stops the kernel and starts the same argv again, with the same connection
//     file (same ports, same pod, the GPU kept); answers once the new kernel is ready.
//   - POST /shutdown: stops the kernel; the launcher then exits 0.
//
// The POST endpoints require a signature made with the kernel's key (the connection file's
// "key"): the headers X-Launcher-Timestamp (Unix seconds), X-Launcher-Nonce (16 to 64
// characters) and Authorization: "Jupyter-HMAC " + hex(HMAC-SHA256(key, METHOD "\n" PATH "\n"
// TIMESTAMP "\n" NONCE)). The launcher refuses timestamps more than MaxClockSkew away from its
// clock and any nonce it has seen within that window, so a captured request cannot be
// replayed. Client implements the scheme.
//
// # Kernel state
//
// Install also delivers the kernel-state helper (state/elastic_jupyter_state.py, embedded),
// which saves a kernel's variables before a suspend and loads them in the next pod. The
// gateway calls it with StateExecuteContent and the State*Expr builders and reads the reply
// with ParseStateUserExpression; RemoveState (and "kernel-launcher state remove") deletes a
// snapshot when no kernel runs. docs/contracts.md, "Kernel state", is the contract.
package launcher

import "time"

// DefaultControlPort is the port of the launcher's control server.
const DefaultControlPort = 8778

// MaxClockSkew is how far a signed request's timestamp may be from the launcher's clock.
const MaxClockSkew = 60 * time.Second

// Interrupt modes, as in kernel.json's interrupt_mode.
const (
	InterruptSignal  = "signal"
	InterruptMessage = "message"
)
