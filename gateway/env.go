package gateway

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxEnvValue is the longest environment value a client may pass.
const MaxEnvValue = 4096

// validateEnv checks a client's kernel environment: only KERNEL_* names and the allowed ones,
// values of at most MaxEnvValue characters without $, backticks or control characters. The
// error names the variable and says what is allowed.
func validateEnv(env map[string]string, allowed []string) error {
	names := make([]string, 0, len(env))
	for n := range env {
		names = append(names, n)
	}
	slices.Sort(names) // report the same variable every time
	for _, name := range names {
		value := env[name]
		if !validEnvName(name) {
			return fmt.Errorf("environment variable %q: not a valid name (letters, digits and _, not starting with a digit)", name)
		}
		if !strings.HasPrefix(name, "KERNEL_") && !slices.Contains(allowed, name) {
			return fmt.Errorf("environment variable %q: not allowed; clients may pass KERNEL_* variables and those the gateway's allowedEnv lists", name)
		}
		if len(value) > MaxEnvValue {
			return fmt.Errorf("environment variable %q: value of %d characters; at most %d are allowed", name, len(value), MaxEnvValue)
		}
		for _, r := range value {
			if r == '$' || r == '`' || r < 0x20 || r == 0x7f {
				return fmt.Errorf("environment variable %q: the value contains %q; $, backticks and control characters are not allowed", name, r)
			}
		}
	}
	return nil
}

func validEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i, r := range n {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// launchTimeout is the gateway's launch timeout, shortened by the client's
// KERNEL_LAUNCH_TIMEOUT (seconds) when that is smaller.
func launchTimeout(env map[string]string, max time.Duration) (time.Duration, error) {
	v, ok := env["KERNEL_LAUNCH_TIMEOUT"]
	if !ok {
		return max, nil
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || secs <= 0 {
		return 0, fmt.Errorf("environment variable %q: %q is not a positive number of seconds", "KERNEL_LAUNCH_TIMEOUT", v)
	}
	if d := time.Duration(secs * float64(time.Second)); d < max {
		return d, nil
	}
	return max, nil
}
