// Package jupyter implements the Jupyter messaging protocol (version 5.3) without any transport:
// connection files, messages and headers, the ZeroMQ wire format with HMAC-SHA256 signatures,
// and the websocket encodings Jupyter Server speaks to browsers and gateways (the legacy JSON and
// binary frames, and the v1.kernel.websocket.jupyter.org subprotocol).
//
// Everything that parses bytes from the network enforces size limits and returns an error for
// malformed input; nothing here panics on what a peer sends. Keys never appear in String output
// or errors.
//
// The ZeroMQ sockets to a kernel live in the subpackage kernelconn.
package jupyter
