package controller

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

// Names and places the gateway's Deployment and its users agree on (docs/contracts.md).
const (
	// JupyterPort is the port of a gateway's and a notebook's HTTP API, container and Service.
	JupyterPort = 8888
	// GatewayMetricsPort is the port of a gateway's Prometheus metrics, container and Service.
	GatewayMetricsPort = 9090
	// TokenKey is the key of a token Secret (gateway and notebook) that holds the token.
	TokenKey = "token"
	// PasswordKey is the key of a notebook's auth Secret that holds its password.
	PasswordKey = "password"
	// GatewayTokenDir is where a gateway's token Secret is mounted.
	GatewayTokenDir = "/var/run/elastic-jupyter/gateway-token"
	// GatewayTokenFile is the file the gateway reads its token from (--auth-token-file).
	GatewayTokenFile = GatewayTokenDir + "/" + TokenKey
	// GatewayTokenSecretSuffix is appended to a gateway's name to name the token Secret the
	// controller makes.
	GatewayTokenSecretSuffix = "-token"
	// gatewayContainer is the name of the gateway's container.
	gatewayContainer = "gateway"
	// gatewayRolePrefix starts the names of the Roles and RoleBindings of gateways.
	gatewayRolePrefix = "elastic-jupyter-gateway-"
	// gatewayUID is the user (and group) the gateway runs as: the image's non-root user.
	gatewayUID = 65532
)

// gatewayAuthEnabled reports whether clients must send the gateway a token (the default).
func gatewayAuthEnabled(gw *ejv1.JupyterGateway) bool {
	return gw.Spec.Auth == nil || gw.Spec.Auth.Mode != ejv1.ModeJupyterAuthDisable
}

// GatewayTokenSecretName is the name of the Secret holding a gateway's token:
// spec.auth.secretName, or "<gateway>-token".
func GatewayTokenSecretName(gw *ejv1.JupyterGateway) string {
	if gw.Spec.Auth != nil && gw.Spec.Auth.SecretName != "" {
		return gw.Spec.Auth.SecretName
	}
	return gw.Name + GatewayTokenSecretSuffix
}

// GatewayURL is a gateway's in-cluster URL.
func GatewayURL(name, namespace string) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", name, namespace, JupyterPort)
}

// gatewayKernelNamespace is where a gateway's kernels run.
func gatewayKernelNamespace(gw *ejv1.JupyterGateway) string {
	return nonEmpty(gw.Spec.KernelNamespace, gw.Namespace)
}

// gatewayRoleName names the Role and RoleBinding of a gateway in namespace ns: plain in its
// own namespace, with the gateway's namespace in another one (where a gateway of the same
// name may live).
func gatewayRoleName(gw *ejv1.JupyterGateway, ns string) string {
	if ns == gw.Namespace {
		return gatewayRolePrefix + gw.Name
	}
	return gatewayRolePrefix + gw.Namespace + "." + gw.Name
}

// newGatewayTokenSecret is a gateway's token Secret with a random token (32 bytes, hex).
func newGatewayTokenSecret(gw *ejv1.JupyterGateway) (*corev1.Secret, error) {
	token, err := randomHex(32)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: GatewayTokenSecretName(gw), Namespace: gw.Namespace,
			Labels: commonLabels(ejv1.ComponentGateway, gw.Name),
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{TokenKey: []byte(token)},
	}, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("drawing random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func desiredGatewayServiceAccount(gw *ejv1.JupyterGateway) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: gw.Name, Namespace: gw.Namespace, Labels: commonLabels(ejv1.ComponentGateway, gw.Name)},
	}
}

// Rules of a gateway's Roles: what it does with kernels (in the kernel namespace) and what it
// reads about itself (in its own namespace).
var (
	gatewayKernelRules = []rbacv1.PolicyRule{
		{APIGroups: []string{ejv1.GroupVersion.Group}, Resources: []string{"jupyterkernels"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{ejv1.GroupVersion.Group}, Resources: []string{"jupyterkernels/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	gatewaySelfRules = []rbacv1.PolicyRule{
		{APIGroups: []string{ejv1.GroupVersion.Group}, Resources: []string{"jupytergateways", "jupyterkernelspecs", "jupyterkerneltemplates"}, Verbs: []string{"get", "list", "watch"}},
	}
)

// desiredGatewayRBAC are a gateway's Roles and RoleBindings: least privilege in the kernel
// namespace and in its own (one Role when they are the same); with spec.clusterRole, no Role
// and RoleBindings to that ClusterRole in both namespaces.
func desiredGatewayRBAC(gw *ejv1.JupyterGateway) ([]*rbacv1.Role, []*rbacv1.RoleBinding) {
	kns := gatewayKernelNamespace(gw)
	rules := map[string][]rbacv1.PolicyRule{}
	rules[gw.Namespace] = append(rules[gw.Namespace], gatewaySelfRules...)
	if gatewayAuthEnabled(gw) {
		// Its notebooks' credentials (their tokens' hashes), and no other Secret of its namespace.
		rules[gw.Namespace] = append(rules[gw.Namespace], rbacv1.PolicyRule{
			APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"},
			ResourceNames: []string{ejv1.GatewayCredentialsSecretName(gw.Name)},
		})
	}
	rules[kns] = append(rules[kns], gatewayKernelRules...)
	nss := []string{gw.Namespace}
	if kns != gw.Namespace {
		nss = append(nss, kns)
	}
	var roles []*rbacv1.Role
	var bindings []*rbacv1.RoleBinding
	for _, ns := range nss {
		meta := metav1.ObjectMeta{Name: gatewayRoleName(gw, ns), Namespace: ns, Labels: gatewayRBACLabels(gw)}
		if ns != gw.Namespace {
			meta.Annotations = map[string]string{ejv1.AnnotationGatewayNamespace: gw.Namespace}
		}
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: meta.Name}
		if gw.Spec.ClusterRole != nil && *gw.Spec.ClusterRole != "" {
			ref = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: *gw.Spec.ClusterRole}
		} else {
			roles = append(roles, &rbacv1.Role{ObjectMeta: *meta.DeepCopy(), Rules: rules[ns]})
		}
		bindings = append(bindings, &rbacv1.RoleBinding{
			ObjectMeta: *meta.DeepCopy(),
			RoleRef:    ref,
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: gw.Name, Namespace: gw.Namespace}},
		})
	}
	return roles, bindings
}

// isEnterpriseGatewayImage reports whether image is Jupyter Enterprise Gateway's, as the
// original project's manifests name (for example ccr.ccs.tencentyun.com/kubeflow-oteam/enterprise-gateway:2.5.0).
func isEnterpriseGatewayImage(image string) bool {
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return strings.HasSuffix(repo, "/enterprise-gateway") || repo == "enterprise-gateway"
}

// gatewayRBACLabels label a gateway's Roles and RoleBindings, so those in other namespaces
// (which no owner reference can hold) are found and removed with it.
func gatewayRBACLabels(gw *ejv1.JupyterGateway) map[string]string {
	l := commonLabels(ejv1.ComponentGateway, gw.Name)
	l[ejv1.LabelGateway] = gw.Name
	return l
}

// desiredGatewayDeployment runs `elastic-jupyter gateway` for gw. Only what the gateway reads
// at start goes into the pod template (image, resources, log level, token); the settings it
// reads live from its JupyterGateway (kernelspecs, cull settings, policy) do not, so changing
// them never restarts the gateway.
func desiredGatewayDeployment(gw *ejv1.JupyterGateway, defaultImage string) *appsv1.Deployment {
	image := nonEmpty(gw.Spec.Image, defaultImage)
	if isEnterpriseGatewayImage(image) {
		// The original project ran Jupyter Enterprise Gateway; its manifests name that image.
		// elastic-jupyter runs its own gateway, so those manifests get this project's image.
		image = defaultImage
	}
	level := string(ejv1.LogLevelInfo)
	if gw.Spec.LogLevel != nil && *gw.Spec.LogLevel != "" {
		level = string(*gw.Spec.LogLevel)
	}
	// The gateway serves the API on every address of its pod (--listen defaults to :8888),
	// and its metrics on their own port.
	args := []string{"--name", gw.Name, "--namespace", gw.Namespace, "--log-level", level,
		"--metrics-bind-address", ":" + strconv.Itoa(GatewayMetricsPort)}
	c := corev1.Container{
		Name:    gatewayContainer,
		Image:   image,
		Command: []string{version.BinaryPath, "gateway"},
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: JupyterPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: GatewayMetricsPort, Protocol: corev1.ProtocolTCP},
		},
		Env: []corev1.EnvVar{
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		},
		// The API needs the token, so the probes only check that the port accepts.
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}},
			PeriodSeconds: 5,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}},
			InitialDelaySeconds: 5, PeriodSeconds: 10, FailureThreshold: 6,
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
	}
	if gw.Spec.Resources != nil {
		c.Resources = *gw.Spec.Resources.DeepCopy()
	}
	volumes := []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	if gatewayAuthEnabled(gw) {
		args = append(args, "--auth-token-file", GatewayTokenFile)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "gateway-token", MountPath: GatewayTokenDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "gateway-token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  GatewayTokenSecretName(gw),
			Items:       []corev1.KeyToPath{{Key: TokenKey, Path: TokenKey}},
			DefaultMode: ptr.To[int32](0o440),
		}}})
	}
	c.Args = args
	labels := commonLabels(ejv1.ComponentGateway, gw.Name)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: gw.Name, Namespace: gw.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: selectorLabels(ejv1.ComponentGateway, gw.Name)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: gw.Name,
					Containers:         []corev1.Container{c},
					Volumes:            volumes,
					SecurityContext:    nonRootPodSecurityContext(gatewayUID, gatewayUID),
				},
			},
		},
	}
}

// desiredService is the ClusterIP Service on JupyterPort of a gateway or notebook (a
// gateway's also serves its metrics, on GatewayMetricsPort).
func desiredService(name, namespace, component string) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: commonLabels(component, name)},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selectorLabels(component, name),
			Ports: []corev1.ServicePort{{
				Name: "http", Port: JupyterPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
	if component == ejv1.ComponentGateway {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: "metrics", Port: GatewayMetricsPort, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP,
		})
	}
	return svc
}
