package controller

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// mergePodTemplate lays over on top of base with Kubernetes' strategic merge: containers,
// volumes and env merge by name, maps merge by key, other fields of over replace base's.
func mergePodTemplate(base, over *corev1.PodTemplateSpec) (*corev1.PodTemplateSpec, error) {
	if over == nil {
		return base.DeepCopy(), nil
	}
	if base == nil {
		return over.DeepCopy(), nil
	}
	b, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	o, err := json.Marshal(over)
	if err != nil {
		return nil, err
	}
	merged, err := strategicpatch.StrategicMergePatch(b, o, corev1.PodTemplateSpec{})
	if err != nil {
		return nil, fmt.Errorf("merging pod templates: %w", err)
	}
	out := &corev1.PodTemplateSpec{}
	if err := json.Unmarshal(merged, out); err != nil {
		return nil, fmt.Errorf("merging pod templates: %w", err)
	}
	return out, nil
}

// mainContainer returns the index of the container named name, else 0, else -1 when there is
// none.
func mainContainer(spec *corev1.PodSpec, name string) int {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return i
		}
	}
	if len(spec.Containers) > 0 {
		return 0
	}
	return -1
}

// mergeEnv returns base with over's variables replacing same-named ones and the rest appended.
func mergeEnv(base []corev1.EnvVar, over ...corev1.EnvVar) []corev1.EnvVar {
	out := append([]corev1.EnvVar(nil), base...)
	for _, e := range over {
		replaced := false
		for i := range out {
			if out[i].Name == e.Name {
				out[i] = e
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}
