package jupyter

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"
)

// ProtocolVersion is the messaging protocol version this package writes in headers.
const ProtocolVersion = "5.3"

// Header is a message header.
type Header struct {
	// MsgID identifies the message; replies carry it in their parent header.
	MsgID string `json:"msg_id"`
	// Session identifies the client (or kernel) session that sent the message.
	Session string `json:"session"`
	// Username is the user of the session.
	Username string `json:"username"`
	// Date is when the message was made, ISO 8601.
	Date string `json:"date"`
	// MsgType is the message type, such as "execute_request".
	MsgType string `json:"msg_type"`
	// Version is the protocol version.
	Version string `json:"version"`
}

// Message is one Jupyter message. ParentHeader, Metadata and Content are kept as raw JSON so
// relaying a message never changes it.
type Message struct {
	// Identities are the ZeroMQ routing prefixes before the delimiter.
	Identities [][]byte
	// Header is the message's header.
	Header Header
	// ParentHeader is the header of the message this one answers, or {}.
	ParentHeader json.RawMessage
	// Metadata is the message's metadata object, or {}.
	Metadata json.RawMessage
	// Content is the message's content object.
	Content json.RawMessage
	// Buffers are extra binary frames.
	Buffers [][]byte
	// Channel is the channel the message travels on (set for websocket relaying and by the
	// socket that received it).
	Channel string
}

var emptyObject = json.RawMessage("{}")

// NewID returns a random UUID (version 4), the form Jupyter uses for message, session and
// kernel ids.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on Linux
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Now returns the current UTC time as Jupyter writes dates: microseconds and a Z.
func Now() string { return FormatTime(time.Now()) }

// FormatTime formats t as Jupyter does: "2006-01-02T15:04:05.000000Z" in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// NewMessage returns a message of msgType from session/username with content (any value that
// encodes as a JSON object). parent, if not nil, becomes the parent header.
func NewMessage(msgType, session, username string, content any, parent *Header) (*Message, error) {
	raw, err := json.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("encoding the content of %s: %w", msgType, err)
	}
	if content == nil {
		raw = emptyObject
	}
	m := &Message{
		Header: Header{
			MsgID:    NewID(),
			Session:  session,
			Username: username,
			Date:     Now(),
			MsgType:  msgType,
			Version:  ProtocolVersion,
		},
		ParentHeader: emptyObject,
		Metadata:     emptyObject,
		Content:      raw,
	}
	if parent != nil {
		ph, err := json.Marshal(parent)
		if err != nil {
			return nil, err
		}
		m.ParentHeader = ph
	}
	return m, nil
}

// Parent decodes the parent header; a message without one yields a zero Header.
func (m *Message) Parent() Header {
	var h Header
	if len(m.ParentHeader) > 0 {
		_ = json.Unmarshal(m.ParentHeader, &h) // a malformed parent header is an empty one
	}
	return h
}

// DecodeContent decodes the content into v.
func (m *Message) DecodeContent(v any) error {
	if err := json.Unmarshal(m.Content, v); err != nil {
		return fmt.Errorf("decoding the content of %s: %w", m.Header.MsgType, err)
	}
	return nil
}

// ExecutionState returns the execution_state of a status message on iopub, and false for any
// other message.
func (m *Message) ExecutionState() (string, bool) {
	if m.Header.MsgType != "status" {
		return "", false
	}
	var c struct {
		ExecutionState string `json:"execution_state"`
	}
	if json.Unmarshal(m.Content, &c) != nil || c.ExecutionState == "" {
		return "", false
	}
	return c.ExecutionState, true
}

// Clone returns a copy of m that shares no slices with it.
func (m *Message) Clone() *Message {
	c := *m
	c.Identities = cloneFrames(m.Identities)
	c.Buffers = cloneFrames(m.Buffers)
	c.ParentHeader = append(json.RawMessage(nil), m.ParentHeader...)
	c.Metadata = append(json.RawMessage(nil), m.Metadata...)
	c.Content = append(json.RawMessage(nil), m.Content...)
	return &c
}

func cloneFrames(in [][]byte) [][]byte {
	if in == nil {
		return nil
	}
	out := make([][]byte, len(in))
	for i, f := range in {
		out[i] = append([]byte(nil), f...)
	}
	return out
}

// orEmpty returns raw, or {} when raw is empty.
func orEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return emptyObject
	}
	return raw
}
