package jupyter

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// python runs testdata/interop.py with Debian's interpreter (which has jupyter_client and
// jupyter_server).
func python(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", append([]string{"testdata/interop.py"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "interop.py %v: %s", args, stderr.String())
	return out
}

func b64frames(t *testing.T, frames [][]byte) []byte {
	t.Helper()
	enc := make([]string, len(frames))
	for i, f := range frames {
		enc[i] = base64.StdEncoding.EncodeToString(f)
	}
	out, err := json.Marshal(enc)
	require.NoError(t, err)
	return out
}

func TestInteropJupyterClientSignsWhatWeVerify(t *testing.T) {
	const key = "5f1c0c9e-interop-key"
	var got struct {
		Frames []string `json:"frames"`
		MsgID  string   `json:"msg_id"`
	}
	require.NoError(t, json.Unmarshal(python(t, nil, "zmq-serialize", key), &got))
	frames := make([][]byte, len(got.Frames))
	for i, f := range got.Frames {
		var err error
		frames[i], err = base64.StdEncoding.DecodeString(f)
		require.NoError(t, err)
	}
	m, err := NewCodec(key).Decode(frames)
	require.NoError(t, err)
	assert.Equal(t, got.MsgID, m.Header.MsgID)
	assert.Equal(t, "execute_request", m.Header.MsgType)
	assert.Equal(t, [][]byte{[]byte("py-identity")}, m.Identities)
	assert.Equal(t, [][]byte{[]byte("\x00\x01buf")}, m.Buffers)
	var content struct{ Code string }
	require.NoError(t, m.DecodeContent(&content))
	assert.Equal(t, "print(6*7)", content.Code)

	_, err = NewCodec("wrong").Decode(frames)
	assert.ErrorIs(t, err, ErrBadSignature)
}

func TestInteropJupyterClientVerifiesWhatWeSign(t *testing.T) {
	const key = "another-interop-key"
	parent := &Header{MsgID: "parent-1", MsgType: "execute_request", Version: ProtocolVersion}
	m, err := NewMessage("execute_reply", "go-session", "go", map[string]any{"status": "ok", "execution_count": 7}, parent)
	require.NoError(t, err)
	m.Identities = [][]byte{[]byte("go-identity")}
	m.Buffers = [][]byte{[]byte("go-buffer")}
	frames, err := NewCodec(key).Encode(m)
	require.NoError(t, err)

	var got struct {
		Identities  []string       `json:"identities"`
		MsgType     string         `json:"msg_type"`
		MsgID       string         `json:"msg_id"`
		Content     map[string]any `json:"content"`
		ParentMsgID string         `json:"parent_msg_id"`
		Buffers     []string       `json:"buffers"`
	}
	require.NoError(t, json.Unmarshal(python(t, b64frames(t, frames), "zmq-deserialize", key), &got))
	assert.Equal(t, "execute_reply", got.MsgType)
	assert.Equal(t, m.Header.MsgID, got.MsgID)
	assert.Equal(t, "parent-1", got.ParentMsgID)
	assert.EqualValues(t, 7, got.Content["execution_count"])
	assert.Equal(t, []string{base64.StdEncoding.EncodeToString([]byte("go-identity"))}, got.Identities)
	assert.Equal(t, []string{base64.StdEncoding.EncodeToString([]byte("go-buffer"))}, got.Buffers)

	// jupyter_client refuses a tampered message too.
	frames[6] = []byte(`{"status":"error"}`)
	cmd := exec.Command("/usr/bin/python3", "testdata/interop.py", "zmq-deserialize", key)
	cmd.Stdin = bytes.NewReader(b64frames(t, frames))
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "Invalid Signature")
}

func TestInteropWebsocketBinaryFrames(t *testing.T) {
	// Jupyter Server's frame decodes here ...
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(python(t, nil, "ws-binary-serialize"))))
	require.NoError(t, err)
	m, err := DecodeWSBinary(raw, DefaultLimits)
	require.NoError(t, err)
	assert.Equal(t, "iopub", m.Channel)
	assert.Equal(t, "display_data", m.Header.MsgType)
	assert.Equal(t, [][]byte{[]byte("first"), []byte("\xff\x00second")}, m.Buffers)

	// ... and ours decodes there.
	enc, err := EncodeWSBinary(m)
	require.NoError(t, err)
	var got struct {
		Channel string   `json:"channel"`
		MsgType string   `json:"msg_type"`
		Buffers []string `json:"buffers"`
	}
	require.NoError(t, json.Unmarshal(python(t, []byte(base64.StdEncoding.EncodeToString(enc)), "ws-binary-deserialize"), &got))
	assert.Equal(t, "iopub", got.Channel)
	assert.Equal(t, "display_data", got.MsgType)
	assert.Len(t, got.Buffers, 2)
}

func TestInteropWebsocketV1Frames(t *testing.T) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(python(t, nil, "ws-v1-serialize"))))
	require.NoError(t, err)
	m, err := DecodeWSV1(raw, DefaultLimits)
	require.NoError(t, err)
	assert.Equal(t, "shell", m.Channel)
	assert.Equal(t, "execute_request", m.Header.MsgType)
	assert.Equal(t, [][]byte{[]byte("buf-1")}, m.Buffers)

	enc, err := EncodeWSV1(m)
	require.NoError(t, err)
	assert.Equal(t, raw[:8], enc[:8], "same offset count as Jupyter Server")
	var got struct {
		Channel string         `json:"channel"`
		MsgType string         `json:"msg_type"`
		Content map[string]any `json:"content"`
		Buffers []string       `json:"buffers"`
	}
	require.NoError(t, json.Unmarshal(python(t, []byte(base64.StdEncoding.EncodeToString(enc)), "ws-v1-deserialize"), &got))
	assert.Equal(t, "shell", got.Channel)
	assert.Equal(t, "execute_request", got.MsgType)
	assert.Equal(t, "1+1", got.Content["code"])
	assert.Len(t, got.Buffers, 1)
}
