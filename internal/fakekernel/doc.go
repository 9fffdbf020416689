// Package fakekernel is a fake Jupyter kernel for benchmarks and tests: it speaks the Jupyter
// messaging protocol (5.3) over ZeroMQ like ipykernel does, in a few MiB per process, so that
// hundreds of kernels fit on one small machine. It is not a Python interpreter.
//
// The sockets are those of a real kernel, bound on the connection file's ip and ports: shell,
// control and stdin (ROUTER), iopub (PUB) and the heartbeat (REP, echoing every message).
// Every message is signed with HMAC-SHA256 using the connection key (none with an empty key);
// incoming messages with a bad signature, and malformed ones, are logged and dropped.
//
// Requests answered, on shell and on control (execute_request only on shell), each between
// iopub status busy and idle whose parent is the request, as ipykernel does:
//
//   - kernel_info_request: protocol_version 5.3, implementation "fake", language python.
//   - execute_request: see the language below. execute_input is published and the execution
//     count increments unless the request is silent (or store_history is false);
//     user_expressions are answered per key (evaluated when they are expressions of the
//     language, "None" otherwise).
//   - interrupt_request (control): interrupts a running execution, which ends with an iopub
//     error KeyboardInterrupt and an execute_reply with status error. Kernel.Interrupt does
//     the same; the fake-kernel command calls it on SIGINT.
//   - shutdown_request: shutdown_reply (also published on iopub, as ipykernel does), then the
//     kernel stops.
//   - comm_info_request (no comms), comm_open (answered with comm_close: no comm targets),
//     history_request, complete_request, inspect_request, is_complete_request: empty answers.
//
// Other message types are logged and dropped (still between busy and idle).
//
// # The language
//
// A cell is statements separated by newlines or semicolons; # starts a comment.
//
//	print(expr, ...)            writes the values and a newline to stdout (an iopub stream)
//	sleep N, sleep(N)           sleeps N seconds (any number), interruptibly
//	time.sleep(N)               the same, so that "import time; time.sleep(N)" works
//	import ..., from ... import ..., pass    do nothing
//	raise Name, raise Name('message')        raises that exception
//	expr                        evaluated; the last statement's value is the execute_result
//
// Expressions are Python's int (arbitrary precision, up to 65536 bits from **), float and
// one-line str literals, with + - * / // % ** and parentheses, Python's precedence, floor
// division and float repr, and Python's exceptions (ZeroDivisionError, TypeError, ...).
//
// A cell that is not in this language at all (any other syntax, such as "x = 1") is not an
// error: its execute_result is the code itself as text/plain, so clients that run their own
// helper code keep working.
package fakekernel
