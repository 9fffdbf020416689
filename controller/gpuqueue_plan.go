package controller

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// queueNode is what the GPU queue knows of a node: how many units of one GPU resource it has
// for pods, and how many pods bound to it already use.
type queueNode struct {
	name        string
	allocatable int64
	used        int64
}

// queuePod is a kernel pod that needs units of a GPU resource.
type queuePod struct {
	key      string // namespace/name
	created  time.Time
	gpus     int64
	eligible []string // the nodes it may run on (affinity, selector and taints allow it)
	gated    bool     // still waits behind the queue's scheduling gate
}

// queueSlot is where a gated pod stands.
type queueSlot struct {
	// ahead is the number of earlier pods waiting for the same nodes.
	ahead int
	// free and total are the resource's free and allocatable units on the pod's nodes.
	free, total int64
}

// planQueue decides which gated pods of one GPU resource may go to the scheduler now:
// first come, first served. Pods already released but not bound yet (in flight) hold their
// units first. Then, in arrival order, a gated pod is released when one of its nodes has
// room left for it; one that cannot be placed keeps its nodes for itself, so no later pod
// that could use the same nodes overtakes it (pods that need other nodes still go). It
// returns the pods to release and, for those left waiting, where they stand. A pod no node
// offers the resource to at all is released too: the queue cannot help it, and a cluster
// autoscaler only adds nodes for pods the scheduler has seen.
func planQueue(nodes []queueNode, pods []queuePod) (release []string, waiting map[string]queueSlot) {
	free := map[string]int64{}
	total := map[string]int64{}
	for _, n := range nodes {
		free[n.name] = max(0, n.allocatable-n.used)
		total[n.name] = n.allocatable
	}
	sorted := append([]queuePod(nil), pods...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].created.Equal(sorted[j].created) {
			return sorted[i].created.Before(sorted[j].created)
		}
		return sorted[i].key < sorted[j].key
	})
	// In-flight pods reserve their units where they fit best (the most free units).
	for _, p := range sorted {
		if p.gated {
			continue
		}
		if n := bestNode(p, free, nil); n != "" {
			free[n] -= p.gpus
		}
	}
	claimed := map[string]bool{} // nodes an earlier waiting pod keeps
	waiting = map[string]queueSlot{}
	var blocked []queuePod
	for _, p := range sorted {
		if !p.gated {
			continue
		}
		slot := queueSlot{}
		for _, n := range p.eligible {
			slot.free += free[n]
			slot.total += total[n]
		}
		if slot.total == 0 {
			release = append(release, p.key)
			continue
		}
		if n := bestNode(p, free, claimed); n != "" {
			free[n] -= p.gpus
			release = append(release, p.key)
			continue
		}
		for _, b := range blocked {
			if overlaps(b.eligible, p.eligible) {
				slot.ahead++
			}
		}
		waiting[p.key] = slot
		blocked = append(blocked, p)
		for _, n := range p.eligible {
			claimed[n] = true
		}
	}
	return release, waiting
}

// bestNode is the eligible, unclaimed node with the most free units that fit p, or "".
func bestNode(p queuePod, free map[string]int64, claimed map[string]bool) string {
	best, room := "", int64(-1)
	for _, n := range p.eligible {
		if claimed[n] {
			continue
		}
		if f, ok := free[n]; ok && f >= p.gpus && f > room {
			best, room = n, f
		}
	}
	return best
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// queueMessage is what a kernel waiting in the GPU queue tells its user.
func queueMessage(resource corev1.ResourceName, slot queueSlot) string {
	ahead := "no kernel ahead of you"
	switch {
	case slot.ahead == 1:
		ahead = "1 kernel ahead of you"
	case slot.ahead > 1:
		ahead = fmt.Sprintf("%d kernels ahead of you", slot.ahead)
	}
	return fmt.Sprintf("waiting for a GPU: %d of %d %s free (%s)", slot.free, slot.total, resource, ahead)
}
