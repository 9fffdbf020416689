package jupyter

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// SubprotocolV1 is the websocket subprotocol in which each message is one binary frame of byte
// ranges (channel, header, parent header, metadata, content, buffers).
const SubprotocolV1 = "v1.kernel.websocket.jupyter.org"

// wsJSON is the legacy websocket form of a message: one JSON object.
type wsJSON struct {
	Header       Header          `json:"header"`
	MsgID        string          `json:"msg_id"`
	MsgType      string          `json:"msg_type"`
	ParentHeader json.RawMessage `json:"parent_header"`
	Metadata     json.RawMessage `json:"metadata"`
	Content      json.RawMessage `json:"content"`
	Buffers      []any           `json:"buffers"`
	Channel      string          `json:"channel"`
}

// EncodeWSJSON returns the legacy text-frame form of m (which must have no buffers: use
// EncodeWSBinary for those).
func EncodeWSJSON(m *Message) ([]byte, error) {
	return json.Marshal(wsJSON{
		Header:       m.Header,
		MsgID:        m.Header.MsgID,
		MsgType:      m.Header.MsgType,
		ParentHeader: orEmpty(m.ParentHeader),
		Metadata:     orEmpty(m.Metadata),
		Content:      orEmpty(m.Content),
		Buffers:      []any{},
		Channel:      m.Channel,
	})
}

// DecodeWSJSON parses a legacy text frame.
func DecodeWSJSON(data []byte, limits Limits) (*Message, error) {
	if len(data) > limits.MaxMessage {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(data), limits.MaxMessage)
	}
	return decodeWSObject(data, nil)
}

func decodeWSObject(data []byte, buffers [][]byte) (*Message, error) {
	var w struct {
		Header       json.RawMessage `json:"header"`
		ParentHeader json.RawMessage `json:"parent_header"`
		Metadata     json.RawMessage `json:"metadata"`
		Content      json.RawMessage `json:"content"`
		Channel      string          `json:"channel"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m, err := assemble(nil, orEmpty(w.Header), orEmpty(w.ParentHeader), orEmpty(w.Metadata), orEmpty(w.Content), buffers)
	if err != nil {
		return nil, err
	}
	if w.Channel == "" {
		return nil, fmt.Errorf("%w: no channel", ErrMalformed)
	}
	m.Channel = w.Channel
	return m, nil
}

// EncodeWSBinary returns the legacy binary-frame form of m, for messages with buffers: a
// big-endian uint32 count of parts, the uint32 offset of each part, the JSON, the buffers.
func EncodeWSBinary(m *Message) ([]byte, error) {
	js, err := EncodeWSJSON(m)
	if err != nil {
		return nil, err
	}
	parts := append([][]byte{js}, m.Buffers...)
	n := len(parts)
	var out bytes.Buffer
	head := make([]byte, 4*(n+1))
	binary.BigEndian.PutUint32(head, uint32(n))
	off := len(head)
	for i, p := range parts {
		binary.BigEndian.PutUint32(head[4*(i+1):], uint32(off))
		off += len(p)
	}
	out.Grow(off)
	out.Write(head)
	for _, p := range parts {
		out.Write(p)
	}
	return out.Bytes(), nil
}

// DecodeWSBinary parses a legacy binary frame.
func DecodeWSBinary(data []byte, limits Limits) (*Message, error) {
	if len(data) > limits.MaxMessage {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(data), limits.MaxMessage)
	}
	if len(data) < 8 {
		return nil, fmt.Errorf("%w: binary frame of %d bytes", ErrMalformed, len(data))
	}
	n := binary.BigEndian.Uint32(data)
	if n < 1 || int(n) > limits.MaxFrames || 4*(uint64(n)+1) > uint64(len(data)) {
		return nil, fmt.Errorf("%w: %d parts in a frame of %d bytes", ErrMalformed, n, len(data))
	}
	offsets := make([]int, n+1)
	for i := range int(n) {
		offsets[i] = int(binary.BigEndian.Uint32(data[4*(i+1):]))
	}
	offsets[n] = len(data)
	parts, err := slices(data, offsets, 4*(int(n)+1), limits)
	if err != nil {
		return nil, err
	}
	var buffers [][]byte
	if len(parts) > 1 {
		buffers = parts[1:]
	}
	return decodeWSObject(parts[0], buffers)
}

// EncodeWSV1 returns the v1.kernel.websocket.jupyter.org form of m: a little-endian uint64
// count of offsets, the uint64 offsets, then channel, header, parent header, metadata, content
// and buffers. The signature is not part of it.
func EncodeWSV1(m *Message) ([]byte, error) {
	header, err := json.Marshal(m.Header)
	if err != nil {
		return nil, fmt.Errorf("encoding the header: %w", err)
	}
	parts := [][]byte{[]byte(m.Channel), header, orEmpty(m.ParentHeader), orEmpty(m.Metadata), orEmpty(m.Content)}
	parts = append(parts, m.Buffers...)
	n := len(parts) + 1 // offsets: the start of each part, and the end
	head := make([]byte, 8*(n+1))
	binary.LittleEndian.PutUint64(head, uint64(n))
	off := len(head)
	binary.LittleEndian.PutUint64(head[8:], uint64(off))
	for i, p := range parts {
		off += len(p)
		binary.LittleEndian.PutUint64(head[8*(i+2):], uint64(off))
	}
	out := make([]byte, 0, off)
	out = append(out, head...)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, nil
}

// DecodeWSV1 parses a v1.kernel.websocket.jupyter.org frame.
func DecodeWSV1(data []byte, limits Limits) (*Message, error) {
	if len(data) > limits.MaxMessage {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(data), limits.MaxMessage)
	}
	if len(data) < 8 {
		return nil, fmt.Errorf("%w: v1 frame of %d bytes", ErrMalformed, len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	// channel, header, parent, metadata, content: at least 6 offsets.
	if n < 6 || n > uint64(limits.MaxFrames) || 8*(n+1) > uint64(len(data)) {
		return nil, fmt.Errorf("%w: %d offsets in a v1 frame of %d bytes", ErrMalformed, n, len(data))
	}
	offsets := make([]int, n)
	for i := range int(n) {
		v := binary.LittleEndian.Uint64(data[8*(i+1):])
		if v > uint64(len(data)) {
			return nil, fmt.Errorf("%w: offset %d beyond the frame", ErrMalformed, v)
		}
		offsets[i] = int(v)
	}
	parts, err := slices(data, offsets, 8*(int(n)+1), limits)
	if err != nil {
		return nil, err
	}
	var buffers [][]byte
	if len(parts) > 5 {
		buffers = parts[5:]
	}
	m, err := assemble(nil, parts[1], parts[2], parts[3], parts[4], buffers)
	if err != nil {
		return nil, err
	}
	if len(parts[0]) == 0 {
		return nil, fmt.Errorf("%w: no channel", ErrMalformed)
	}
	m.Channel = string(parts[0])
	return m, nil
}

// slices cuts data at offsets (ascending, the first at least minStart, the last the end).
func slices(data []byte, offsets []int, minStart int, limits Limits) ([][]byte, error) {
	parts := make([][]byte, 0, len(offsets)-1)
	for i := 0; i+1 < len(offsets); i++ {
		start, end := offsets[i], offsets[i+1]
		if start < minStart || end < start || end > len(data) {
			return nil, fmt.Errorf("%w: bad offsets %d..%d in a frame of %d bytes", ErrMalformed, start, end, len(data))
		}
		if end-start > limits.MaxFrame {
			return nil, fmt.Errorf("%w: a part of %d bytes (at most %d)", ErrTooLarge, end-start, limits.MaxFrame)
		}
		parts = append(parts, data[start:end])
	}
	return parts, nil
}
