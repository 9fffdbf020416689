package devnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
)

// ClusterDomain is the domain of the Service names devnode writes into pods' /etc/hosts.
const ClusterDomain = "cluster.local"

// ServiceRecord is one Service in <root>/services.json: the address devnode proxies
// its ports on.
type ServiceRecord struct {
	Namespace string              `json:"namespace"`
	Name      string              `json:"name"`
	IP        string              `json:"ip"`
	Ports     []ServicePortRecord `json:"ports"`
}

// ServicePortRecord is one proxied port of a Service.
type ServicePortRecord struct {
	Name     string `json:"name,omitempty"`
	Port     int32  `json:"port"`
	Protocol string `json:"protocol"`
}

type servicesTable struct {
	Services []ServiceRecord `json:"services"`
}

// LookupService returns the address ("10.96.x.y:port") at which the devnode whose root
// directory is root proxies port of Service namespace/name, for host processes (tests,
// `make up`) that want to reach a Service as pods do.
func LookupService(root, namespace, name string, port int32) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, servicesFile))
	if err != nil {
		return "", fmt.Errorf("reading devnode's service table: %w", err)
	}
	var f servicesTable
	if err := json.Unmarshal(data, &f); err != nil {
		return "", fmt.Errorf("reading devnode's service table: %w", err)
	}
	for _, s := range f.Services {
		if s.Namespace != namespace || s.Name != name {
			continue
		}
		for _, p := range s.Ports {
			if p.Port == port {
				return net.JoinHostPort(s.IP, strconv.Itoa(int(port))), nil
			}
		}
		return "", fmt.Errorf("service %s/%s has no TCP port %d", namespace, name, port)
	}
	return "", fmt.Errorf("service %s/%s is not (yet) proxied by devnode", namespace, name)
}

// serviceTable gives every ClusterIP Service an address of its own (from the service network,
// routed locally on the host) and proxies each of its TCP ports there to a ready endpoint. The
// endpoints of a Service with a selector are its ready pods, read from the pods themselves (no
// EndpointSlice controller needs to run); a Service without a selector uses its EndpointSlices.
type serviceTable struct {
	root   string
	pool   *addrPool
	pods   corelisters.PodLister
	slices discoverylisters.EndpointSliceLister
	log    *slog.Logger
	// changed is called (without locks held) when the set of names and addresses changed.
	changed func()

	mu      sync.Mutex
	entries map[types.NamespacedName]*serviceEntry
	closed  bool
}

type serviceEntry struct {
	key      types.NamespacedName
	ip       netip.Addr
	selector map[string]string
	ports    map[int32]*portProxy
}

type portProxy struct {
	port corev1.ServicePort
	ln   net.Listener
	rr   atomic.Uint64
}

// proxied reports whether devnode gives svc an address: ClusterIP Services that are not
// headless.
func proxied(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone && svc.Spec.ClusterIP != ""
}

// upsert brings the proxy of svc up to date.
func (t *serviceTable) upsert(svc *corev1.Service) {
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	if !proxied(svc) {
		t.remove(key)
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	e, ok := t.entries[key]
	changed := !ok
	if !ok {
		ip, err := t.pool.allocate(netip.Addr{})
		if err != nil {
			t.mu.Unlock()
			t.log.Error("no address for a service", "service", key, "err", err)
			return
		}
		e = &serviceEntry{key: key, ip: ip, ports: map[int32]*portProxy{}}
		t.entries[key] = e
	}
	e.selector = svc.Spec.Selector
	want := map[int32]corev1.ServicePort{}
	for _, p := range svc.Spec.Ports {
		if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
			want[p.Port] = p
		}
	}
	for port, pp := range e.ports {
		if _, keep := want[port]; !keep {
			_ = pp.ln.Close()
			delete(e.ports, port)
			changed = true
		}
	}
	for port, sp := range want {
		if pp, ok := e.ports[port]; ok {
			if pp.port.Name != sp.Name {
				changed = true
			}
			pp.port = sp
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(e.ip.String(), strconv.Itoa(int(port))))
		if err != nil {
			t.log.Error("listening for a service port", "service", key, "port", port, "err", err)
			continue
		}
		pp := &portProxy{port: sp, ln: ln}
		e.ports[port] = pp
		changed = true
		go t.serve(e, pp)
	}
	t.mu.Unlock()
	if changed {
		t.publish()
	}
}

// remove stops proxying a Service.
func (t *serviceTable) remove(key types.NamespacedName) {
	t.mu.Lock()
	e, ok := t.entries[key]
	if ok {
		for _, pp := range e.ports {
			_ = pp.ln.Close()
		}
		delete(t.entries, key)
		t.pool.release(e.ip)
	}
	t.mu.Unlock()
	if ok {
		t.publish()
	}
}

// close stops every proxy and removes services.json.
func (t *serviceTable) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	_ = os.Remove(filepath.Join(t.root, servicesFile))
	for key, e := range t.entries {
		for _, pp := range e.ports {
			_ = pp.ln.Close()
		}
		t.pool.release(e.ip)
		delete(t.entries, key)
	}
}

// serve accepts connections on one service port and relays each to an endpoint.
func (t *serviceTable) serve(e *serviceEntry, pp *portProxy) {
	for {
		conn, err := pp.ln.Accept()
		if err != nil {
			return
		}
		go t.relay(e, pp, conn)
	}
}

func (t *serviceTable) relay(e *serviceEntry, pp *portProxy, in net.Conn) {
	defer in.Close()
	t.mu.Lock()
	port, selector := pp.port, e.selector
	t.mu.Unlock()
	var eps []string
	if len(selector) > 0 {
		eps = t.podEndpoints(e.key.Namespace, selector, port)
	} else {
		eps = t.endpoints(e.key, port.Name)
	}
	if len(eps) == 0 {
		return // no ready endpoint: refuse, as kube-proxy does
	}
	start := int(pp.rr.Add(1))
	var out net.Conn
	for i := range eps {
		c, err := net.DialTimeout("tcp", eps[(start+i)%len(eps)], 5*time.Second)
		if err == nil {
			out = c
			break
		}
	}
	if out == nil {
		return
	}
	defer out.Close()
	splice(in, out)
}

// splice copies between a and b, both ways, passing each side's end of stream on as a
// half-close, until both directions are done.
func splice(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(b, a)
		if tc, ok := b.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(a, b)
	if tc, ok := a.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	<-done
}

// podEndpoints returns "ip:port" of the ready pods a Service port selects.
func (t *serviceTable) podEndpoints(namespace string, selector map[string]string, sp corev1.ServicePort) []string {
	if t.pods == nil {
		return nil
	}
	pods, err := t.pods.Pods(namespace).List(labels.SelectorFromSet(selector))
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning || !conditionTrue(p.Status.Conditions, corev1.PodReady) {
			continue
		}
		if port, ok := targetPort(p, sp); ok {
			out = append(out, net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port))))
		}
	}
	slices.Sort(out)
	return out
}

// targetPort resolves a Service port's targetPort for a pod: a number, a container port
// name, or (unset) the Service port itself.
func targetPort(p *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	switch {
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == sp.TargetPort.StrVal && (cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP) {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case sp.TargetPort.IntVal != 0:
		return sp.TargetPort.IntVal, true
	}
	return sp.Port, true
}

// endpoints returns "ip:port" of the ready endpoints of a Service port from its EndpointSlices.
func (t *serviceTable) endpoints(key types.NamespacedName, portName string) []string {
	if t.slices == nil {
		return nil
	}
	list, err := t.slices.EndpointSlices(key.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: key.Name}))
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range list {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port := int32(-1)
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name == portName && p.Port != nil && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
				port = *p.Port
			}
		}
		if port < 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if len(ep.Addresses) > 0 {
				out = append(out, net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(port))))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// records returns the table, sorted.
func (t *serviceTable) records() []ServiceRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ServiceRecord, 0, len(t.entries))
	for _, e := range t.entries {
		r := ServiceRecord{Namespace: e.key.Namespace, Name: e.key.Name, IP: e.ip.String()}
		for _, pp := range e.ports {
			r.Ports = append(r.Ports, ServicePortRecord{Name: pp.port.Name, Port: pp.port.Port, Protocol: string(corev1.ProtocolTCP)})
		}
		slices.SortFunc(r.Ports, func(a, b ServicePortRecord) int { return int(a.Port - b.Port) })
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b ServiceRecord) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out
}

// address returns the local address of a Service port.
func (t *serviceTable) address(namespace, name string, port int32) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[types.NamespacedName{Namespace: namespace, Name: name}]
	if !ok {
		return "", false
	}
	if _, ok := e.ports[port]; !ok {
		return "", false
	}
	return net.JoinHostPort(e.ip.String(), strconv.Itoa(int(port))), true
}

// publish writes services.json and tells the agent the names changed.
func (t *serviceTable) publish() {
	data, err := json.MarshalIndent(servicesTable{Services: t.records()}, "", "  ")
	if err == nil {
		err = writeFileAtomic(filepath.Join(t.root, servicesFile), data, 0o644)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.log.Error("writing services.json", "err", err)
	}
	if t.changed != nil {
		t.changed()
	}
}
