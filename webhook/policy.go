package webhook

import (
	"bytes"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// PolicyKey is the ConfigMap key that holds the policy.
const PolicyKey = "policy.yaml"

// DefaultGPUResource is the GPU resource name of teams that name none.
const DefaultGPUResource corev1.ResourceName = "nvidia.com/gpu"

// DefaultGPUToleration lets GPU kernels onto nodes tainted for GPUs.
var DefaultGPUToleration = corev1.Toleration{Key: string(DefaultGPUResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// Policy maps namespaces to the GPU rules of their team.
type Policy struct {
	// Default applies to namespaces no team lists.
	Default *TeamRules `json:"default,omitempty"`
	// Teams are the teams, each with its namespaces.
	Teams []Team `json:"teams,omitempty"`
}

// Team is a named set of namespaces with their rules.
type Team struct {
	// Name names the team in messages.
	Name string `json:"name"`
	// Namespaces are the team's namespaces; a namespace belongs to at most one team.
	Namespaces []string `json:"namespaces"`
	// TeamRules are the team's rules (their fields sit beside name and namespaces).
	TeamRules
}

// TeamRules are a team's GPU rules.
type TeamRules struct {
	// GPU are the GPU settings.
	GPU GPURules `json:"gpu,omitempty"`
	// Tolerations are added to pods that get a GPU (besides DefaultGPUToleration).
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// NodeSelector is merged into pods that get a GPU.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// GPURules say which GPUs a team's kernels get and how many.
type GPURules struct {
	// ResourceName is the extended resource, such as nvidia.com/gpu or nvidia.com/mig-1g.10gb.
	ResourceName corev1.ResourceName `json:"resourceName,omitempty"`
	// DefaultPerKernel is what a kernel gets when its kernelspec does not say.
	DefaultPerKernel *int32 `json:"defaultPerKernel,omitempty"`
	// MaxPerKernel is the most a kernel may get; nil means no limit.
	MaxPerKernel *int32 `json:"maxPerKernel,omitempty"`
	// ClientMayRequest honours a client's KERNEL_GPUS (up to MaxPerKernel).
	ClientMayRequest bool `json:"clientMayRequest,omitempty"`
}

// Rules are the resolved rules of one namespace.
type Rules struct {
	// Team is the team's name ("default" for namespaces no team lists).
	Team             string
	ResourceName     corev1.ResourceName
	DefaultPerKernel int32
	// MaxPerKernel is -1 for no limit.
	MaxPerKernel     int32
	ClientMayRequest bool
	Tolerations      []corev1.Toleration
	NodeSelector     map[string]string
}

// ParsePolicy decodes a policy strictly: unknown fields, bad values and a namespace in two
// teams are errors with the field's path.
func ParsePolicy(data []byte) (*Policy, error) {
	p := &Policy{}
	if len(bytes.TrimSpace(data)) == 0 {
		return p, nil
	}
	if err := yaml.UnmarshalStrict(data, p); err != nil {
		return nil, fmt.Errorf("%s: %w", PolicyKey, err)
	}
	if errs := p.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", PolicyKey, errs.ToAggregate())
	}
	return p, nil
}

// Validate checks the policy's values.
func (p *Policy) Validate() field.ErrorList {
	var errs field.ErrorList
	if p.Default != nil {
		errs = append(errs, p.Default.validate(field.NewPath("default"))...)
	}
	owner := map[string]string{}
	for i, t := range p.Teams {
		path := field.NewPath("teams").Index(i)
		if t.Name == "" {
			errs = append(errs, field.Required(path.Child("name"), "every team needs a name, used in messages"))
		}
		for j, ns := range t.Namespaces {
			if other, dup := owner[ns]; dup {
				errs = append(errs, field.Duplicate(path.Child("namespaces").Index(j), fmt.Sprintf("%s (already in team %s)", ns, other)))
			}
			owner[ns] = t.Name
		}
		errs = append(errs, t.TeamRules.validate(path)...)
	}
	return errs
}

func (r *TeamRules) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	g := path.Child("gpu")
	if v := r.GPU.DefaultPerKernel; v != nil && *v < 0 {
		errs = append(errs, field.Invalid(g.Child("defaultPerKernel"), *v, "must be 0 or more"))
	}
	if v := r.GPU.MaxPerKernel; v != nil && *v < 0 {
		errs = append(errs, field.Invalid(g.Child("maxPerKernel"), *v, "must be 0 or more"))
	}
	if d, m := r.GPU.DefaultPerKernel, r.GPU.MaxPerKernel; d != nil && m != nil && *d > *m {
		errs = append(errs, field.Invalid(g.Child("defaultPerKernel"), *d, fmt.Sprintf("must not exceed maxPerKernel (%d)", *m)))
	}
	return errs
}

// For returns the rules of namespace.
func (p *Policy) For(namespace string) Rules {
	if p != nil {
		for _, t := range p.Teams {
			if slices.Contains(t.Namespaces, namespace) {
				return resolve(t.Name, &t.TeamRules)
			}
		}
		if p.Default != nil {
			return resolve("default", p.Default)
		}
	}
	return resolve("default", &TeamRules{})
}

func resolve(team string, r *TeamRules) Rules {
	out := Rules{Team: team, ResourceName: r.GPU.ResourceName, MaxPerKernel: -1, ClientMayRequest: r.GPU.ClientMayRequest,
		Tolerations: r.Tolerations, NodeSelector: r.NodeSelector}
	if out.ResourceName == "" {
		out.ResourceName = DefaultGPUResource
	}
	if r.GPU.DefaultPerKernel != nil {
		out.DefaultPerKernel = *r.GPU.DefaultPerKernel
	}
	if r.GPU.MaxPerKernel != nil {
		out.MaxPerKernel = *r.GPU.MaxPerKernel
	}
	return out
}
