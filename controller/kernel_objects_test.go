package controller

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

func TestNewConnectionDrawsAKeyAndFiveDistinctPortsInRange(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := newConnection("python3")
		require.NoError(t, err)
		assert.Regexp(t, "^[0-9a-f]{64}$", c.Key)
		assert.False(t, seen[c.Key], "keys are never reused")
		seen[c.Key] = true
		ports := map[int]bool{}
		for _, p := range []int{c.ShellPort, c.IOPubPort, c.StdinPort, c.ControlPort, c.HBPort} {
			assert.GreaterOrEqual(t, p, kernelPortMin)
			assert.Less(t, p, kernelPortMax)
			ports[p] = true
		}
		assert.Len(t, ports, 5)
		assert.Equal(t, "tcp", c.Transport)
		assert.Equal(t, "hmac-sha256", c.SignatureScheme)
		assert.Empty(t, c.IP)
	}
	c, _ := newConnection("python3")
	s, err := desiredConnectionSecret(&ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: "id", Namespace: "ns"}}, c)
	require.NoError(t, err)
	assert.Equal(t, "id-connection", s.Name)
	var m map[string]any
	require.NoError(t, json.Unmarshal(s.Data[ejv1.ConnectionFileKey], &m))
	assert.Contains(t, m, "ip", "the file has an (empty) ip for the launcher")
	assert.Equal(t, "python3", m["kernel_name"])
}

func TestKernelPodName(t *testing.T) {
	id := "219cfd49-89ad-428c-8e0d-3e61e15d79a7"
	for _, tc := range []struct{ user, want string }{
		{"jovyan", "jovyan-" + id},
		{"", id},
		{"Alice@Example.COM", "alice-example-com-" + id},
		{"--weird__name--", "weird-name-" + id},
		{"数据", id},
		{"a.b", "a-b-" + id},
		{string(make([]byte, 100)), id},
		{"x234567890123456789012345678901234567890123456789012345678901234567890", "x23456789012345678901234567890123456789012345678901234567890123-" + id},
	} {
		assert.Equal(t, tc.want, kernelPodName(tc.user, id), "user %q", tc.user)
	}
}

func TestDesiredKernelPod(t *testing.T) {
	kernel := func(mod func(*ejv1.JupyterKernel)) *ejv1.JupyterKernel {
		k := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: "kid", Namespace: "ns", Labels: map[string]string{ejv1.LabelGateway: "gw"}}}
		k.Spec.User = "alice"
		if mod != nil {
			mod(k)
		}
		return k
	}
	spec := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "py", Namespace: "team"}, Spec: ejv1.JupyterKernelSpecSpec{
		Image: "spec-image", Command: []string{"python3", "-f", "{connection_file}"},
		Env:       []corev1.EnvVar{{Name: "A", Value: "spec"}, {Name: "B", Value: "spec"}},
		Resources: &ejv1.KernelResources{GPUs: ptr.To[int32](2), CPU: ptr.To(resource.MustParse("2")), Memory: ptr.To(resource.MustParse("4Gi"))},
	}}
	tmpl := &ejv1.JupyterKernelTemplate{Spec: ejv1.JupyterKernelTemplateSpec{Template: &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "vision", ejv1.LabelComponent: "spoofed"}, Annotations: map[string]string{"cost": "42"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers: []corev1.Container{
				{Name: "sidecar", Image: "side"},
				{Name: "kernel", Image: "tmpl-image", Args: []string{"ignored"}, Env: []corev1.EnvVar{{Name: "A", Value: "tmpl"}, {Name: "T", Value: "tmpl"}}},
			},
			ServiceAccountName: "kernels",
		},
	}}}
	cases := []struct {
		name    string
		src     kernelSources
		check   func(t *testing.T, p *corev1.Pod)
		wantErr string
	}{
		{
			name: "kernelspec over template, kernel env last",
			src: kernelSources{kernel: kernel(func(k *ejv1.JupyterKernel) {
				k.Spec.Env = []corev1.EnvVar{{Name: "B", Value: "kernel"}, {Name: "KERNEL_USERNAME", Value: "alice"}}
			}), spec: spec, template: tmpl},
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Equal(t, "alice-kid", p.Name)
				assert.Equal(t, corev1.RestartPolicyNever, p.Spec.RestartPolicy, "a kernel pod is never restarted in place")
				assert.Equal(t, "kernels", p.Spec.ServiceAccountName)
				require.Len(t, p.Spec.Containers, 2)
				c := p.Spec.Containers[1]
				assert.Equal(t, "spec-image", c.Image)
				assert.Equal(t, []string{"python3", "-f", "{connection_file}"}, c.Command)
				assert.Nil(t, c.Args)
				assert.Equal(t, []corev1.EnvVar{{Name: "A", Value: "spec"}, {Name: "T", Value: "tmpl"}, {Name: "B", Value: "kernel"}, {Name: "KERNEL_USERNAME", Value: "alice"}}, c.Env)
				assert.Equal(t, "2", ptr.To(c.Resources.Limits[corev1.ResourceCPU]).String())
				assert.Equal(t, "4Gi", ptr.To(c.Resources.Requests[corev1.ResourceMemory]).String())
				assert.Len(t, c.Resources.Limits, 2, "no GPU limit: the webhook sets it")
				assert.Equal(t, "side", p.Spec.Containers[0].Image, "other containers are kept")
				assert.Equal(t, map[string]string{
					"team": "vision", ejv1.LabelComponent: ejv1.ComponentKernel, ejv1.LabelKernelID: "kid",
					ejv1.LabelManagedBy: ejv1.ManagedBy, ejv1.LabelKernelSpec: "py", ejv1.LabelGateway: "gw",
				}, p.Labels)
				assert.Equal(t, map[string]string{"cost": "42", ejv1.AnnotationConnectionSecret: "kid-connection", ejv1.AnnotationKernelSpec: "team/py"}, p.Annotations)
				assert.Equal(t, ptr.To(false), p.Spec.AutomountServiceAccountToken)
				assert.Equal(t, ptr.To(false), p.Spec.EnableServiceLinks)
			},
		},
		{
			name: "the kernel's template over the kernelspec's",
			src: kernelSources{kernel: kernel(func(k *ejv1.JupyterKernel) {
				k.Spec.Template = &corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"purpose": "demo"}},
					Spec: corev1.PodSpec{
						AutomountServiceAccountToken: ptr.To(true),
						Containers:                   []corev1.Container{{Name: "kernel", WorkingDir: "/work"}},
					},
				}
			}), spec: spec, template: tmpl},
			check: func(t *testing.T, p *corev1.Pod) {
				c := p.Spec.Containers[1]
				assert.Equal(t, "/work", c.WorkingDir)
				assert.Equal(t, "spec-image", c.Image)
				assert.Equal(t, "demo", p.Labels["purpose"])
				assert.Equal(t, "vision", p.Labels["team"])
				assert.Equal(t, ptr.To(true), p.Spec.AutomountServiceAccountToken, "a template may ask for credentials")
			},
		},
		{
			name: "kernelspec without template or image uses no template",
			src:  kernelSources{kernel: kernel(func(k *ejv1.JupyterKernel) { k.Spec.User = "" }), spec: spec},
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Equal(t, "kid", p.Name)
				require.Len(t, p.Spec.Containers, 1)
				assert.Equal(t, "kernel", p.Spec.Containers[0].Name)
			},
		},
		{
			name: "a kernel with only its own template",
			src: kernelSources{kernel: kernel(func(k *ejv1.JupyterKernel) {
				k.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "img", Command: []string{"k"}}}}}
			})},
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Equal(t, "main", p.Spec.Containers[0].Name, "the first container is the kernel")
				assert.NotContains(t, p.Labels, ejv1.LabelKernelSpec)
				assert.NotContains(t, p.Annotations, ejv1.AnnotationKernelSpec)
			},
		},
		{
			name:    "nothing to run",
			src:     kernelSources{kernel: kernel(nil)},
			wantErr: "spec.kernelSpec",
		},
		{
			name:    "no image",
			src:     kernelSources{kernel: kernel(nil), spec: &ejv1.JupyterKernelSpec{Spec: ejv1.JupyterKernelSpecSpec{Command: []string{"k"}}}},
			wantErr: "spec.image",
		},
		{
			name: "no command",
			src: kernelSources{kernel: kernel(func(k *ejv1.JupyterKernel) {
				k.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kernel", Image: "img"}}}}
			})},
			wantErr: "spec.command",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := desiredKernelPod(tc.src)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, p)
		})
	}
	assert.Equal(t, corev1.RestartPolicyAlways, tmpl.Spec.Template.Spec.RestartPolicy, "the template object is not changed")
}

func TestMergeEnv(t *testing.T) {
	for _, tc := range []struct {
		base, over, want []corev1.EnvVar
	}{
		{nil, nil, []corev1.EnvVar{}},
		{[]corev1.EnvVar{{Name: "A", Value: "1"}}, nil, []corev1.EnvVar{{Name: "A", Value: "1"}}},
		{[]corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "1"}}, []corev1.EnvVar{{Name: "B", Value: "2"}, {Name: "C", Value: "2"}},
			[]corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}, {Name: "C", Value: "2"}}},
	} {
		got := mergeEnv(tc.base, tc.over...)
		if len(tc.want) == 0 {
			assert.Empty(t, got)
			continue
		}
		assert.Equal(t, tc.want, got)
	}
}

func TestPruneNulls(t *testing.T) {
	m := map[string]any{
		"metadata": map[string]any{"name": "x", "creationTimestamp": nil},
		"spec": map[string]any{
			"volumes": []any{map[string]any{"name": "tmp", "emptyDir": map[string]any{}, "secret": nil}},
			"x":       nil,
		},
	}
	pruneNulls(m)
	assert.Equal(t, map[string]any{
		"metadata": map[string]any{"name": "x"},
		"spec":     map[string]any{"volumes": []any{map[string]any{"name": "tmp", "emptyDir": map[string]any{}}}},
	}, m)
}
