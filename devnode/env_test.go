package devnode

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "a", "POD_IP": "127.0.0.5", "EMPTY": ""}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for in, want := range map[string]string{
		"plain":             "plain",
		"$(A)":              "a",
		"--ip=$(POD_IP)":    "--ip=127.0.0.5",
		"$(A)$(A)":          "aa",
		"$(MISSING)":        "$(MISSING)",
		"$$(A)":             "$(A)",
		"$$":                "$",
		"$(EMPTY)x":         "x",
		"$A":                "$A",
		"cost $5":           "cost $5",
		"$(unterminated":    "$(unterminated",
		"end$":              "end$",
		"$()":               "$()",
		"{connection_file}": "{connection_file}",
	} {
		assert.Equal(t, want, expand(in, lookup), in)
	}
}

type fakeObjects struct {
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
}

func (f *fakeObjects) secret(_ context.Context, _, name string) (*corev1.Secret, error) {
	if s, ok := f.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func (f *fakeObjects) configMap(_ context.Context, _, name string) (*corev1.ConfigMap, error) {
	if c, ok := f.configMaps[name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func TestContainerEnv(t *testing.T) {
	objs := &fakeObjects{
		secrets:    map[string]*corev1.Secret{"s": {Data: map[string][]byte{"token": []byte("t0k"), "other": []byte("o")}}},
		configMaps: map[string]*corev1.ConfigMap{"cm": {Data: map[string]string{"MODE": "fast", "LEVEL": "3"}}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u-1", Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"}},
		Spec:       corev1.PodSpec{NodeName: "n1", ServiceAccountName: "sa"},
	}
	facts := &podFacts{pod: pod, podIP: netip.MustParseAddr("127.0.0.7"), hostIP: "127.0.0.1", node: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	c := &corev1.Container{
		Name: "c",
		EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}, Prefix: "CFG_"},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptrTo(true)}},
		},
		Env: []corev1.EnvVar{
			{Name: "NAME", ValueFrom: field("metadata.name")},
			{Name: "NS", ValueFrom: field("metadata.namespace")},
			{Name: "UID", ValueFrom: field("metadata.uid")},
			{Name: "TEAM", ValueFrom: field("metadata.labels['team']")},
			{Name: "NOTE", ValueFrom: field("metadata.annotations['note']")},
			{Name: "NODE", ValueFrom: field("spec.nodeName")},
			{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
			{Name: "IP", ValueFrom: field("status.podIP")},
			{Name: "HOST_IP", ValueFrom: field("status.hostIP")},
			{Name: "URL", Value: "http://$(IP):8000/$(NAME)"},
			{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "token"}}},
			{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "MODE"}}},
			{Name: "OPTIONAL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "nope", Optional: ptrTo(true)}}},
			{Name: "CPUS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
			{Name: "HOME", Value: "/home/custom"},
		},
	}
	env, err := containerEnv(context.Background(), objs, facts, c, map[string]string{"KUBERNETES_SERVICE_HOST": "127.0.0.1"}, "/root")
	require.NoError(t, err)
	want := map[string]string{
		"KUBERNETES_SERVICE_HOST": "127.0.0.1", "CFG_MODE": "fast", "CFG_LEVEL": "3",
		"NAME": "p", "NS": "ns", "UID": "u-1", "TEAM": "a", "NOTE": "x", "NODE": "n1", "SA": "sa",
		"IP": "127.0.0.7", "HOST_IP": "127.0.0.1", "URL": "http://127.0.0.7:8000/p", "TOKEN": "t0k", "MODE": "fast",
		"CPUS": "4", "HOME": "/home/custom", "PATH": StandardPath, "HOSTNAME": "p",
	}
	for k, v := range want {
		got, ok := env.Lookup(k)
		assert.True(t, ok, "%s missing", k)
		assert.Equal(t, v, got, k)
	}
	_, ok := env.Lookup("OPTIONAL")
	assert.False(t, ok, "an optional missing key is left out")
	assert.Len(t, env.Environ(), len(want))

	for _, tc := range []struct {
		env  corev1.EnvVar
		want string
	}{
		{corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k"}}}, `env X: secret "gone": secrets "gone" not found`},
		{corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}}, `env X: secret "s" has no key "k"`},
		{corev1.EnvVar{Name: "X", ValueFrom: field("spec.nope")}, `fieldRef "spec.nope" is not supported`},
	} {
		_, err := containerEnv(context.Background(), objs, facts, &corev1.Container{Name: "c", Env: []corev1.EnvVar{tc.env}}, nil, "/")
		var ce *configError
		require.True(t, errors.As(err, &ce), "%v is not a configuration error", err)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestFormatMap(t *testing.T) {
	assert.Equal(t, "a=\"1\"\nb=\"two words\"", formatMap(map[string]string{"b": "two words", "a": "1"}))
	assert.Equal(t, "", formatMap(nil))
}
