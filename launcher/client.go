package launcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Client calls a kernel launcher's control port.
type Client struct {
	base string
	key  []byte
	http *http.Client
}

// NewClient returns a client for the launcher at host:port, signing with the kernel's key.
func NewClient(host string, port int, key string) *Client {
	if port == 0 {
		port = DefaultControlPort
	}
	return &Client{
		base: "http://" + net.JoinHostPort(host, strconv.Itoa(port)),
		key:  []byte(key),
		http: &http.Client{Timeout: 2 * time.Minute},
	}
}

// Interrupt sends SIGINT to the kernel.
func (c *Client) Interrupt(ctx context.Context) error { return c.post(ctx, "/interrupt") }

// Restart restarts the kernel in place (same ports) and returns once it listens again.
func (c *Client) Restart(ctx context.Context) error { return c.post(ctx, "/restart") }

// Shutdown stops the kernel; the launcher (and so the pod's container) then exits 0.
func (c *Client) Shutdown(ctx context.Context) error { return c.post(ctx, "/shutdown") }

// Ready reports whether the launcher says the kernel listens.
func (c *Client) Ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (c *Client) post(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, nil)
	if err != nil {
		return err
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	signRequest(req, c.key, time.Now(), hex.EncodeToString(nonce))
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling the kernel launcher's %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var body struct{ Message string }
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = json.Unmarshal(data, &body)
	return &Error{Status: resp.StatusCode, Message: body.Message}
}

// Error is a launcher's refusal.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Message is the launcher's explanation.
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("kernel launcher: %d %s", e.Status, e.Message)
}
