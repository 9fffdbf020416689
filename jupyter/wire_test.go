package jupyter

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sample(t *testing.T) *Message {
	t.Helper()
	parent := &Header{MsgID: "p-1", Session: "s", MsgType: "execute_request", Version: ProtocolVersion}
	m, err := NewMessage("execute_reply", "session-1", "alice", map[string]any{"status": "ok", "execution_count": 3}, parent)
	require.NoError(t, err)
	m.Identities = [][]byte{[]byte("client-identity")}
	m.Buffers = [][]byte{{0, 1, 2, 255}, []byte("second")}
	return m
}

func TestCodecRoundTrip(t *testing.T) {
	for _, key := range []string{"", "a-secret-key"} {
		c := NewCodec(key)
		m := sample(t)
		frames, err := c.Encode(m)
		require.NoError(t, err)
		assert.Equal(t, Delimiter, string(frames[1]))
		if key == "" {
			assert.Empty(t, frames[2], "no key, no signature")
		} else {
			assert.Len(t, frames[2], 64, "hex HMAC-SHA256")
		}
		got, err := c.Decode(frames)
		require.NoError(t, err)
		assert.Equal(t, m.Header, got.Header)
		assert.Equal(t, m.Identities, got.Identities)
		assert.Equal(t, m.Buffers, got.Buffers)
		assert.JSONEq(t, string(m.Content), string(got.Content))
		assert.Equal(t, "p-1", got.Parent().MsgID)
	}
}

func TestDecodeRefusesTamperedMessages(t *testing.T) {
	c := NewCodec("a-secret-key")
	frames, err := c.Encode(sample(t))
	require.NoError(t, err)

	tampered := append([][]byte(nil), frames...)
	tampered[6] = []byte(`{"status":"error"}`) // content after the delimiter, signature, header, parent, metadata
	_, err = c.Decode(tampered)
	assert.ErrorIs(t, err, ErrBadSignature)

	badSig := append([][]byte(nil), frames...)
	badSig[2] = []byte(strings.Repeat("0", 64))
	_, err = c.Decode(badSig)
	assert.ErrorIs(t, err, ErrBadSignature)

	_, err = NewCodec("another-key").Decode(frames)
	assert.ErrorIs(t, err, ErrBadSignature, "a message signed with another key is refused")
}

func TestDecodeRefusesMalformedAndOversized(t *testing.T) {
	c := NewCodecWithLimits("", Limits{MaxFrame: 64, MaxMessage: 256, MaxFrames: 10})
	cases := map[string][][]byte{
		"no delimiter":       {[]byte("id"), []byte("{}")},
		"too few frames":     {[]byte(Delimiter), []byte(""), []byte(`{"msg_type":"x"}`)},
		"header not JSON":    {[]byte(Delimiter), nil, []byte("nope"), []byte("{}"), []byte("{}"), []byte("{}")},
		"no msg_type":        {[]byte(Delimiter), nil, []byte(`{}`), []byte("{}"), []byte("{}"), []byte("{}")},
		"content not object": {[]byte(Delimiter), nil, []byte(`{"msg_type":"x"}`), []byte("{}"), []byte("{}"), []byte("[1]")},
	}
	for name, frames := range cases {
		_, err := c.Decode(frames)
		assert.ErrorIs(t, err, ErrMalformed, name)
	}
	big := [][]byte{[]byte(Delimiter), nil, []byte(`{"msg_type":"x"}`), []byte("{}"), []byte("{}"), []byte(`{"a":"` + strings.Repeat("x", 100) + `"}`)}
	_, err := c.Decode(big)
	assert.ErrorIs(t, err, ErrTooLarge)
	many := make([][]byte, 11)
	_, err = c.Decode(many)
	assert.ErrorIs(t, err, ErrTooLarge)
}

func TestNullPartsBecomeEmptyObjects(t *testing.T) {
	c := NewCodec("")
	m, err := c.Decode([][]byte{[]byte(Delimiter), nil, []byte(`{"msg_type":"x","msg_id":"1"}`), []byte("null"), []byte("{}"), []byte("{}")})
	require.NoError(t, err)
	assert.Equal(t, "{}", string(m.ParentHeader))
}

func TestNewMessageHeader(t *testing.T) {
	m, err := NewMessage("kernel_info_request", "sess", "bob", nil, nil)
	require.NoError(t, err)
	assert.Regexp(t, `^\w+-\w+-\w+-\w+-\w+$`, m.Header.MsgID)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`, m.Header.Date)
	assert.Equal(t, "5.3", m.Header.Version)
	assert.Equal(t, "{}", string(m.Content))
	var h map[string]any
	frames, err := NewCodec("k").Encode(m)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(frames[2], &h)) // delimiter, signature, header
	for _, k := range []string{"msg_id", "session", "username", "date", "msg_type", "version"} {
		assert.Contains(t, h, k)
	}
}

func TestExecutionState(t *testing.T) {
	m, err := NewMessage("status", "s", "u", map[string]string{"execution_state": "busy"}, nil)
	require.NoError(t, err)
	st, ok := m.ExecutionState()
	assert.True(t, ok)
	assert.Equal(t, "busy", st)
	m.Header.MsgType = "stream"
	_, ok = m.ExecutionState()
	assert.False(t, ok)
}

func TestConnectionInfoValidation(t *testing.T) {
	good := `{"ip":"127.0.0.1","transport":"tcp","shell_port":1,"iopub_port":2,"stdin_port":3,"control_port":4,"hb_port":5,"key":"k","signature_scheme":"hmac-sha256"}`
	ci, err := ParseConnectionInfo([]byte(good))
	require.NoError(t, err)
	ep, err := ci.Endpoint(ChannelIOPub)
	require.NoError(t, err)
	assert.Equal(t, "tcp://127.0.0.1:2", ep)
	assert.NotContains(t, ci.String(), `"k"`)
	assert.Contains(t, ci.String(), "redacted")

	for name, bad := range map[string]string{
		"duplicate ports": strings.Replace(good, `"hb_port":5`, `"hb_port":1`, 1),
		"port zero":       strings.Replace(good, `"hb_port":5`, `"hb_port":0`, 1),
		"ipc transport":   strings.Replace(good, `"tcp"`, `"ipc"`, 1),
		"md5 signature":   strings.Replace(good, `hmac-sha256`, `hmac-md5`, 1),
		"not json":        `{`,
	} {
		_, err := ParseConnectionInfo([]byte(bad))
		assert.Error(t, err, name)
	}
	_, err = ParseConnectionInfo([]byte(strings.Replace(good, `"key":"k"`, `"key":"s3cr3t-key"`, 1)[:40]))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t", "errors never carry the key")
}
