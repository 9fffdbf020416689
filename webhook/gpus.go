package webhook

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// gpuRequest is the number of GPUs the kernel gets and their resource name: the client's
// KERNEL_GPUS where the team allows it, else the kernelspec's count, else the team's default,
// always on the team's resource. More than the team's maximum is an error that names the
// limit, the team and where the count came from.
func gpuRequest(c *corev1.Container, idx int, spec *ejv1.JupyterKernelSpec, rules Rules) (int32, corev1.ResourceName, error) {
	res := rules.ResourceName
	n := rules.DefaultPerKernel
	source := fmt.Sprintf("team %s's default", rules.Team)
	if spec != nil && spec.Spec.Resources != nil {
		r := spec.Spec.Resources
		if r.GPUResource != "" && r.GPUResource != res {
			return 0, "", fmt.Errorf("kernelspec %s/%s spec.resources.gpuResource: asks for %s but team %s's kernels use %s: set gpuResource to %s or leave it empty",
				spec.Namespace, spec.Name, r.GPUResource, rules.Team, res, res)
		}
		if r.GPUs != nil {
			n = *r.GPUs
			source = fmt.Sprintf("kernelspec %s/%s", spec.Namespace, spec.Name)
		}
	}
	if v, i, ok := clientGPUs(c); ok && rules.ClientMayRequest {
		k, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || k < 0 {
			return 0, "", fmt.Errorf("spec.containers[%d].env[%d]: %s=%q is not a number of GPUs: give a whole number, 0 or more", idx, i, KernelGPUsEnv, v)
		}
		n, source = int32(k), KernelGPUsEnv
	}
	if rules.MaxPerKernel >= 0 && n > rules.MaxPerKernel {
		return 0, "", fmt.Errorf("spec.containers[%d].resources.limits[%s]: %s asks for %d GPU(s); team %s allows at most %d per kernel: ask for fewer, or raise the team's gpu.maxPerKernel",
			idx, res, source, n, rules.Team, rules.MaxPerKernel)
	}
	return n, res, nil
}

// clientGPUs is the value and index of the container's literal KERNEL_GPUS, the last one
// when there are several (the one that takes effect).
func clientGPUs(c *corev1.Container) (string, int, bool) {
	for i := len(c.Env) - 1; i >= 0; i-- {
		if e := c.Env[i]; e.Name == KernelGPUsEnv && e.ValueFrom == nil {
			return e.Value, i, true
		}
	}
	return "", 0, false
}

// MutationWarnings are what the mutation of pod under rules does not do although the pod asks
// for it: a KERNEL_GPUS the team does not let clients choose.
func MutationWarnings(pod *corev1.Pod, rules Rules) []string {
	if !IsKernelPod(pod) || IsMutated(pod) || rules.ClientMayRequest {
		return nil
	}
	idx := kernelContainer(&pod.Spec)
	if idx < 0 {
		return nil
	}
	if v, _, ok := clientGPUs(&pod.Spec.Containers[idx]); ok {
		return []string{fmt.Sprintf("%s=%s is ignored: team %s does not let clients choose their GPUs (gpu.clientMayRequest); the kernel gets its kernelspec's GPUs",
			KernelGPUsEnv, v, rules.Team)}
	}
	return nil
}

// setGPUs sets the GPU limit and the equal request.
func setGPUs(r *corev1.ResourceRequirements, res corev1.ResourceName, n int32) {
	q := *resource.NewQuantity(int64(n), resource.DecimalSI)
	if r.Limits == nil {
		r.Limits = corev1.ResourceList{}
	}
	if r.Requests == nil {
		r.Requests = corev1.ResourceList{}
	}
	r.Limits[res] = q
	r.Requests[res] = q.DeepCopy()
}

// isGPUResource reports whether a resource name is a GPU (or a GPU slice): the team's
// resource, or a qualified name whose resource part mentions gpu or is a MIG profile.
func isGPUResource(name corev1.ResourceName, rules Rules) bool {
	if name == rules.ResourceName {
		return true
	}
	_, res, ok := strings.Cut(strings.ToLower(string(name)), "/")
	return ok && (strings.Contains(res, "gpu") || strings.HasPrefix(res, "mig-"))
}

// podGetsGPU reports whether any container of the pod asks for a GPU.
func podGetsGPU(spec *corev1.PodSpec, rules Rules) bool {
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			for _, rl := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
				for name, q := range rl {
					if isGPUResource(name, rules) && q.Sign() > 0 {
						return true
					}
				}
			}
		}
	}
	return false
}

// addGPUQueueGate holds a GPU pod back from the scheduler until the controller's GPU queue
// releases it, in the order the kernels arrived (ejv1.GPUQueueGate).
func addGPUQueueGate(spec *corev1.PodSpec) {
	for _, g := range spec.SchedulingGates {
		if g.Name == ejv1.GPUQueueGate {
			return
		}
	}
	spec.SchedulingGates = append(spec.SchedulingGates, corev1.PodSchedulingGate{Name: ejv1.GPUQueueGate})
}

// addGPUPlacement lets a GPU pod onto the team's GPU nodes: the default GPU toleration and the
// team's, and the team's node selector, merged with the template's own without duplicates (the
// template's value wins for a key both set).
func addGPUPlacement(spec *corev1.PodSpec, rules Rules) {
	spec.Tolerations = mergeTolerations(spec.Tolerations, append([]corev1.Toleration{DefaultGPUToleration}, rules.Tolerations...)...)
	if len(rules.NodeSelector) == 0 {
		return
	}
	merged := maps.Clone(rules.NodeSelector)
	maps.Copy(merged, spec.NodeSelector)
	spec.NodeSelector = merged
}

// mergeTolerations appends the tolerations that are not present yet.
func mergeTolerations(have []corev1.Toleration, add ...corev1.Toleration) []corev1.Toleration {
	for _, a := range add {
		if !slices.ContainsFunc(have, func(t corev1.Toleration) bool { return t.MatchToleration(&a) }) {
			have = append(have, a)
		}
	}
	return have
}
