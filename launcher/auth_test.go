package launcher

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func signed(t *testing.T, key string, at time.Time, nonce string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://launcher/restart", nil)
	if err != nil {
		t.Fatal(err)
	}
	signRequest(r, []byte(key), at, nonce)
	return r
}

func TestVerifier(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v := newVerifier([]byte("kernel-key"))
	v.now = func() time.Time { return now }

	assert.NoError(t, v.verify(signed(t, "kernel-key", now, "nonce-0000000001")))
	assert.ErrorIs(t, v.verify(signed(t, "kernel-key", now, "nonce-0000000001")), errUnauthorized, "a replay is refused")
	assert.ErrorIs(t, v.verify(signed(t, "other-key", now, "nonce-0000000002")), errUnauthorized, "another key is refused")
	assert.ErrorIs(t, v.verify(signed(t, "kernel-key", now.Add(-2*time.Minute), "nonce-0000000003")), errUnauthorized, "a stale timestamp is refused")
	assert.ErrorIs(t, v.verify(signed(t, "kernel-key", now.Add(2*time.Minute), "nonce-0000000004")), errUnauthorized, "a future timestamp is refused")
	assert.ErrorIs(t, v.verify(signed(t, "kernel-key", now, "short")), errUnauthorized, "a short nonce is refused")
	assert.NoError(t, v.verify(signed(t, "kernel-key", now.Add(30*time.Second), "nonce-0000000005")), "within the skew")

	unsigned, _ := http.NewRequest(http.MethodPost, "http://launcher/restart", nil)
	assert.ErrorIs(t, v.verify(unsigned), errUnauthorized)

	// A signature for one path does not authorize another.
	r := signed(t, "kernel-key", now, "nonce-0000000006")
	r.URL.Path = "/shutdown"
	assert.ErrorIs(t, v.verify(r), errUnauthorized)

	// Old nonces are forgotten once outside the window, so memory stays bounded.
	now = now.Add(10 * time.Minute)
	assert.NoError(t, v.verify(signed(t, "kernel-key", now, "nonce-0000000007")))
	assert.Len(t, v.seen, 1)
}

func TestSubstituteArgv(t *testing.T) {
	got := SubstituteArgv([]string{"python3", "-f", "{connection_file}", "--x={connection_file}"}, "/run/k.json")
	assert.Equal(t, []string{"python3", "-f", "/run/k.json", "--x=/run/k.json"}, got)
}
