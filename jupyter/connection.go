package jupyter

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// SignatureScheme is the only signature scheme this package speaks.
const SignatureScheme = "hmac-sha256"

// Channel names, as in messages relayed over websockets.
const (
	ChannelShell   = "shell"
	ChannelControl = "control"
	ChannelStdin   = "stdin"
	ChannelIOPub   = "iopub"
	ChannelHB      = "hb"
)

// ConnectionInfo is a kernel's connection file: where its five sockets listen and the key that
// signs its messages.
type ConnectionInfo struct {
	// IP is the address the kernel binds (and clients dial).
	IP string `json:"ip"`
	// Transport is "tcp".
	Transport string `json:"transport"`
	// ShellPort is the port of the shell ROUTER socket.
	ShellPort int `json:"shell_port"`
	// IOPubPort is the port of the iopub PUB socket.
	IOPubPort int `json:"iopub_port"`
	// StdinPort is the port of the stdin ROUTER socket.
	StdinPort int `json:"stdin_port"`
	// ControlPort is the port of the control ROUTER socket.
	ControlPort int `json:"control_port"`
	// HBPort is the port of the heartbeat REP socket.
	HBPort int `json:"hb_port"`
	// Key signs every message; empty means unsigned.
	Key string `json:"key"`
	// SignatureScheme is "hmac-sha256".
	SignatureScheme string `json:"signature_scheme"`
	// KernelName is the kernelspec's name, informational.
	KernelName string `json:"kernel_name,omitempty"`
}

// ParseConnectionInfo decodes and validates a connection file.
func ParseConnectionInfo(data []byte) (*ConnectionInfo, error) {
	var ci ConnectionInfo
	if err := json.Unmarshal(data, &ci); err != nil {
		return nil, fmt.Errorf("decoding the connection file: %w", err)
	}
	if ci.Transport == "" {
		ci.Transport = "tcp"
	}
	if ci.SignatureScheme == "" {
		ci.SignatureScheme = SignatureScheme
	}
	if err := ci.Validate(); err != nil {
		return nil, err
	}
	return &ci, nil
}

// ReadConnectionFile reads and validates the connection file at path.
func ReadConnectionFile(path string) (*ConnectionInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the connection file: %w", err)
	}
	ci, err := ParseConnectionInfo(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ci, nil
}

// Validate checks the transport, the signature scheme and that the five ports are valid and
// distinct. The IP may be empty (a launcher fills it in).
func (c *ConnectionInfo) Validate() error {
	if c.Transport != "tcp" {
		return fmt.Errorf("transport %q is not supported: use \"tcp\"", c.Transport)
	}
	if c.SignatureScheme != SignatureScheme {
		return fmt.Errorf("signature_scheme %q is not supported: use %q", c.SignatureScheme, SignatureScheme)
	}
	seen := map[int]string{}
	for _, p := range []struct {
		name string
		port int
	}{
		{"shell_port", c.ShellPort}, {"iopub_port", c.IOPubPort}, {"stdin_port", c.StdinPort},
		{"control_port", c.ControlPort}, {"hb_port", c.HBPort},
	} {
		if p.port <= 0 || p.port > 65535 {
			return fmt.Errorf("%s %d is not a TCP port (1-65535)", p.name, p.port)
		}
		if other, dup := seen[p.port]; dup {
			return fmt.Errorf("%s and %s are both %d: every channel needs its own port", other, p.name, p.port)
		}
		seen[p.port] = p.name
	}
	return nil
}

// Marshal encodes the connection file as JSON.
func (c *ConnectionInfo) Marshal() ([]byte, error) {
	return json.MarshalIndent(c, "", "  ")
}

// Port returns the port of a channel ("shell", "iopub", "stdin", "control" or "hb").
func (c *ConnectionInfo) Port(channel string) (int, error) {
	switch channel {
	case ChannelShell:
		return c.ShellPort, nil
	case ChannelIOPub:
		return c.IOPubPort, nil
	case ChannelStdin:
		return c.StdinPort, nil
	case ChannelControl:
		return c.ControlPort, nil
	case ChannelHB:
		return c.HBPort, nil
	}
	return 0, fmt.Errorf("unknown channel %q", channel)
}

// Endpoint returns the ZeroMQ endpoint of a channel, such as "tcp://127.0.0.1:5555".
func (c *ConnectionInfo) Endpoint(channel string) (string, error) {
	port, err := c.Port(channel)
	if err != nil {
		return "", err
	}
	if c.IP == "" {
		return "", errors.New("the connection info has no ip")
	}
	host := c.IP
	if host == "0.0.0.0" || host == "*" {
		host = "127.0.0.1"
	}
	return c.Transport + "://" + joinHostPort(host, port), nil
}

// String describes the connection without its key.
func (c *ConnectionInfo) String() string {
	return fmt.Sprintf("%s://%s shell=%d iopub=%d stdin=%d control=%d hb=%d key=<redacted>",
		c.Transport, c.IP, c.ShellPort, c.IOPubPort, c.StdinPort, c.ControlPort, c.HBPort)
}

func joinHostPort(host string, port int) string {
	for i := 0; i < len(host); i++ {
		if host[i] == ':' {
			return "[" + host + "]:" + strconv.Itoa(port)
		}
	}
	return host + ":" + strconv.Itoa(port)
}

// ConnectionFilePlaceholder is replaced in a kernelspec's argv by the connection file's path.
const ConnectionFilePlaceholder = "{connection_file}"
