package devnode

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// expand replaces $(VAR) in s with the value lookup gives, as the kubelet does for env
// values, command, args and subPathExpr: $$ is a literal $, and a reference to an unknown
// variable is left as it is.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// envList is an ordered environment where a later Set replaces an earlier value in place.
type envList struct {
	names  []string
	values map[string]string
}

func newEnvList() *envList { return &envList{values: map[string]string{}} }

func (e *envList) Set(name, value string) {
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

func (e *envList) Lookup(name string) (string, bool) { v, ok := e.values[name]; return v, ok }

// Environ returns NAME=VALUE pairs in first-set order.
func (e *envList) Environ() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.values[n])
	}
	return out
}

// podFacts are what the downward API can tell a container about its pod.
type podFacts struct {
	pod    *corev1.Pod
	podIP  netip.Addr
	hostIP string
	node   corev1.ResourceList // allocatable, for resource fields without a limit
}

// fieldValue resolves a downward API fieldRef path.
func (f *podFacts) fieldValue(path string) (string, error) {
	m := &f.pod.ObjectMeta
	switch path {
	case "metadata.name":
		return m.Name, nil
	case "metadata.namespace":
		return m.Namespace, nil
	case "metadata.uid":
		return string(m.UID), nil
	case "metadata.labels":
		return formatMap(m.Labels), nil
	case "metadata.annotations":
		return formatMap(m.Annotations), nil
	case "spec.nodeName":
		return f.pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return f.pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return f.hostIP, nil
	case "status.podIP", "status.podIPs":
		return f.podIP.String(), nil
	}
	for prefix, values := range map[string]map[string]string{"metadata.labels": m.Labels, "metadata.annotations": m.Annotations} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok {
			if key, ok = strings.CutSuffix(key, "']"); ok {
				return values[key], nil
			}
		}
	}
	return "", fmt.Errorf("fieldRef %q is not supported: use metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'], metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, status.hostIP or status.podIP", path)
}

// formatMap renders labels or annotations as the downward API volume does: key="value" lines,
// sorted by key.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, strconv.Quote(m[k]))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// resourceValue resolves a resourceFieldRef of container c (the named container, else c).
func (f *podFacts) resourceValue(ref *corev1.ResourceFieldSelector, c *corev1.Container) (string, error) {
	if ref.ContainerName != "" {
		c = findContainer(f.pod, ref.ContainerName)
		if c == nil {
			return "", fmt.Errorf("resourceFieldRef names container %q, which the pod does not have", ref.ContainerName)
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef %q needs containerName in a volume", ref.Resource)
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("resourceFieldRef %q is not supported: use limits.cpu, limits.memory, requests.cpu or requests.memory", ref.Resource)
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		if kind == "requests" && name != "cpu" && name != "memory" {
			return "0", nil
		}
		if q, ok = f.node[corev1.ResourceName(name)]; !ok {
			return "0", nil
		}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == "cpu" {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

// findContainer returns the pod's container (or init container) named name.
func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// objectGetter reads the Secrets and ConfigMaps a pod refers to.
type objectGetter interface {
	secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	configMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
}

// configError is a problem with a container's configuration (a missing Secret or key, an
// unsupported field); the container waits with reason CreateContainerConfigError.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// containerEnv builds a container's environment as the kubelet does: the Kubernetes API
// service variables, envFrom, then env (with $(VAR) references to earlier variables), then
// what the runtime adds (PATH, HOSTNAME, HOME) when the container did not set them.
func containerEnv(ctx context.Context, get objectGetter, f *podFacts, c *corev1.Container, base map[string]string, home string) (*envList, error) {
	env := newEnvList()
	baseNames := make([]string, 0, len(base))
	for n := range base {
		baseNames = append(baseNames, n)
	}
	sort.Strings(baseNames)
	for _, n := range baseNames {
		env.Set(n, base[n])
	}
	ns := f.pod.Namespace
	for i, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := get.configMap(ctx, ns, from.ConfigMapRef.Name)
			if err != nil {
				if isOptional(from.ConfigMapRef.Optional) && isNotFound(err) {
					continue
				}
				return nil, configErrorf("envFrom[%d]: configmap %q: %v", i, from.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := get.secret(ctx, ns, from.SecretRef.Name)
			if err != nil {
				if isOptional(from.SecretRef.Optional) && isNotFound(err) {
					continue
				}
				return nil, configErrorf("envFrom[%d]: secret %q: %v", i, from.SecretRef.Name, err)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env.Set(from.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		v, err := envValue(ctx, get, f, c, e, env)
		if err != nil {
			return nil, err
		}
		if v != nil {
			env.Set(e.Name, *v)
		}
	}
	if _, ok := env.Lookup("PATH"); !ok {
		env.Set("PATH", StandardPath)
	}
	if _, ok := env.Lookup("HOSTNAME"); !ok {
		env.Set("HOSTNAME", podHostname(f.pod))
	}
	if _, ok := env.Lookup("HOME"); !ok {
		env.Set("HOME", home)
	}
	return env, nil
}

// envValue resolves one env entry; nil means "leave it out" (an optional missing reference).
func envValue(ctx context.Context, get objectGetter, f *podFacts, c *corev1.Container, e corev1.EnvVar, env *envList) (*string, error) {
	if e.ValueFrom == nil {
		v := expand(e.Value, env.Lookup)
		return &v, nil
	}
	ns := f.pod.Namespace
	from := e.ValueFrom
	switch {
	case from.FieldRef != nil:
		v, err := f.fieldValue(from.FieldRef.FieldPath)
		if err != nil {
			return nil, configErrorf("env %s: %v", e.Name, err)
		}
		return &v, nil
	case from.ResourceFieldRef != nil:
		v, err := f.resourceValue(from.ResourceFieldRef, c)
		if err != nil {
			return nil, configErrorf("env %s: %v", e.Name, err)
		}
		return &v, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := get.secret(ctx, ns, ref.Name)
		if err != nil {
			if isOptional(ref.Optional) && isNotFound(err) {
				return nil, nil
			}
			return nil, configErrorf("env %s: secret %q: %v", e.Name, ref.Name, err)
		}
		b, ok := s.Data[ref.Key]
		if !ok {
			if isOptional(ref.Optional) {
				return nil, nil
			}
			return nil, configErrorf("env %s: secret %q has no key %q", e.Name, ref.Name, ref.Key)
		}
		v := string(b)
		return &v, nil
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := get.configMap(ctx, ns, ref.Name)
		if err != nil {
			if isOptional(ref.Optional) && isNotFound(err) {
				return nil, nil
			}
			return nil, configErrorf("env %s: configmap %q: %v", e.Name, ref.Name, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if isOptional(ref.Optional) {
				return nil, nil
			}
			return nil, configErrorf("env %s: configmap %q has no key %q", e.Name, ref.Name, ref.Key)
		}
		return &v, nil
	}
	return nil, configErrorf("env %s: this valueFrom source is not supported by devnode: use fieldRef, resourceFieldRef, secretKeyRef or configMapKeyRef", e.Name)
}

func isOptional(b *bool) bool { return b != nil && *b }

// podHostname is the pod's hostname: spec.hostname, else its name (truncated as the kubelet
// does to 63 characters).
func podHostname(pod *corev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}
