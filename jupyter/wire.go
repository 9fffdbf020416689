package jupyter

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// Delimiter separates the routing identities from the message frames.
const Delimiter = "<IDS|MSG>"

// Limits bound what a decoder accepts from a peer.
type Limits struct {
	// MaxFrame is the largest single frame (or byte range), in bytes.
	MaxFrame int
	// MaxMessage is the largest whole message, in bytes.
	MaxMessage int
	// MaxFrames is the most frames (identities + buffers included) in one message.
	MaxFrames int
}

// DefaultLimits allow large outputs (plots, data frames) while refusing absurd messages.
var DefaultLimits = Limits{MaxFrame: 64 << 20, MaxMessage: 128 << 20, MaxFrames: 1024}

// Errors the codec returns; test with errors.Is.
var (
	// ErrBadSignature means a message's signature does not match its content.
	ErrBadSignature = errors.New("invalid message signature")
	// ErrTooLarge means a message exceeds the codec's limits.
	ErrTooLarge = errors.New("message too large")
	// ErrMalformed means the bytes are not a Jupyter message.
	ErrMalformed = errors.New("malformed message")
)

// Codec signs, verifies, encodes and decodes ZeroMQ message frames with one kernel's key. It is
// safe for concurrent use.
type Codec struct {
	key    []byte
	limits Limits
	pool   sync.Pool
}

// NewCodec returns a codec for key (empty: no signatures) with DefaultLimits.
func NewCodec(key string) *Codec {
	return NewCodecWithLimits(key, DefaultLimits)
}

// NewCodecWithLimits returns a codec for key with the given limits.
func NewCodecWithLimits(key string, limits Limits) *Codec {
	c := &Codec{key: []byte(key), limits: limits}
	c.pool.New = func() any { return hmac.New(sha256.New, c.key) }
	return c
}

// Limits returns the codec's limits.
func (c *Codec) Limits() Limits { return c.limits }

// Sign returns the lowercase hex HMAC-SHA256 of the four frames, or "" without a key.
func (c *Codec) Sign(header, parent, metadata, content []byte) string {
	if len(c.key) == 0 {
		return ""
	}
	return hex.EncodeToString(c.mac(header, parent, metadata, content))
}

func (c *Codec) mac(parts ...[]byte) []byte {
	h := c.pool.Get().(hash.Hash)
	h.Reset()
	for _, p := range parts {
		h.Write(p)
	}
	sum := h.Sum(nil)
	c.pool.Put(h)
	return sum
}

// Verify checks signature against the four frames in constant time. Without a key every
// signature is accepted.
func (c *Codec) Verify(signature, header, parent, metadata, content []byte) error {
	if len(c.key) == 0 {
		return nil
	}
	got := make([]byte, hex.DecodedLen(len(signature)))
	n, err := hex.Decode(got, signature)
	if err != nil || n != sha256.Size {
		return ErrBadSignature
	}
	if !hmac.Equal(got[:n], c.mac(header, parent, metadata, content)) {
		return ErrBadSignature
	}
	return nil
}

// Encode returns m's ZeroMQ frames: identities, the delimiter, the signature, header, parent
// header, metadata, content and buffers.
func (c *Codec) Encode(m *Message) ([][]byte, error) {
	header, err := json.Marshal(m.Header)
	if err != nil {
		return nil, fmt.Errorf("encoding the header: %w", err)
	}
	parent, metadata, content := orEmpty(m.ParentHeader), orEmpty(m.Metadata), orEmpty(m.Content)
	frames := make([][]byte, 0, len(m.Identities)+6+len(m.Buffers))
	frames = append(frames, m.Identities...)
	frames = append(frames, []byte(Delimiter), []byte(c.Sign(header, parent, metadata, content)),
		header, parent, metadata, content)
	frames = append(frames, m.Buffers...)
	return frames, nil
}

// Decode parses and verifies ZeroMQ frames into a message.
func (c *Codec) Decode(frames [][]byte) (*Message, error) {
	if len(frames) > c.limits.MaxFrames {
		return nil, fmt.Errorf("%w: %d frames (at most %d)", ErrTooLarge, len(frames), c.limits.MaxFrames)
	}
	total := 0
	for _, f := range frames {
		if len(f) > c.limits.MaxFrame {
			return nil, fmt.Errorf("%w: a frame of %d bytes (at most %d)", ErrTooLarge, len(f), c.limits.MaxFrame)
		}
		total += len(f)
	}
	if total > c.limits.MaxMessage {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, total, c.limits.MaxMessage)
	}
	delim := -1
	for i, f := range frames {
		if bytes.Equal(f, []byte(Delimiter)) {
			delim = i
			break
		}
	}
	if delim < 0 {
		return nil, fmt.Errorf("%w: no %s delimiter", ErrMalformed, Delimiter)
	}
	if len(frames) < delim+6 {
		return nil, fmt.Errorf("%w: %d frames after the delimiter (need signature and four parts)", ErrMalformed, len(frames)-delim-1)
	}
	sig, header, parent, metadata, content := frames[delim+1], frames[delim+2], frames[delim+3], frames[delim+4], frames[delim+5]
	if err := c.Verify(sig, header, parent, metadata, content); err != nil {
		return nil, err
	}
	return assemble(frames[:delim], header, parent, metadata, content, frames[delim+6:])
}

// assemble builds a message from its parts, checking that each is the JSON it must be.
func assemble(identities [][]byte, header, parent, metadata, content []byte, buffers [][]byte) (*Message, error) {
	m := &Message{}
	if err := json.Unmarshal(header, &m.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if m.Header.MsgType == "" {
		return nil, fmt.Errorf("%w: header has no msg_type", ErrMalformed)
	}
	for _, p := range []struct {
		name string
		raw  []byte
		dst  *json.RawMessage
	}{{"parent_header", parent, &m.ParentHeader}, {"metadata", metadata, &m.Metadata}, {"content", content, &m.Content}} {
		if !isJSONObject(p.raw) {
			return nil, fmt.Errorf("%w: %s is not a JSON object", ErrMalformed, p.name)
		}
		if bytes.Equal(bytes.TrimSpace(p.raw), []byte("null")) {
			*p.dst = emptyObject
		} else {
			*p.dst = json.RawMessage(p.raw)
		}
	}
	if len(identities) > 0 {
		m.Identities = identities
	}
	if len(buffers) > 0 {
		m.Buffers = buffers
	}
	return m, nil
}

// isJSONObject reports whether b is one valid JSON object (null counts as empty).
func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return true
	}
	return len(b) >= 2 && b[0] == '{' && json.Valid(b)
}
