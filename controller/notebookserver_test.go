package controller_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/controller"
	"github.com/elastic-jupyter/elastic-jupyter/gateway"
	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/process"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// These tests run the notebook container the controller specifies — its command, arguments,
// environment (Secrets resolved), configuration files and user — as a local process with
// Debian's notebook 6.4, against a real gateway holding the token from the gateway's Secret.
// Only what needs a cluster is mapped: the gateway's Service URL, the port, the mount path.

// startGateway serves a gateway with local kernels, the token of gw's Secret (the admin's) and
// the credentials the controller keeps for its notebooks (notebooks, each a non-nil
// notebook's credential to wait for).
func startGateway(t *testing.T, gw *ejv1.JupyterGateway, notebooks ...*ejv1.JupyterNotebook) string {
	t.Helper()
	secret := exists(t, gw.Namespace, controller.GatewayTokenSecretName(gw), &corev1.Secret{})
	token := string(secret.Data[controller.TokenKey])
	require.NotEmpty(t, token)
	auth := gateway.NewCredentialAuth(token)
	if len(notebooks) > 0 {
		creds := eventually(t, client.ObjectKey{Namespace: gw.Namespace, Name: ejv1.GatewayCredentialsSecretName(gw.Name)}, &corev1.Secret{},
			func(s *corev1.Secret) bool { return len(s.Data) >= len(notebooks) }, "the gateway's credentials list the notebooks")
		auth.Update(creds)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	lp := &gateway.LocalProvisioner{RuntimeDir: t.TempDir(), Env: kerneltest.Env(t.TempDir())}
	g := gateway.New(gateway.Options{
		Auth: auth, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Provisioner: lp,
		Specs:    &gateway.DirSpecSource{Dirs: []string{"/usr/share/jupyter/kernels"}},
		Settings: gateway.StaticSettings{},
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done; lp.Close() })
	return "http://" + l.Addr().String()
}

// runNotebook runs the notebook container of Deployment d and returns its URL.
func runNotebook(t *testing.T, d *appsv1.Deployment, gatewayURL string) string {
	t.Helper()
	ctx := context.Background()
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	require.Equal(t, controller.NotebookContainer, c.Name)

	dir, err := os.MkdirTemp("", "notebook-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	home := filepath.Join(dir, "home")
	require.NoError(t, os.Mkdir(home, 0o755))
	uid, gid := int(ptr.Deref(spec.SecurityContext.RunAsUser, 0)), int(ptr.Deref(spec.SecurityContext.RunAsGroup, 0))
	require.NotZero(t, uid, "the notebook runs as non-root")
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(home, uid, gid))
	}

	// Volumes: the ConfigMaps and Secrets, at their mount paths mapped under dir.
	mounts := map[string]string{}
	for _, v := range spec.Volumes {
		files := map[string][]byte{}
		switch {
		case v.ConfigMap != nil:
			for k, data := range exists(t, d.Namespace, v.ConfigMap.Name, &corev1.ConfigMap{}).Data {
				files[k] = []byte(data)
			}
		case v.Secret != nil:
			s := exists(t, d.Namespace, v.Secret.SecretName, &corev1.Secret{})
			for _, item := range v.Secret.Items {
				files[item.Path] = s.Data[item.Key]
			}
		default:
			continue
		}
		p := filepath.Join(dir, v.Name)
		require.NoError(t, os.Mkdir(p, 0o755))
		for k, data := range files {
			require.NoError(t, os.WriteFile(filepath.Join(p, k), data, 0o644))
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				mounts[m.MountPath] = p
			}
		}
	}

	port := testenv.FreeAddr()[len("127.0.0.1:"):]
	environ := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "USER=jovyan", "LANG=C.UTF-8"}
	for _, e := range c.Env {
		value := e.Value
		switch {
		case e.Name == controller.EnvGatewayURL:
			value = gatewayURL // the Service's DNS name does not resolve here
		case mounts[value] != "":
			value = mounts[value]
		case mounts[filepath.Dir(value)] != "":
			value = filepath.Join(mounts[filepath.Dir(value)], filepath.Base(value)) // a file of a mounted volume
		case e.ValueFrom != nil:
			ref := e.ValueFrom.SecretKeyRef
			require.NotNil(t, ref, "%s comes from a Secret", e.Name)
			s := &corev1.Secret{}
			err := k8s.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: ref.Name}, s)
			v, ok := s.Data[ref.Key]
			if (err != nil || !ok) && ptr.Deref(ref.Optional, false) {
				continue
			}
			require.NoError(t, err)
			require.True(t, ok, "Secret %s has key %s", ref.Name, ref.Key)
			value = string(v)
		}
		environ = append(environ, e.Name+"="+value)
	}
	argv := append(append([]string(nil), c.Command...), c.Args...)
	for i, a := range argv {
		switch a {
		case "--port=8888":
			argv[i] = "--port=" + port
		case "--ip=$(" + controller.EnvNotebookIP + ")":
			argv[i] = "--ip=127.0.0.1" // as the kubelet expands $(NOTEBOOK_IP), here on loopback
		}
	}
	path, err := exec.LookPath(argv[0])
	require.NoError(t, err)
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env, cmd.Dir = environ, home
	cmd.Stdout, cmd.Stderr = jupytertest.LogWriter{T: t}, jupytertest.LogWriter{T: t}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	p, err := process.StartCmd("notebook server", cmd)
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	base := "http://127.0.0.1:" + port
	probe := c.ReadinessProbe.HTTPGet.Path
	require.NoError(t, process.WaitHTTP(context.Background(), p, base+probe, nil, 90*time.Second), "the notebook server answers its readiness probe %s", probe)
	return base
}

func status(t *testing.T, c *http.Client, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestNotebookServerRunsAsSpecifiedWithItsGatewayAndToken(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	gw := newGateway(ns, "gw")
	require.NoError(t, k8s.Create(ctx, gw))
	nb := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: ns}}
	nb.Spec.Gateway = &corev1.ObjectReference{Name: "gw"}
	require.NoError(t, k8s.Create(ctx, nb))
	gatewayURL := startGateway(t, gw, nb)
	d := exists(t, ns, "alice", &appsv1.Deployment{})
	token := string(exists(t, ns, "alice-auth", &corev1.Secret{}).Data[controller.TokenKey])

	base := runNotebook(t, d, gatewayURL)
	code, _ := status(t, nil, "GET", base+"/api/kernelspecs", "")
	assert.Equal(t, http.StatusForbidden, code, "without the token the notebook refuses")
	code, body := status(t, nil, "GET", base+"/api/kernelspecs", token)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"python3"`, "the kernelspecs come from the gateway")

	// A kernel started through the notebook server runs behind the gateway.
	code, body = status(t, nil, "POST", base+"/api/kernels", token)
	require.Equal(t, http.StatusCreated, code, body)
	id := regexp.MustCompile(`"id": ?"([0-9a-f-]+)"`).FindStringSubmatch(body)
	require.Len(t, id, 2, body)
	gwToken := string(exists(t, ns, "gw-token", &corev1.Secret{}).Data[controller.TokenKey])
	code, body = status(t, nil, "GET", gatewayURL+"/api/kernels", gwToken)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, id[1], "the gateway runs the notebook's kernel")
	own := string(exists(t, ns, "alice-gateway-token", &corev1.Secret{}).Data[controller.TokenKey])
	code, body = status(t, nil, "GET", gatewayURL+"/api/kernels/"+id[1], own)
	require.Equal(t, http.StatusOK, code, "the notebook called the gateway with its own token: the kernel is its own: %s", body)
	code, _ = status(t, nil, "DELETE", base+"/api/kernels/"+id[1], token)
	assert.Equal(t, http.StatusNoContent, code)
}

func TestNotebookServerAuthDisabledAndPassword(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	open := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "open", Namespace: ns}}
	open.Spec.Auth = &ejv1.JupyterAuth{Mode: ejv1.ModeJupyterAuthDisable}
	require.NoError(t, k8s.Create(ctx, open))
	base := runNotebook(t, exists(t, ns, "open", &appsv1.Deployment{}), "")
	code, body := status(t, nil, "GET", base+"/api/kernelspecs", "")
	assert.Equal(t, http.StatusOK, code, "auth mode disable needs no token: %s", body)

	pw := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: ns}}
	pw.Spec.Auth = &ejv1.JupyterAuth{Password: ptr.To("correct horse")}
	require.NoError(t, k8s.Create(ctx, pw))
	d := exists(t, ns, "pw", &appsv1.Deployment{})
	assertNotIn(t, d, "correct horse")
	base = runNotebook(t, d, "")
	code, _ = status(t, nil, "GET", base+"/api/kernelspecs", "")
	assert.Equal(t, http.StatusForbidden, code)

	// Log in with the password, as a browser does.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	code, _ = status(t, browser, "GET", base+"/login", "")
	require.Equal(t, http.StatusOK, code)
	u, _ := url.Parse(base)
	var xsrf string
	for _, c := range jar.Cookies(u) {
		if c.Name == "_xsrf" {
			xsrf = c.Value
		}
	}
	require.NotEmpty(t, xsrf)
	login := func(password string) int {
		resp, err := browser.PostForm(base+"/login", url.Values{"password": {password}, "_xsrf": {xsrf}})
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	assert.NotEqual(t, http.StatusFound, login("wrong"), "a wrong password is refused")
	assert.Equal(t, http.StatusFound, login("correct horse"), "the password from the Secret logs in")
	code, body = status(t, browser, "GET", base+"/api/kernelspecs", "")
	assert.Equal(t, http.StatusOK, code, "logged in: %s", body)
}
