// Package cliflag holds the flag types the elastic-jupyter binaries share.
package cliflag

import (
	"flag"
	"strings"
)

// List is a repeatable flag of strings, or of a string type such as corev1.ResourceName:
// every use of the flag appends its value to Values, so --dir a --dir b gives [a b]. With
// Comma, each value is also a comma-separated list: --label a=1,b=2 gives [a=1 b=2], spaces
// around the items are trimmed and empty items dropped. Without it a value is kept whole,
// commas and all (a path, a taint).
//
//	var dirs cliflag.List[string]
//	fs.Var(&dirs, "kernelspec-dir", "a kernels directory (repeatable)")
//	gpus := cliflag.List[corev1.ResourceName]{Comma: true}
//	fs.Var(&gpus, "gpu-resource", "a GPU resource name (repeatable or a comma list)")
//
// Validating the values is the caller's business, after fs.Parse.
type List[T ~string] struct {
	// Values are the values given, in order.
	Values []T
	// Comma splits each value at commas.
	Comma bool
}

var _ flag.Getter = (*List[string])(nil)

// Set appends v (or, with Comma, its items).
func (l *List[T]) Set(v string) error {
	if !l.Comma {
		l.Values = append(l.Values, T(v))
		return nil
	}
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			l.Values = append(l.Values, T(item))
		}
	}
	return nil
}

// String returns the values joined by commas.
func (l *List[T]) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(l.Values))
	for i, v := range l.Values {
		s[i] = string(v)
	}
	return strings.Join(s, ",")
}

// Get returns Values.
func (l *List[T]) Get() any { return l.Values }
