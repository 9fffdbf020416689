package webhook

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// UserKernel is one of a user's kernels, as the per-user limits count it.
type UserKernel struct {
	// Name is the kernel's name (its id).
	Name string
	// GPUs is what the kernel holds while it runs.
	GPUs int32
	// Suspended kernels hold no GPU.
	Suspended bool
}

// KernelGPUs is the number of GPUs a kernel of kernelspec spec (nil when unknown) gets under
// rules, as the pod mutation gives them: the client's KERNEL_GPUS where the team honours it,
// else the kernelspec's, else the team's default.
func KernelGPUs(k *ejv1.JupyterKernel, spec *ejv1.JupyterKernelSpec, rules Rules) int32 {
	n := rules.DefaultPerKernel
	if spec != nil && spec.Spec.Resources != nil && spec.Spec.Resources.GPUs != nil {
		n = *spec.Spec.Resources.GPUs
	}
	if rules.ClientMayRequest {
		for i := len(k.Spec.Env) - 1; i >= 0; i-- {
			if e := k.Spec.Env[i]; e.Name == KernelGPUsEnv && e.ValueFrom == nil {
				if v, err := strconv.ParseInt(strings.TrimSpace(e.Value), 10, 32); err == nil && v >= 0 {
					n = int32(v)
				}
				break
			}
		}
	}
	return n
}

// ValidateUserLimits checks that a kernel starting (or resuming) with gpus GPUs keeps its
// user within the team's maxKernelsPerUser (every kernel of the user counts, suspended ones
// too; starting only) and maxGPUsPerUser (the GPUs of the user's kernels that are not
// suspended). others are the user's other kernels. The error names the limit, what the user
// holds, and the fix.
func ValidateUserLimits(k *ejv1.JupyterKernel, gpus int32, starting bool, others []UserKernel, rules Rules) field.ErrorList {
	var errs field.ErrorList
	user := k.Spec.User
	if user == "" {
		return nil // kernels of no user (made by hand) have no per-user limits
	}
	spec := field.NewPath("spec")
	if max := rules.MaxKernelsPerUser; starting && max >= 0 && int32(len(others))+1 > max {
		errs = append(errs, field.Forbidden(spec.Child("user"), fmt.Sprintf(
			"team %s allows at most %d kernels per user (maxKernelsPerUser) and %s has %d: shut one down first",
			rules.Team, max, user, len(others))))
	}
	if max := rules.MaxGPUsPerUser; max >= 0 && gpus > 0 {
		var held int32
		var holders []string
		for _, o := range others {
			if !o.Suspended && o.GPUs > 0 {
				held += o.GPUs
				holders = append(holders, o.Name)
			}
		}
		if held+gpus > max {
			msg := fmt.Sprintf("team %s allows at most %d %s per user (maxGPUsPerUser) and %s holds %d", rules.Team, max, rules.ResourceName, user, held)
			if len(holders) > 0 {
				msg += fmt.Sprintf(" (kernels %s)", strings.Join(holders, ", "))
			}
			msg += fmt.Sprintf("; this kernel asks for %d: shut a GPU kernel down, or wait for an idle one to be suspended", gpus)
			errs = append(errs, field.Forbidden(spec.Child("user"), msg))
		}
	}
	return errs
}
