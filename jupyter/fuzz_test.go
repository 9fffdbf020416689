package jupyter

import (
	"testing"
)

// The fuzz targets run their seed corpus in every `go test`; `go test -fuzz=FuzzX ./jupyter`
// explores further. A decoder may refuse input, but never panic, and what it accepts must
// encode again.

func FuzzDecodeFrames(f *testing.F) {
	c := NewCodec("")
	m, _ := NewMessage("execute_request", "s", "u", map[string]string{"code": "1"}, nil)
	m.Buffers = [][]byte{[]byte("b")}
	frames, _ := c.Encode(m)
	f.Add(joinFrames(frames))
	f.Add([]byte(Delimiter))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := splitFrames(data)
		got, err := c.Decode(frames)
		if err != nil {
			return
		}
		if _, err := c.Encode(got); err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
	})
}

func FuzzDecodeWSJSON(f *testing.F) {
	m, _ := NewMessage("execute_request", "s", "u", map[string]string{"code": "1"}, nil)
	m.Channel = "shell"
	js, _ := EncodeWSJSON(m)
	f.Add(js)
	f.Add([]byte(`{"header":{"msg_type":"x"},"channel":"shell","content":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeWSJSON(data, DefaultLimits)
		if err != nil {
			return
		}
		if _, err := EncodeWSJSON(got); err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
	})
}

func FuzzDecodeWSBinary(f *testing.F) {
	m, _ := NewMessage("comm_msg", "s", "u", map[string]string{"a": "1"}, nil)
	m.Channel = "shell"
	m.Buffers = [][]byte{[]byte("one"), {0, 1}}
	b, _ := EncodeWSBinary(m)
	f.Add(b)
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 8})
	f.Add([]byte{255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeWSBinary(data, DefaultLimits)
		if err != nil {
			return
		}
		if _, err := EncodeWSBinary(got); err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
	})
}

func FuzzDecodeWSV1(f *testing.F) {
	m, _ := NewMessage("execute_request", "s", "u", map[string]string{"code": "1"}, nil)
	m.Channel = "shell"
	m.Buffers = [][]byte{[]byte("buf")}
	b, _ := EncodeWSV1(m)
	f.Add(b)
	f.Add(make([]byte, 8))
	f.Add([]byte{6, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeWSV1(data, DefaultLimits)
		if err != nil {
			return
		}
		if _, err := EncodeWSV1(got); err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
	})
}

// joinFrames and splitFrames turn frames into one fuzzable byte string: each frame is a
// one-byte length (frames are cut at 255 bytes) and its bytes.
func joinFrames(frames [][]byte) []byte {
	var out []byte
	for _, f := range frames {
		if len(f) > 255 {
			f = f[:255]
		}
		out = append(out, byte(len(f)))
		out = append(out, f...)
	}
	return out
}

func splitFrames(data []byte) [][]byte {
	var frames [][]byte
	for len(data) > 0 {
		n := int(data[0])
		data = data[1:]
		if n > len(data) {
			n = len(data)
		}
		frames = append(frames, data[:n])
		data = data[n:]
	}
	return frames
}
