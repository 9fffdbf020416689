package devnode

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// VisibleDevicesEnv is the variable a container that was given fake GPUs finds their ids in,
// as the NVIDIA device plugin sets it.
const VisibleDevicesEnv = "NVIDIA_VISIBLE_DEVICES"

// gpuPool hands out fake GPU devices as a device plugin would: a container that limits a GPU
// resource to n gets n devices of it, and no device is held by two containers at once.
type gpuPool struct {
	mu      sync.Mutex
	devices map[corev1.ResourceName][]string // in id order
	owner   map[string]string                // device id -> owner ("<pod uid>/<container>")
}

// DeviceID returns the id of fake device i of resource on node: GPU-<node>-<i> for
// nvidia.com/gpu, and <NAME>-<node>-<i> for other resources (e.g. MIG-1G.10GB-<node>-0 for
// nvidia.com/mig-1g.10gb).
func DeviceID(node string, res corev1.ResourceName, i int) string {
	base := string(res)
	if j := strings.LastIndex(base, "/"); j >= 0 {
		base = base[j+1:]
	}
	return strings.ToUpper(base) + "-" + node + "-" + strconv.Itoa(i)
}

func newGPUPool(node string, resources []corev1.ResourceName, perResource int) *gpuPool {
	p := &gpuPool{devices: map[corev1.ResourceName][]string{}, owner: map[string]string{}}
	for _, r := range resources {
		for i := range perResource {
			p.devices[r] = append(p.devices[r], DeviceID(node, r, i))
		}
	}
	return p
}

// capacity returns the resource list the pool advertises.
func (p *gpuPool) capacity() corev1.ResourceList {
	l := corev1.ResourceList{}
	for r, ids := range p.devices {
		l[r] = *resource.NewQuantity(int64(len(ids)), resource.DecimalSI)
	}
	return l
}

// requests returns how many devices of each pool resource a container asks for: its limit,
// or its request when it sets no limit (the API server requires the two to be equal for
// extended resources).
func (p *gpuPool) requests(c *corev1.Container) map[corev1.ResourceName]int {
	out := map[corev1.ResourceName]int{}
	for r := range p.devices {
		q, ok := c.Resources.Limits[r]
		if !ok {
			q, ok = c.Resources.Requests[r]
		}
		if ok && q.Value() > 0 {
			out[r] = int(q.Value())
		}
	}
	return out
}

// allocate gives owner the devices c asks for, preferring the ids in prefer (what the owner
// held before a restart). It gives all or nothing.
func (p *gpuPool) allocate(owner string, c *corev1.Container, prefer []string) ([]string, error) {
	want := p.requests(c)
	if len(want) == 0 {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var got []string
	free := func(id string) bool { o, held := p.owner[id]; return !held || o == owner }
	names := make([]corev1.ResourceName, 0, len(want))
	for r := range want {
		names = append(names, r)
	}
	slices.Sort(names)
	for _, r := range names {
		n := want[r]
		var pick []string
		for _, id := range p.devices[r] {
			if len(pick) < n && slices.Contains(prefer, id) && free(id) {
				pick = append(pick, id)
			}
		}
		for _, id := range p.devices[r] {
			if len(pick) < n && !slices.Contains(pick, id) && free(id) {
				pick = append(pick, id)
			}
		}
		if len(pick) < n {
			return nil, fmt.Errorf("%d %s requested but only %d of %d free on this node (held by pods still stopping)", n, r, len(pick), len(p.devices[r]))
		}
		got = append(got, pick...)
	}
	for _, id := range got {
		p.owner[id] = owner
	}
	return got, nil
}

// release frees the devices owner holds.
func (p *gpuPool) release(owner string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, o := range p.owner {
		if o == owner {
			delete(p.owner, id)
		}
	}
}

// releasePrefix frees the devices of every owner starting with prefix (a pod's containers).
func (p *gpuPool) releasePrefix(prefix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, o := range p.owner {
		if strings.HasPrefix(o, prefix) {
			delete(p.owner, id)
		}
	}
}

// held returns the devices owner holds, sorted.
func (p *gpuPool) held(owner string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id, o := range p.owner {
		if o == owner {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
