package devnode

import (
	"context"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

// LabelDevnode marks Nodes registered by devnode.
const LabelDevnode = "elastic-jupyter.dev/devnode"

// leaseNamespace holds the node heartbeat Leases.
const leaseNamespace = corev1.NamespaceNodeLease

// leaseDuration is the Lease's leaseDurationSeconds, as the kubelet's default.
const leaseDuration = 40

// capacity is what the node advertises: cpu, memory, pods, the fake GPUs and the extra
// extended resources.
func (a *Agent) capacity() corev1.ResourceList {
	l := corev1.ResourceList{
		corev1.ResourceCPU:    a.opts.CPU,
		corev1.ResourceMemory: a.opts.Memory,
		corev1.ResourcePods:   *resource.NewQuantity(int64(a.opts.Pods), resource.DecimalSI),
	}
	for r, q := range a.gpus.capacity() {
		l[r] = q
	}
	for r, q := range a.opts.Resources {
		l[r] = q
	}
	return l
}

// allocatable equals capacity: devnode reserves nothing.
func (a *Agent) allocatable() corev1.ResourceList { return a.capacity() }

func (a *Agent) nodeLabels() map[string]string {
	l := map[string]string{
		corev1.LabelHostname:   a.opts.NodeName,
		corev1.LabelOSStable:   "linux",
		corev1.LabelArchStable: runtime.GOARCH,
		LabelDevnode:           "true",
	}
	for k, v := range a.opts.Labels {
		l[k] = v
	}
	return l
}

// registerNode creates the Node, or brings an existing one's labels and taints up to date
// (other taints, such as the not-ready taint the control plane manages, are kept).
func (a *Agent) registerNode(ctx context.Context) error {
	nodes := a.client.CoreV1().Nodes()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := nodes.Get(ctx, a.opts.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			node = &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: a.opts.NodeName, Labels: a.nodeLabels()},
				Spec:       corev1.NodeSpec{Taints: a.opts.Taints},
			}
			node, err = nodes.Create(ctx, node, metav1.CreateOptions{})
			if err == nil {
				a.nodeUID = node.UID
			}
			return err
		}
		if err != nil {
			return err
		}
		if node.Labels == nil {
			node.Labels = map[string]string{}
		}
		for k, v := range a.nodeLabels() {
			node.Labels[k] = v
		}
		for _, t := range a.opts.Taints {
			found := false
			for _, have := range node.Spec.Taints {
				if have.Key == t.Key && have.Effect == t.Effect {
					found = true
				}
			}
			if !found {
				node.Spec.Taints = append(node.Spec.Taints, t)
			}
		}
		node, err = nodes.Update(ctx, node, metav1.UpdateOptions{})
		if err == nil {
			a.nodeUID = node.UID
		}
		return err
	})
}

// reportStatus writes the node's status: capacity, addresses, and the Ready condition.
func (a *Agent) reportStatus(ctx context.Context, ready bool, message string) error {
	nodes := a.client.CoreV1().Nodes()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := nodes.Get(ctx, a.opts.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.NewTime(time.Now())
		st := &node.Status
		st.Capacity, st.Allocatable = a.capacity(), a.allocatable()
		st.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeIP}, {Type: corev1.NodeHostName, Address: a.opts.NodeName}}
		st.DaemonEndpoints = corev1.NodeDaemonEndpoints{}
		st.NodeInfo = a.nodeInfo()
		readyCond := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "devnode is posting ready status"}
		if !ready {
			readyCond = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: message}
		}
		conds := []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "devnode does not account memory"},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "devnode does not account disk"},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "devnode does not account PIDs"},
			readyCond,
		}
		for i := range conds {
			conds[i].LastHeartbeatTime = now
			conds[i].LastTransitionTime = now
			for _, old := range st.Conditions {
				if old.Type == conds[i].Type && old.Status == conds[i].Status {
					conds[i].LastTransitionTime = old.LastTransitionTime
				}
			}
		}
		st.Conditions = conds
		_, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

func (a *Agent) nodeInfo() corev1.NodeSystemInfo {
	info := corev1.NodeSystemInfo{
		OperatingSystem:         "linux",
		Architecture:            runtime.GOARCH,
		KubeletVersion:          a.kubeletVersion,
		KubeProxyVersion:        "",
		ContainerRuntimeVersion: "devnode://" + version.Version,
		OSImage:                 osImage(),
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		info.KernelVersion = utsString(u.Release[:])
	}
	if id, err := os.ReadFile("/etc/machine-id"); err == nil {
		info.MachineID = strings.TrimSpace(string(id))
	}
	if id, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		info.BootID = strings.TrimSpace(string(id))
	}
	return info
}

func utsString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

func osImage() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// renewLease creates or renews the node's heartbeat Lease in kube-node-lease.
func (a *Agent) renewLease(ctx context.Context) error {
	leases := a.client.CoordinationV1().Leases(leaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, a.opts.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.opts.NodeName, Namespace: leaseNamespace},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(a.opts.NodeName),
				LeaseDurationSeconds: ptr.To[int32](leaseDuration),
				RenewTime:            &now,
			},
		}
		if a.nodeUID != "" {
			lease.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.opts.NodeName, UID: a.nodeUID}}
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.HolderIdentity = ptr.To(a.opts.NodeName)
	lease.Spec.LeaseDurationSeconds = ptr.To[int32](leaseDuration)
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the Lease and reports the node status until ctx ends.
func (a *Agent) heartbeat(ctx context.Context) {
	lease := time.NewTicker(a.opts.HeartbeatInterval)
	defer lease.Stop()
	status := time.NewTicker(a.opts.StatusInterval)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("renewing the node lease", "err", err)
			}
		case <-status.C:
			if err := a.reportStatus(ctx, true, ""); err != nil && ctx.Err() == nil {
				a.log.Error("reporting the node status", "err", err)
			}
		}
	}
}
