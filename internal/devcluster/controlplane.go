package devcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

func (cl *Cluster) tool(name string) string { return filepath.Join(cl.cfg.ToolsBin, name) }

func (cl *Cluster) apiURL() string { return "https://127.0.0.1:" + strconv.Itoa(cl.cfg.APIPort) }

// upControlPlane starts etcd, kube-apiserver, kube-scheduler and kube-controller-manager.
func (cl *Cluster) upControlPlane(ctx context.Context) error {
	cfg := cl.cfg
	for _, t := range []string{"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubectl"} {
		if _, err := os.Stat(cl.tool(t)); err != nil {
			return fmt.Errorf("%s is not built in %s: run 'make tools' first", t, cfg.ToolsBin)
		}
	}
	p := cl.pki
	if err := p.issue("apiserver", "kube-apiserver", nil,
		[]string{"127.0.0.1", "localhost", "10.0.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, false); err != nil {
		return err
	}
	if err := p.issue("admin", "elastic-jupyter-admin", []string{"system:masters"}, nil, true); err != nil {
		return err
	}
	if err := p.serviceAccountKey(); err != nil {
		return err
	}
	if err := cl.writeKubeconfig(); err != nil {
		return err
	}

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(cfg.EtcdPort)
	if !cl.running("etcd") {
		if err := cl.checkPorts("etcd", cfg.EtcdPort, cfg.EtcdPort+1); err != nil {
			return err
		}
		if err := cl.start(component{name: "etcd", path: cl.tool("etcd"), args: []string{
			"--data-dir=" + filepath.Join(cfg.Dir, "etcd"),
			"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
			"--listen-peer-urls=http://127.0.0.1:" + strconv.Itoa(cfg.EtcdPort+1),
			"--initial-advertise-peer-urls=http://127.0.0.1:" + strconv.Itoa(cfg.EtcdPort+1),
			"--initial-cluster=default=http://127.0.0.1:" + strconv.Itoa(cfg.EtcdPort+1),
			"--unsafe-no-fsync", "--log-level=warn",
		}}); err != nil {
			return err
		}
	}
	if err := cl.waitHTTP(ctx, "etcd", etcdURL+"/health", nil); err != nil {
		return err
	}

	if !cl.running("kube-apiserver") {
		if err := cl.checkPorts("kube-apiserver", cfg.APIPort); err != nil {
			return err
		}
		if err := cl.start(component{name: "kube-apiserver", path: cl.tool("kube-apiserver"), args: []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1", "--endpoint-reconciler-type=none",
			"--secure-port=" + strconv.Itoa(cfg.APIPort),
			"--tls-cert-file=" + p.path("apiserver.crt"), "--tls-private-key-file=" + p.path("apiserver.key"),
			"--client-ca-file=" + p.path("ca.crt"),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + p.path("sa.pub"),
			"--service-account-signing-key-file=" + p.path("sa.key"),
			"--service-cluster-ip-range=10.0.0.0/24",
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=false",
			"--cert-dir=" + filepath.Join(cfg.Dir, "pki", "apiserver-certs"),
		}}); err != nil {
			return err
		}
	}
	if err := cl.waitHTTP(ctx, "kube-apiserver", cl.apiURL()+"/readyz", cl.adminTLS()); err != nil {
		return err
	}

	kc := cl.Kubeconfig
	common := []string{"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc, "--leader-elect=false", "--secure-port=0"}
	if !cl.running("kube-scheduler") {
		if err := cl.start(component{name: "kube-scheduler", path: cl.tool("kube-scheduler"), args: common}); err != nil {
			return err
		}
	}
	if !cl.running("kube-controller-manager") {
		args := append(append([]string{}, common...),
			"--use-service-account-credentials=false",
			"--service-account-private-key-file="+p.path("sa.key"),
			"--root-ca-file="+p.path("ca.crt"),
			"--controllers="+strings.Join(controllers, ","),
			"--node-monitor-period=1s", "--node-monitor-grace-period=20s",
		)
		if err := cl.start(component{name: "kube-controller-manager", path: cl.tool("kube-controller-manager"), args: args}); err != nil {
			return err
		}
	}
	if err := cl.kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(cfg.Root, "crds")); err != nil {
		return err
	}
	return cl.kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "-f", filepath.Join(cfg.Root, "crds"))
}

// controllers are the kube-controller-manager controllers the system needs: garbage collection
// (kernel pods and Secrets go with their kernel), namespaces, Deployments, node lifecycle,
// Service endpoints, service account tokens (the gateway talks to the API server as its
// ServiceAccount), and the PV binder, which binds PersistentVolumeClaims to the PVs created
// for them (see HostPathVolume): devnode mounts only Bound claims, as a kubelet does.
var controllers = []string{
	"garbage-collector-controller", "namespace-controller", "deployment-controller",
	"replicaset-controller", "node-lifecycle-controller", "endpoints-controller",
	"endpointslice-controller", "pod-garbage-collector-controller", "taint-eviction-controller",
	"serviceaccount-controller", "serviceaccount-token-controller", "root-ca-certificate-publisher-controller",
	"persistentvolume-binder-controller",
}

// checkPorts refuses loudly when a port is taken.
func (cl *Cluster) checkPorts(what string, ports ...int) error {
	for _, port := range ports {
		if err := portFree("127.0.0.1:" + strconv.Itoa(port)); err != nil {
			return fmt.Errorf("%s needs port %d on 127.0.0.1, which is taken (%v): stop what uses it, or choose another port (see 'make help')", what, port, err)
		}
	}
	return nil
}

func (cl *Cluster) adminTLS() *tls.Config {
	cert, err := tls.LoadX509KeyPair(cl.pki.path("admin.crt"), cl.pki.path("admin.key"))
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(cl.pki.caCert)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// waitHTTP polls url until it answers 200, the component exits, or 2 minutes pass.
func (cl *Cluster) waitHTTP(ctx context.Context, name, url string, tlsCfg *tls.Config) error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	logPath := filepath.Join(cl.cfg.Dir, "logs", name+".log")
	errExited := fmt.Errorf("%s exited; see %s", name, logPath)
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true, nil
			}
		}
		for _, p := range cl.procs {
			if p.name == name && p.exited() {
				return false, errExited
			}
		}
		return false, nil
	})
	if err != nil && !errors.Is(err, errExited) {
		return fmt.Errorf("%s is not ready at %s; see %s", name, url, logPath)
	}
	return err
}

// writeKubeconfig writes the admin kubeconfig (client certificate, system:masters).
func (cl *Cluster) writeKubeconfig() error {
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: elastic-jupyter-dev
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: elastic-jupyter-dev
  context:
    cluster: elastic-jupyter-dev
    user: admin
current-context: elastic-jupyter-dev
`, cl.apiURL(), cl.pki.path("ca.crt"), cl.pki.path("admin.crt"), cl.pki.path("admin.key"))
	return os.WriteFile(cl.Kubeconfig, []byte(kc), 0o600)
}

// kubectl runs the cached kubectl against the cluster.
func (cl *Cluster) kubectl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, cl.tool("kubectl"), append([]string{"--kubeconfig=" + cl.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
