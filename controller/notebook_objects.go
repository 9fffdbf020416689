package controller

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// The notebook server's defaults and the environment through which it gets its settings.
const (
	// NotebookContainer is the name of the notebook server's container.
	NotebookContainer = "notebook"
	// NotebookConfigDir is where a notebook's Jupyter configuration (from its ConfigMap) is
	// mounted; JUPYTER_CONFIG_PATH points there.
	NotebookConfigDir = "/etc/elastic-jupyter/notebook"
	// NotebookAuthSecretSuffix is appended to a notebook's name to name the auth Secret the
	// controller makes.
	NotebookAuthSecretSuffix = "-auth"
	// NotebookGatewayTokenDir is where a notebook's own gateway token Secret is mounted; the
	// notebook's Jupyter configuration reads it from the file GatewayTokenFileName there.
	NotebookGatewayTokenDir = "/var/run/elastic-jupyter/gateway-token"
	// EnvGatewayTokenFile holds the path of the notebook's gateway token file (a path, not the
	// token).
	EnvGatewayTokenFile = "JUPYTER_GATEWAY_AUTH_TOKEN_FILE"
	// NotebookGatewayTokenSuffix is appended to a notebook's name to name its copy of a
	// gateway token from another namespace.
	NotebookGatewayTokenSuffix = "-gateway-token"
	// NotebookConfigSuffix is appended to a notebook's name to name its Jupyter configuration
	// ConfigMap.
	NotebookConfigSuffix = "-config"

	// The stock Jupyter images' user (jovyan) and group (users).
	notebookUID = 1000
	notebookGID = 100

	// notebookRequestMargin is added to a gateway's launchTimeout for the notebook's
	// gateway request timeout, so the gateway, not the notebook, reports a slow start.
	notebookRequestMargin = 30
)

// Environment variables of the notebook server.
const (
	EnvGatewayURL       = "JUPYTER_GATEWAY_URL"
	EnvGatewayToken     = "JUPYTER_GATEWAY_AUTH_TOKEN"
	EnvGatewayTimeout   = "JUPYTER_GATEWAY_REQUEST_TIMEOUT"
	EnvNotebookToken    = "JUPYTER_TOKEN"
	EnvNotebookPassword = "JUPYTER_PASSWORD"
	EnvJupyterConfig    = "JUPYTER_CONFIG_PATH"
	EnvNotebookIP       = "NOTEBOOK_IP"
	EnvLaunchTimeout    = "KERNEL_LAUNCH_TIMEOUT"
)

// notebookCommand is the notebook server's default command: it works with the stock images
// (Notebook 7 on Jupyter Server) and with Notebook 6. It listens on $(NOTEBOOK_IP), 0.0.0.0 by
// default (so the Service and `kubectl port-forward` reach it); a template may set NOTEBOOK_IP
// to listen on one address only.
var notebookCommand = []string{"jupyter", "notebook", "--ip=$(" + EnvNotebookIP + ")", "--port=8888", "--no-browser"}

// notebookNoAuthArgs turn authentication off (auth.mode: disable), for Notebook 6
// (NotebookApp) and Jupyter Server (ServerApp) alike.
var notebookNoAuthArgs = []string{
	"--NotebookApp.token=", "--NotebookApp.password=",
	"--ServerApp.token=", "--ServerApp.password=",
}

// notebookPasswordConfig is the Jupyter configuration that takes the password from the
// environment (from the auth Secret), so it is never an argument, and the gateway token from
// its file (the notebook's own credential), so it is in neither an argument nor the
// environment. A plain password is hashed at start; a hash (argon2:..., sha1:...) is used as
// it is.
const notebookPasswordConfig = `# Written by elastic-jupyter: the password comes from the notebook's auth Secret through
# the environment, the gateway token from the notebook's own token file, never from an argument.
import os

_token_file = os.environ.get("JUPYTER_GATEWAY_AUTH_TOKEN_FILE", "")
if _token_file and os.path.exists(_token_file):
    with open(_token_file) as _f:
        c.GatewayClient.auth_token = _f.read().strip()

_password = os.environ.get("JUPYTER_PASSWORD", "")
if _password:
    if not _password.startswith(("argon2:", "sha1:", "sha256:", "sha512:")):
        try:
            from jupyter_server.auth import passwd
        except ImportError:
            from notebook.auth import passwd
        _password = passwd(_password)
    c.NotebookApp.password = _password
    c.ServerApp.password = _password
`

// notebookAuthEnabled reports whether the notebook requires a token or password (the
// default).
func notebookAuthEnabled(nb *ejv1.JupyterNotebook) bool {
	return nb.Spec.Auth == nil || nb.Spec.Auth.Mode != ejv1.ModeJupyterAuthDisable
}

// NotebookAuthSecretName is the Secret holding a notebook's token and/or password:
// spec.auth.secretRef, or "<notebook>-auth".
func NotebookAuthSecretName(nb *ejv1.JupyterNotebook) string {
	if a := nb.Spec.Auth; a != nil && a.SecretRef != nil && a.SecretRef.Name != "" {
		return a.SecretRef.Name
	}
	return nb.Name + NotebookAuthSecretSuffix
}

// notebookLiteralAuth reports whether the notebook's credentials are literals in its spec
// (the original project's token and password fields) rather than a Secret of the user's.
func notebookLiteralAuth(nb *ejv1.JupyterNotebook) bool {
	a := nb.Spec.Auth
	return a != nil && (a.SecretRef == nil || a.SecretRef.Name == "") && (a.Token != nil || a.Password != nil)
}

// desiredNotebookLiteralSecret is "<notebook>-auth" holding the literal token and password.
func desiredNotebookLiteralSecret(nb *ejv1.JupyterNotebook) *corev1.Secret {
	data := map[string][]byte{}
	if t := nb.Spec.Auth.Token; t != nil {
		data[TokenKey] = []byte(*t)
	}
	if p := nb.Spec.Auth.Password; p != nil {
		data[PasswordKey] = []byte(*p)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: NotebookAuthSecretName(nb), Namespace: nb.Namespace, Labels: commonLabels(ejv1.ComponentNotebook, nb.Name)},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// newNotebookTokenSecret is "<notebook>-auth" with a random token (32 bytes, hex).
func newNotebookTokenSecret(nb *ejv1.JupyterNotebook) (*corev1.Secret, error) {
	token, err := randomHex(32)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: NotebookAuthSecretName(nb), Namespace: nb.Namespace, Labels: commonLabels(ejv1.ComponentNotebook, nb.Name)},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{TokenKey: []byte(token)},
	}, nil
}

// desiredNotebookConfig is the notebook's Jupyter configuration ConfigMap.
func desiredNotebookConfig(nb *ejv1.JupyterNotebook) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: nb.Name + NotebookConfigSuffix, Namespace: nb.Namespace, Labels: commonLabels(ejv1.ComponentNotebook, nb.Name)},
		Data: map[string]string{
			"jupyter_notebook_config.py": notebookPasswordConfig,
			"jupyter_server_config.py":   notebookPasswordConfig,
		},
	}
}

// notebookGatewayKey is the gateway a notebook names; the namespace defaults to the
// notebook's.
func notebookGatewayKey(nb *ejv1.JupyterNotebook) types.NamespacedName {
	return types.NamespacedName{Namespace: nonEmpty(nb.Spec.Gateway.Namespace, nb.Namespace), Name: nb.Spec.Gateway.Name}
}

// notebookGateway is what a notebook's Deployment needs to know about its gateway.
type notebookGateway struct {
	// URL is the gateway's in-cluster URL.
	URL string
	// TokenSecret is the Secret, in the notebook's namespace, whose key "token" holds the
	// gateway's token; empty when the gateway takes none.
	TokenSecret string
	// LaunchTimeout is the gateway's launchTimeout in seconds.
	LaunchTimeout int32
}

// desiredNotebookDeployment is the notebook server: the user's template merged over the
// defaults (the stock image, `jupyter notebook`, non-root, probes on /api), then the
// settings that are not the user's to change: the gateway URL and token and the credentials,
// all through the environment from Secrets, never as arguments.
func desiredNotebookDeployment(nb *ejv1.JupyterNotebook, image string, gw *notebookGateway) (*appsv1.Deployment, error) {
	tmpl, err := mergePodTemplate(defaultNotebookTemplate(image), nb.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("spec.template: %w", err)
	}
	i := mainContainer(&tmpl.Spec, NotebookContainer)
	c := &tmpl.Spec.Containers[i]
	if c.Image == "" {
		c.Image = image
	}
	if len(c.Command) == 0 {
		// The template's args, if any, are extra flags of the default command.
		c.Command = append([]string(nil), notebookCommand...)
	}
	// Added after the merge, not as a default in the template: a strategic merge would fold
	// the template's valueFrom into the default's value.
	c.Env = setEnvDefault(c.Env, corev1.EnvVar{Name: EnvNotebookIP, Value: "0.0.0.0"})
	var env []corev1.EnvVar
	if gw != nil {
		env = append(env,
			corev1.EnvVar{Name: EnvGatewayURL, Value: gw.URL},
			corev1.EnvVar{Name: EnvGatewayTimeout, Value: strconv.Itoa(int(gw.LaunchTimeout) + notebookRequestMargin)},
			// The notebook server passes this to the gateway with every kernel start; without it
			// Jupyter sends 40 s, too short for a kernel that waits for a GPU to come free.
			corev1.EnvVar{Name: EnvLaunchTimeout, Value: strconv.Itoa(int(gw.LaunchTimeout))},
		)
		if gw.TokenSecret != "" {
			// The notebook's own credential, as a file its configuration reads.
			env = append(env, corev1.EnvVar{Name: EnvGatewayTokenFile, Value: NotebookGatewayTokenDir + "/" + TokenKey})
			c.VolumeMounts = mergeMounts(c.VolumeMounts, corev1.VolumeMount{Name: "gateway-token", MountPath: NotebookGatewayTokenDir, ReadOnly: true})
			tmpl.Spec.Volumes = mergeVolumes(tmpl.Spec.Volumes, corev1.Volume{Name: "gateway-token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: gw.TokenSecret, Items: []corev1.KeyToPath{{Key: TokenKey, Path: TokenKey}}, DefaultMode: ptr.To[int32](0o440),
			}}})
		}
	}
	if notebookAuthEnabled(nb) {
		secret := NotebookAuthSecretName(nb)
		env = append(env,
			secretEnv(EnvNotebookToken, secret, TokenKey, true),
			secretEnv(EnvNotebookPassword, secret, PasswordKey, true),
		)
	} else {
		c.Args = append(c.Args, notebookNoAuthArgs...)
	}
	if notebookNeedsConfig(nb, gw) {
		env = append(env, corev1.EnvVar{Name: EnvJupyterConfig, Value: NotebookConfigDir})
		c.VolumeMounts = mergeMounts(c.VolumeMounts, corev1.VolumeMount{Name: "elastic-jupyter-config", MountPath: NotebookConfigDir, ReadOnly: true})
		tmpl.Spec.Volumes = mergeVolumes(tmpl.Spec.Volumes, corev1.Volume{Name: "elastic-jupyter-config", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: nb.Name + NotebookConfigSuffix}},
		}})
	}
	c.Env = mergeEnv(c.Env, env...)

	labels := commonLabels(ejv1.ComponentNotebook, nb.Name)
	tmpl.Labels = mergeMaps(tmpl.Labels, labels)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: nb.Name, Namespace: nb.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: selectorLabels(ejv1.ComponentNotebook, nb.Name)},
			Template: *tmpl,
		},
	}, nil
}

// defaultNotebookTemplate is the notebook pod a user's template is merged over.
func defaultNotebookTemplate(image string) *corev1.PodTemplateSpec {
	probe := func(delay, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/api", Port: intstr.FromString("http")}},
			InitialDelaySeconds: delay, PeriodSeconds: period, FailureThreshold: failures,
		}
	}
	return &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:  NotebookContainer,
			Image: image,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: JupyterPort, Protocol: corev1.ProtocolTCP}},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi"),
			}},
			ReadinessProbe: probe(0, 5, 3),
			LivenessProbe:  probe(10, 20, 6),
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
		SecurityContext: nonRootPodSecurityContext(notebookUID, notebookGID),
	}}
}

// notebookNeedsConfig reports whether the notebook gets the controller's Jupyter
// configuration: for its password, or for its gateway token file.
func notebookNeedsConfig(nb *ejv1.JupyterNotebook, gw *notebookGateway) bool {
	return notebookAuthEnabled(nb) || gw != nil && gw.TokenSecret != ""
}

// NotebookUser is the user a notebook server is for: spec.user, else its user label, else its
// name.
func NotebookUser(nb *ejv1.JupyterNotebook) string {
	if nb.Spec.User != "" {
		return nb.Spec.User
	}
	if u := nb.Labels[ejv1.LabelUser]; u != "" {
		return u
	}
	return nb.Name
}

// NotebookIdentity names a notebook server to its gateway: "<namespace>/<name>".
func NotebookIdentity(nb *ejv1.JupyterNotebook) string { return nb.Namespace + "/" + nb.Name }

// newNotebookGatewayToken is the notebook's own credential for its gateway: a random token (32
// bytes, hex), labelled with the gateway, which learns its hash, never the token.
func newNotebookGatewayToken(nb *ejv1.JupyterNotebook, gw types.NamespacedName) (*corev1.Secret, error) {
	token, err := randomHex(32)
	if err != nil {
		return nil, err
	}
	labels := commonLabels(ejv1.ComponentNotebook, nb.Name)
	labels[ejv1.LabelGateway] = gw.Name
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: nb.Name + NotebookGatewayTokenSuffix, Namespace: nb.Namespace, Labels: labels,
			Annotations: map[string]string{ejv1.AnnotationGatewayNamespace: gw.Namespace, ejv1.AnnotationCredential: CredentialNotebook},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{TokenKey: []byte(token)},
	}, nil
}

// CredentialNotebook is the AnnotationCredential value of a notebook's own gateway token.
const CredentialNotebook = "notebook"

func secretEnv(name, secret, key string, optional bool) corev1.EnvVar {
	ref := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}
	if optional {
		ref.Optional = ptr.To(true)
	}
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: ref}}
}

func mergeMounts(base []corev1.VolumeMount, m corev1.VolumeMount) []corev1.VolumeMount {
	out := make([]corev1.VolumeMount, 0, len(base)+1)
	for _, b := range base {
		if b.Name != m.Name && b.MountPath != m.MountPath {
			out = append(out, b)
		}
	}
	return append(out, m)
}

func mergeVolumes(base []corev1.Volume, v corev1.Volume) []corev1.Volume {
	out := make([]corev1.Volume, 0, len(base)+1)
	for _, b := range base {
		if b.Name != v.Name {
			out = append(out, b)
		}
	}
	return append(out, v)
}

// setEnvDefault appends e unless the list sets a variable of that name already.
func setEnvDefault(env []corev1.EnvVar, e corev1.EnvVar) []corev1.EnvVar {
	for _, have := range env {
		if have.Name == e.Name {
			return env
		}
	}
	return append(env, e)
}
