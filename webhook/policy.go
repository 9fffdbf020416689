package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// PolicyKey is the key of the team policy ConfigMap that holds the policy.
const PolicyKey = "policy.yaml"

// DefaultGPUResource is the GPU resource name of teams that name none.
const DefaultGPUResource corev1.ResourceName = "nvidia.com/gpu"

// DefaultTeam is the team name of namespaces that no team lists.
const DefaultTeam = "default"

// DefaultGPUToleration lets GPU kernels onto nodes tainted for GPUs. Every pod that gets a GPU
// carries it, besides its team's tolerations.
var DefaultGPUToleration = corev1.Toleration{Key: string(DefaultGPUResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// Policy is the team policy (docs/contracts.md, "Team policy"): the GPU rules of each team's
// namespaces. It is decoded from YAML through sigs.k8s.io/yaml, which reads the json tags, so
// the embedded Kubernetes types (tolerations) keep their usual field names.
type Policy struct {
	// Default applies to namespaces that no team lists.
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
	// TeamRules are the team's rules (in YAML their fields sit beside name and namespaces).
	TeamRules `json:",inline"`
}

// TeamRules are a team's GPU rules.
type TeamRules struct {
	// GPU are the GPU settings.
	GPU GPURules `json:"gpu,omitempty"`
	// MaxKernelsPerUser is the most kernels one user may have (suspended ones count); nil
	// means no limit.
	MaxKernelsPerUser *int32 `json:"maxKernelsPerUser,omitempty"`
	// MaxGPUsPerUser is the most GPUs one user's kernels may hold at once (a suspended kernel
	// holds none); nil means no limit.
	MaxGPUsPerUser *int32 `json:"maxGPUsPerUser,omitempty"`
	// Tolerations are added to pods that get a GPU (besides DefaultGPUToleration).
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// NodeSelector is merged into pods that get a GPU; a key the pod's template sets keeps
	// the template's value.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// GPURules say which GPUs a team's kernels get and how many.
type GPURules struct {
	// ResourceName is the extended resource, such as nvidia.com/gpu or nvidia.com/mig-1g.10gb
	// (default DefaultGPUResource).
	ResourceName corev1.ResourceName `json:"resourceName,omitempty"`
	// DefaultPerKernel is what a kernel gets when its kernelspec does not say (default 0).
	DefaultPerKernel *int32 `json:"defaultPerKernel,omitempty"`
	// MaxPerKernel is the most a kernel may get; nil means no limit.
	MaxPerKernel *int32 `json:"maxPerKernel,omitempty"`
	// ClientMayRequest honours a client's KERNEL_GPUS (up to MaxPerKernel).
	ClientMayRequest bool `json:"clientMayRequest,omitempty"`
}

// Rules are the resolved rules of one namespace: what the mutation and the validations apply.
type Rules struct {
	// Team is the team's name (DefaultTeam for namespaces that no team lists).
	Team string
	// ResourceName is the team's GPU resource.
	ResourceName corev1.ResourceName
	// DefaultPerKernel is the GPU count of kernels whose kernelspec does not say.
	DefaultPerKernel int32
	// MaxPerKernel is the most GPUs a kernel may get; -1 means no limit.
	MaxPerKernel int32
	// ClientMayRequest honours a client's KERNEL_GPUS.
	ClientMayRequest bool
	// Tolerations are added to pods that get a GPU (besides DefaultGPUToleration).
	Tolerations []corev1.Toleration
	// NodeSelector is merged into pods that get a GPU.
	NodeSelector map[string]string
	// MaxKernelsPerUser is the most kernels a user may have; -1 means no limit.
	MaxKernelsPerUser int32
	// MaxGPUsPerUser is the most GPUs a user's kernels may hold; -1 means no limit.
	MaxGPUsPerUser int32
}

// ParsePolicy decodes a policy strictly: malformed YAML, duplicate keys, unknown fields, bad
// values, a namespace in two teams are errors that name the field's path (for example
// `unknown field "teams[0].gpus"`). Empty data is an empty policy.
func ParsePolicy(data []byte) (*Policy, error) {
	p := &Policy{}
	if len(bytes.TrimSpace(data)) == 0 {
		return p, nil
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("%s is not valid YAML: %w", PolicyKey, err)
	}
	strict, err := kjson.UnmarshalStrict(js, p, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (quote a name that YAML reads as a boolean or a number, such as yes, no, on, off, y, n)", PolicyKey, err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s: %w (the fields are default, teams[].name, namespaces, gpu.{resourceName, defaultPerKernel, maxPerKernel, clientMayRequest}, maxKernelsPerUser, maxGPUsPerUser, tolerations, nodeSelector)",
			PolicyKey, errors.Join(strict...))
	}
	if errs := p.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", PolicyKey, errs.ToAggregate())
	}
	return p, nil
}

// Validate checks the policy's values; each error names its field's path.
func (p *Policy) Validate() field.ErrorList {
	var errs field.ErrorList
	if p.Default != nil {
		errs = append(errs, p.Default.validate(field.NewPath("default"))...)
	}
	owner := map[string]string{}
	names := map[string]bool{}
	for i, t := range p.Teams {
		path := field.NewPath("teams").Index(i)
		switch {
		case t.Name == "":
			errs = append(errs, field.Required(path.Child("name"), "every team needs a name, used in messages"))
		case t.Name == DefaultTeam:
			errs = append(errs, field.Invalid(path.Child("name"), t.Name, "is the name of the rules of namespaces no team lists: choose another"))
		case names[t.Name]:
			errs = append(errs, field.Duplicate(path.Child("name"), t.Name))
		}
		names[t.Name] = true
		if len(t.Namespaces) == 0 {
			errs = append(errs, field.Required(path.Child("namespaces"), "list the team's namespaces"))
		}
		for j, ns := range t.Namespaces {
			np := path.Child("namespaces").Index(j)
			if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
				errs = append(errs, field.Invalid(np, ns, "not a namespace name: "+strings.Join(msgs, "; ")))
				continue
			}
			if other, dup := owner[ns]; dup {
				errs = append(errs, field.Invalid(np, ns, fmt.Sprintf("already in team %q: a namespace belongs to at most one team", other)))
				continue
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
	if n := r.GPU.ResourceName; n != "" {
		if msgs := validation.IsQualifiedName(string(n)); len(msgs) > 0 || !strings.Contains(string(n), "/") || strings.Contains(string(n), "kubernetes.io/") {
			errs = append(errs, field.Invalid(g.Child("resourceName"), n,
				"must be an extended resource name with a domain, such as nvidia.com/gpu or nvidia.com/mig-1g.10gb"))
		}
	}
	if v := r.GPU.DefaultPerKernel; v != nil && *v < 0 {
		errs = append(errs, field.Invalid(g.Child("defaultPerKernel"), *v, "must be 0 or more"))
	}
	if v := r.GPU.MaxPerKernel; v != nil && *v < 0 {
		errs = append(errs, field.Invalid(g.Child("maxPerKernel"), *v, "must be 0 or more (leave it out for no limit)"))
	}
	if d, m := r.GPU.DefaultPerKernel, r.GPU.MaxPerKernel; d != nil && m != nil && *d > *m {
		errs = append(errs, field.Invalid(g.Child("defaultPerKernel"), *d, fmt.Sprintf("must not exceed maxPerKernel (%d)", *m)))
	}
	if v := r.MaxKernelsPerUser; v != nil && *v < 0 {
		errs = append(errs, field.Invalid(path.Child("maxKernelsPerUser"), *v, "must be 0 or more (leave it out for no limit)"))
	}
	if v := r.MaxGPUsPerUser; v != nil && *v < 0 {
		errs = append(errs, field.Invalid(path.Child("maxGPUsPerUser"), *v, "must be 0 or more (leave it out for no limit)"))
	}
	for i, t := range r.Tolerations {
		errs = append(errs, validateToleration(path.Child("tolerations").Index(i), t)...)
	}
	for k, v := range r.NodeSelector {
		kp := path.Child("nodeSelector").Key(k)
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs = append(errs, field.Invalid(kp, k, "not a label key: "+strings.Join(msgs, "; ")))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			errs = append(errs, field.Invalid(kp, v, "not a label value: "+strings.Join(msgs, "; ")))
		}
	}
	return errs
}

func validateToleration(path *field.Path, t corev1.Toleration) field.ErrorList {
	var errs field.ErrorList
	switch t.Operator {
	case corev1.TolerationOpEqual, "":
		if t.Key == "" {
			errs = append(errs, field.Required(path.Child("key"), "operator Equal needs a key (or use operator Exists)"))
		}
	case corev1.TolerationOpExists:
		if t.Value != "" {
			errs = append(errs, field.Invalid(path.Child("value"), t.Value, "must be empty when operator is Exists"))
		}
	default:
		errs = append(errs, field.NotSupported(path.Child("operator"), t.Operator, []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
	}
	if t.Key != "" {
		if msgs := validation.IsQualifiedName(t.Key); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path.Child("key"), t.Key, strings.Join(msgs, "; ")))
		}
	}
	switch t.Effect {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		errs = append(errs, field.NotSupported(path.Child("effect"), t.Effect,
			[]corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}))
	}
	return errs
}

// For returns the rules of namespace: its team's, else the default's, else the built-in
// defaults (DefaultGPUResource, no GPU by default, no limit, clients may not choose).
func (p *Policy) For(namespace string) Rules {
	if p != nil {
		for _, t := range p.Teams {
			if slices.Contains(t.Namespaces, namespace) {
				return resolve(t.Name, &t.TeamRules)
			}
		}
		if p.Default != nil {
			return resolve(DefaultTeam, p.Default)
		}
	}
	return resolve(DefaultTeam, &TeamRules{})
}

func resolve(team string, r *TeamRules) Rules {
	out := Rules{Team: team, ResourceName: r.GPU.ResourceName, MaxPerKernel: -1, ClientMayRequest: r.GPU.ClientMayRequest,
		Tolerations: r.Tolerations, NodeSelector: r.NodeSelector, MaxKernelsPerUser: -1, MaxGPUsPerUser: -1}
	if r.MaxKernelsPerUser != nil {
		out.MaxKernelsPerUser = *r.MaxKernelsPerUser
	}
	if r.MaxGPUsPerUser != nil {
		out.MaxGPUsPerUser = *r.MaxGPUsPerUser
	}
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
