package gateway

import (
	"net/url"
	"strings"
)

// originAllowed reports whether a browser page of origin may open a websocket to the gateway
// reached at host: its own host, or one of allowed ("*" allows every origin).
func originAllowed(origin, host string, allowed []string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	for _, a := range allowed {
		a = strings.TrimRight(strings.TrimSpace(a), "/")
		if a == "*" || strings.EqualFold(a, u.Scheme+"://"+u.Host) {
			return true
		}
	}
	return false
}
