package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

func TestDesiredNotebookDeployment(t *testing.T) {
	nb := func(mod func(*ejv1.JupyterNotebook)) *ejv1.JupyterNotebook {
		n := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "jupyternotebook-elastic", Namespace: "default"}}
		if mod != nil {
			mod(n)
		}
		return n
	}
	gateway := &notebookGateway{URL: "http://gw.default.svc:8888", TokenSecret: "gw-token", LaunchTimeout: 300}
	env := func(c corev1.Container) map[string]corev1.EnvVar {
		m := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			m[e.Name] = e
		}
		return m
	}
	cases := []struct {
		name  string
		nb    *ejv1.JupyterNotebook
		gw    *notebookGateway
		check func(t *testing.T, c corev1.Container, ps corev1.PodSpec)
	}{
		{
			name: "original: gateway, auth disabled",
			nb:   nb(func(n *ejv1.JupyterNotebook) { n.Spec.Auth = &ejv1.JupyterAuth{Mode: ejv1.ModeJupyterAuthDisable} }),
			gw:   gateway,
			check: func(t *testing.T, c corev1.Container, ps corev1.PodSpec) {
				e := env(c)
				assert.Equal(t, "http://gw.default.svc:8888", e[EnvGatewayURL].Value)
				assert.Equal(t, "330", e[EnvGatewayTimeout].Value)
				assert.NotContains(t, e, EnvGatewayToken, "the gateway token is in no environment variable")
				assert.Equal(t, NotebookGatewayTokenDir+"/token", e[EnvGatewayTokenFile].Value, "but in a file")
				assert.NotContains(t, e, EnvNotebookToken)
				assert.Equal(t, notebookCommand, c.Command)
				assert.Equal(t, notebookNoAuthArgs, c.Args)
				vols := map[string]corev1.Volume{}
				for _, v := range ps.Volumes {
					vols[v.Name] = v
				}
				require.Contains(t, vols, "gateway-token")
				assert.Equal(t, "gw-token", vols["gateway-token"].Secret.SecretName, "the notebook's own gateway token Secret")
				assert.Equal(t, []corev1.KeyToPath{{Key: "token", Path: "token"}}, vols["gateway-token"].Secret.Items)
				assert.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: "gateway-token", MountPath: NotebookGatewayTokenDir, ReadOnly: true})
				assert.Equal(t, NotebookConfigDir, e[EnvJupyterConfig].Value, "its configuration reads the token file")
				assert.Equal(t, "jupyternotebook-elastic-config", vols["elastic-jupyter-config"].ConfigMap.Name)
			},
		},
		{
			name: "no gateway, auth enabled by default",
			nb:   nb(nil),
			check: func(t *testing.T, c corev1.Container, ps corev1.PodSpec) {
				e := env(c)
				assert.NotContains(t, e, EnvGatewayURL)
				assert.Equal(t, "jupyternotebook-elastic-auth", e[EnvNotebookToken].ValueFrom.SecretKeyRef.Name)
				assert.Equal(t, "password", e[EnvNotebookPassword].ValueFrom.SecretKeyRef.Key)
				assert.Equal(t, NotebookConfigDir, e[EnvJupyterConfig].Value)
				assert.Empty(t, c.Args)
				require.Len(t, ps.Volumes, 1)
				assert.Equal(t, "jupyternotebook-elastic-config", ps.Volumes[0].ConfigMap.Name)
				assert.Equal(t, NotebookConfigDir, c.VolumeMounts[0].MountPath)
			},
		},
		{
			name: "a Secret of the user's",
			nb: nb(func(n *ejv1.JupyterNotebook) {
				n.Spec.Auth = &ejv1.JupyterAuth{SecretRef: &corev1.LocalObjectReference{Name: "mine"}}
			}),
			check: func(t *testing.T, c corev1.Container, _ corev1.PodSpec) {
				assert.Equal(t, "mine", env(c)[EnvNotebookToken].ValueFrom.SecretKeyRef.Name)
			},
		},
		{
			name: "template merged over the defaults; ours win where they must",
			nb: nb(func(n *ejv1.JupyterNotebook) {
				n.Spec.Auth = &ejv1.JupyterAuth{Mode: ejv1.ModeJupyterAuthDisable}
				n.Spec.Template = &corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"user": "alice", ejv1.LabelInstance: "spoof"}},
					Spec: corev1.PodSpec{
						NodeSelector: map[string]string{"pool": "cpu"},
						Containers: []corev1.Container{{
							Name: "notebook", Image: "mine:2", Args: []string{"--NotebookApp.default_url=/lab"},
							Env:       []corev1.EnvVar{{Name: "FOO", Value: "bar"}, {Name: EnvGatewayURL, Value: "http://elsewhere"}},
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
						}},
					},
				}
			}),
			gw: gateway,
			check: func(t *testing.T, c corev1.Container, ps corev1.PodSpec) {
				assert.Equal(t, "mine:2", c.Image)
				assert.Equal(t, append([]string{"--NotebookApp.default_url=/lab"}, notebookNoAuthArgs...), c.Args)
				assert.Equal(t, notebookCommand, c.Command)
				e := env(c)
				assert.Equal(t, "bar", e["FOO"].Value)
				assert.Equal(t, "http://gw.default.svc:8888", e[EnvGatewayURL].Value, "the gateway URL is the controller's")
				assert.Equal(t, "1", c.Resources.Requests.Cpu().String())
				assert.Equal(t, "256Mi", c.Resources.Requests.Memory().String())
				assert.Equal(t, "cpu", ps.NodeSelector["pool"])
				assert.Equal(t, "/api", c.ReadinessProbe.HTTPGet.Path)
				assert.Equal(t, "/api", c.LivenessProbe.HTTPGet.Path)
				assert.True(t, *ps.SecurityContext.RunAsNonRoot)
				assert.Equal(t, ptr.To(false), c.SecurityContext.AllowPrivilegeEscalation)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := desiredNotebookDeployment(tc.nb, "stock:1", tc.gw)
			require.NoError(t, err)
			assert.Equal(t, "jupyternotebook-elastic", d.Name, "named after the CR, as in the original")
			assert.EqualValues(t, 1, *d.Spec.Replicas)
			for k, v := range d.Spec.Selector.MatchLabels {
				assert.Equal(t, v, d.Spec.Template.Labels[k], "the selector matches the pods")
			}
			ps := d.Spec.Template.Spec
			c := ps.Containers[mainContainer(&ps, NotebookContainer)]
			if tc.nb.Spec.Template == nil {
				assert.Equal(t, "stock:1", c.Image)
			}
			for _, e := range c.Env {
				if e.Name == EnvNotebookToken || e.Name == EnvNotebookPassword || e.Name == EnvGatewayToken {
					assert.Empty(t, e.Value, "%s comes from a Secret, never a literal", e.Name)
				}
			}
			tc.check(t, c, ps)
		})
	}
}

func TestNotebookLiteralSecret(t *testing.T) {
	n := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "nb", Namespace: "ns"}}
	n.Spec.Auth = &ejv1.JupyterAuth{Token: ptr.To("t"), Password: ptr.To("p")}
	require.True(t, notebookLiteralAuth(n))
	s := desiredNotebookLiteralSecret(n)
	assert.Equal(t, "nb-auth", s.Name)
	assert.Equal(t, map[string][]byte{"token": []byte("t"), "password": []byte("p")}, s.Data)
	n.Spec.Auth.SecretRef = &corev1.LocalObjectReference{Name: "mine"}
	assert.False(t, notebookLiteralAuth(n), "a named Secret wins over literals")
	assert.Equal(t, "mine", NotebookAuthSecretName(n))
}

func TestNotebookIPFromTheTemplateReplacesTheDefault(t *testing.T) {
	nb := &ejv1.JupyterNotebook{}
	nb.Name, nb.Namespace = "nb", "ns"
	nb.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: NotebookContainer,
		Env: []corev1.EnvVar{{Name: EnvNotebookIP, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
	}}}}
	d, err := desiredNotebookDeployment(nb, "image", nil)
	require.NoError(t, err)
	var found []corev1.EnvVar
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == EnvNotebookIP {
			found = append(found, e)
		}
	}
	require.Len(t, found, 1, "NOTEBOOK_IP from the template, once")
	assert.Empty(t, found[0].Value)
	assert.Equal(t, "status.podIP", found[0].ValueFrom.FieldRef.FieldPath)

	nb.Spec.Template = nil
	d, err = desiredNotebookDeployment(nb, "image", nil)
	require.NoError(t, err)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: EnvNotebookIP, Value: "0.0.0.0"})
}
