package devnode

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// hostsFile renders a pod's /etc/hosts: localhost, the pod's own name on its IP, its
// hostAliases, then every Service devnode proxies.
func hostsFile(pod *corev1.Pod, ip netip.Addr, services []ServiceRecord) []byte {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file (devnode).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	host := podHostname(pod)
	if ip.IsValid() {
		if pod.Spec.Subdomain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", ip, host, pod.Spec.Subdomain, pod.Namespace, ClusterDomain, host)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, host)
		}
	}
	for _, a := range pod.Spec.HostAliases {
		if len(a.Hostnames) > 0 {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, " "))
		}
	}
	if len(services) > 0 {
		b.WriteString("# Services (proxied by devnode)\n")
	}
	for _, s := range services {
		names := []string{s.Name + "." + s.Namespace + ".svc." + ClusterDomain, s.Name + "." + s.Namespace + ".svc", s.Name + "." + s.Namespace}
		if s.Namespace == pod.Namespace {
			names = append(names, s.Name)
		}
		fmt.Fprintf(&b, "%s\t%s\n", s.IP, strings.Join(names, " "))
	}
	return []byte(b.String())
}

// writeHostsLocked rewrites the pod's hosts file in place (it is bind-mounted into the
// containers, so the inode must stay); called with w.mu held.
func (w *podWorker) writeHostsLocked() error {
	if w.pod == nil {
		return nil
	}
	data := hostsFile(w.pod, w.ip, w.a.services.records())
	f, err := os.OpenFile(filepath.Join(w.dir, hostsFileName), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(data, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(data)))
}
