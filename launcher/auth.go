package launcher

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names of a signed request.
const (
	headerTimestamp = "X-Launcher-Timestamp"
	headerNonce     = "X-Launcher-Nonce"
	authScheme      = "Jupyter-HMAC "
)

// signature is hex(HMAC-SHA256(key, method \n path \n timestamp \n nonce)).
func signature(key []byte, method, path, timestamp, nonce string) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s\n%s\n%s\n%s", method, path, timestamp, nonce)
	return hex.EncodeToString(m.Sum(nil))
}

// signRequest adds the authentication headers to r.
func signRequest(r *http.Request, key []byte, now time.Time, nonce string) {
	ts := strconv.FormatInt(now.Unix(), 10)
	r.Header.Set(headerTimestamp, ts)
	r.Header.Set(headerNonce, nonce)
	r.Header.Set("Authorization", authScheme+signature(key, r.Method, r.URL.Path, ts, nonce))
}

// verifier checks signed requests and remembers nonces for the skew window.
type verifier struct {
	key []byte
	now func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time
}

func newVerifier(key []byte) *verifier {
	return &verifier{key: key, now: time.Now, seen: map[string]time.Time{}}
}

var errUnauthorized = errors.New("unauthorized")

// verify returns nil for a correctly signed, fresh, never seen request.
func (v *verifier) verify(r *http.Request) error {
	ts, nonce := r.Header.Get(headerTimestamp), r.Header.Get(headerNonce)
	sig, ok := strings.CutPrefix(r.Header.Get("Authorization"), authScheme)
	if !ok || ts == "" || len(nonce) < 16 || len(nonce) > 64 {
		return fmt.Errorf("%w: missing or malformed signature headers", errUnauthorized)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", errUnauthorized)
	}
	now := v.now()
	if d := now.Sub(time.Unix(sec, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return fmt.Errorf("%w: timestamp outside the allowed clock skew", errUnauthorized)
	}
	want := signature(v.key, r.Method, r.URL.Path, ts, nonce)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return fmt.Errorf("%w: bad signature", errUnauthorized)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for n, t := range v.seen {
		if now.Sub(t) > 2*MaxClockSkew {
			delete(v.seen, n)
		}
	}
	if _, replay := v.seen[nonce]; replay {
		return fmt.Errorf("%w: replayed request", errUnauthorized)
	}
	v.seen[nonce] = now
	return nil
}
