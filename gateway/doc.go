// Package gateway is a Jupyter kernel gateway: the REST and websocket API that Jupyter Server's
// gateway client (--gateway-url) speaks, in front of kernels that a Provisioner runs — each in
// its own Kubernetes pod (the product) or as a local process (workstations and tests).
//
// The gateway keeps a table of kernels, relays each client websocket to its kernel over ZeroMQ
// (one socket set per websocket, signing and verifying every message), tracks activity and
// execution state the way Jupyter does, and culls idle kernels: Delete removes them, Suspend
// frees their pod and GPU and brings them back on the next message. Settings (cull timeout,
// interval, policy, kernelspecs) are read live from a SettingsSource.
package gateway
