package gateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

// portProbe is how often a kernel whose pod has an IP is checked for listening ports: the
// gateway connects as soon as the kernel listens instead of waiting for the pod's readiness
// probe to say so.
const portProbe = 25 * time.Millisecond

func (k *Kubernetes) kernelKey(id string) types.NamespacedName {
	return types.NamespacedName{Namespace: k.kernelNs, Name: id}
}

// getKernel returns a kernel of this gateway from the cache.
func (k *Kubernetes) getKernel(ctx context.Context, id string) (*ejv1.JupyterKernel, error) {
	return k.readKernel(ctx, k.client, id)
}

// readKernel is getKernel through r: the cache, or the API server itself.
func (k *Kubernetes) readKernel(ctx context.Context, r client.Reader, id string) (*ejv1.JupyterKernel, error) {
	jk := &ejv1.JupyterKernel{}
	if err := r.Get(ctx, k.kernelKey(id), jk); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("kernel %s: %w", id, ErrNotFound)
		}
		return nil, err
	}
	if !k.owns(jk) {
		return nil, fmt.Errorf("kernel %s belongs to another gateway: %w", id, ErrNotFound)
	}
	return jk, nil
}

// owns reports whether a JupyterKernel is this gateway's: two gateways never manage the same
// kernels.
func (k *Kubernetes) owns(jk *ejv1.JupyterKernel) bool {
	return jk.Labels[ejv1.LabelGateway] == k.name && jk.Annotations[ejv1.AnnotationGatewayNamespace] == k.ns
}

// Start implements Provisioner: it creates the JupyterKernel and returns; the controller
// makes its Secret and pod. A refusal (the webhook's quota, a bad kernelspec) is returned as
// the API server gave it, with nothing created.
func (k *Kubernetes) Start(ctx context.Context, req StartRequest) error {
	names := make([]string, 0, len(req.Env))
	for n := range req.Env {
		names = append(names, n)
	}
	sort.Strings(names)
	env := make([]corev1.EnvVar, 0, len(names)+1)
	for _, n := range names {
		env = append(env, corev1.EnvVar{Name: n, Value: req.Env[n]})
	}
	jk := &ejv1.JupyterKernel{
		ObjectMeta: metav1.ObjectMeta{
			Name: req.ID, Namespace: k.kernelNs,
			Labels: map[string]string{
				ejv1.LabelGateway: k.name, ejv1.LabelKernelSpec: req.Spec.Name,
				ejv1.LabelManagedBy: ejv1.ManagedBy,
			},
			Annotations: map[string]string{ejv1.AnnotationGatewayNamespace: k.ns, ejv1.AnnotationOwner: req.Owner.Name},
		},
		Spec: ejv1.JupyterKernelCRDSpec{
			KernelSpec: &ejv1.ObjectRef{Name: req.Spec.Name, Namespace: k.ns},
			Gateway:    &ejv1.ObjectRef{Name: k.name, Namespace: k.ns},
			User:       req.User,
			Env:        env,
		},
	}
	if req.Timeout > 0 {
		jk.Spec.StartDeadlineSeconds = ptr.To(int32(math.Ceil(req.Timeout.Seconds())))
	}
	if err := k.client.Create(ctx, jk); err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
			return &httpError{code: 403, reason: "Forbidden", err: fmt.Errorf("the kernel was refused: %s", apiMessage(err))}
		}
		return fmt.Errorf("creating JupyterKernel %s/%s: %w", k.kernelNs, req.ID, err)
	}
	k.log.Info("kernel created", "kernel", req.ID, "namespace", k.kernelNs, "kernelspec", req.Spec.Name)
	return nil
}

// apiMessage is the message of an API error without client-go's prefixes.
func apiMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Message != "" {
		return se.Status().Message
	}
	return err.Error()
}

// Wait implements Provisioner. It follows the JupyterKernel through the cache's events
// until its pod's kernel listens, telling progress the status message the controller writes
// (what the kernel waits for); a Failed kernel ends the wait with its reason. Statuses the
// controller wrote for an older spec (before a resume) are not believed.
func (k *Kubernetes) Wait(ctx context.Context, id string, progress func(string)) (*jupyter.ConnectionInfo, error) {
	events, stop := k.events.subscribe(id)
	defer stop()
	var (
		seen  bool
		info  *jupyter.ConnectionInfo
		probe <-chan time.Time
	)
	for {
		probe = nil
		jk, err := k.getKernel(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound) && seen:
			return nil, fmt.Errorf("kernel %s was deleted while it started", id)
		case err != nil && !errors.Is(err, ErrNotFound):
			return nil, err
		case err == nil:
			seen = true
			current := jk.Status.ObservedGeneration >= jk.Generation && !jk.Spec.Suspend
			switch {
			case !current:
				progress("starting the kernel")
			case isEnded(jk.Status.Phase):
				return nil, errors.New(nonEmptyString(jk.Status.Message, "the kernel's pod "+strings.ToLower(string(jk.Status.Phase))))
			case jk.Status.PodIP != "" && (jk.Status.Phase == ejv1.KernelRunning || jk.Status.Phase == ejv1.KernelStarting):
				if info == nil || info.IP != jk.Status.PodIP {
					if info, err = k.connectionInfo(ctx, jk); err != nil {
						return nil, err
					}
				}
				if listens(info) {
					return info, nil
				}
				progress(nonEmptyString(jk.Status.Message, "starting the kernel"))
				probe = time.After(portProbe)
			default:
				progress(nonEmptyString(jk.Status.Message, "starting the kernel"))
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-events:
		case <-probe:
		}
	}
}

func nonEmptyString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// connectionInfo reads the kernel's connection Secret and points it at the pod's IP.
func (k *Kubernetes) connectionInfo(ctx context.Context, jk *ejv1.JupyterKernel) (*jupyter.ConnectionInfo, error) {
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: jk.Namespace, Name: ejv1.ConnectionSecretName(jk.Name)}
	if err := k.direct.Get(ctx, key, secret); err != nil {
		return nil, fmt.Errorf("reading the connection secret of kernel %s: %w", jk.Name, err)
	}
	info, err := jupyter.ParseConnectionInfo(secret.Data[ejv1.ConnectionFileKey])
	if err != nil {
		return nil, fmt.Errorf("the connection secret of kernel %s: %w", jk.Name, err)
	}
	info.IP = jk.Status.PodIP
	return info, nil
}

// launcherClient reaches the kernel launcher in the kernel's pod.
func (k *Kubernetes) launcherClient(ctx context.Context, id string) (*launcher.Client, error) {
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return nil, err
	}
	if jk.Status.PodIP == "" {
		return nil, fmt.Errorf("kernel %s has no running pod", id)
	}
	info, err := k.connectionInfo(ctx, jk)
	if err != nil {
		return nil, err
	}
	return launcher.NewClient(jk.Status.PodIP, launcher.DefaultControlPort, info.Key), nil
}

// Interrupt implements Provisioner, through the kernel launcher.
func (k *Kubernetes) Interrupt(ctx context.Context, id string) error {
	c, err := k.launcherClient(ctx, id)
	if err != nil {
		return err
	}
	return c.Interrupt(ctx)
}

// Restart implements Provisioner: the launcher restarts the kernel in its pod (same ports,
// GPU kept).
func (k *Kubernetes) Restart(ctx context.Context, id string) (*jupyter.ConnectionInfo, error) {
	c, err := k.launcherClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := c.Restart(ctx); err != nil {
		return nil, err
	}
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return nil, err
	}
	return k.connectionInfo(ctx, jk)
}

// setSuspend patches spec.suspend.
func (k *Kubernetes) setSuspend(ctx context.Context, id string, suspend bool) error {
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return err
	}
	patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"suspend":%t}}`, suspend)))
	if err := k.client.Patch(ctx, jk, patch); err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
			return &RefusedError{Reason: apiMessage(err)}
		}
		return fmt.Errorf("setting spec.suspend=%t on kernel %s: %w", suspend, id, err)
	}
	return nil
}

// Suspend implements Provisioner: spec.suspend=true; the controller deletes the pod.
func (k *Kubernetes) Suspend(ctx context.Context, id string) error {
	if err := k.setSuspend(ctx, id, true); err != nil {
		return err
	}
	k.log.Info("kernel suspended", "kernel", id)
	return nil
}

// Resume implements Provisioner: spec.suspend=false, and the controller makes a fresh pod. A
// failed kernel is suspended first (its failure recorded as seen), which is how a failed
// kernel starts again.
func (k *Kubernetes) Resume(ctx context.Context, id string) error {
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return err
	}
	if isEnded(jk.Status.Phase) && !jk.Spec.Suspend {
		if err := k.setSuspend(ctx, id, true); err != nil {
			return err
		}
		if err := k.waitFor(ctx, id, func(jk *ejv1.JupyterKernel) bool {
			return jk.Spec.Suspend && jk.Status.ObservedGeneration >= jk.Generation && jk.Status.Phase == ejv1.KernelSuspended
		}); err != nil {
			return fmt.Errorf("suspending the failed kernel %s before starting it again: %w", id, err)
		}
	}
	return k.setSuspend(ctx, id, false)
}

// waitFor waits, through the cache's events, until the kernel satisfies ok.
func (k *Kubernetes) waitFor(ctx context.Context, id string, ok func(*ejv1.JupyterKernel) bool) error {
	events, stop := k.events.subscribe(id)
	defer stop()
	for {
		jk, err := k.getKernel(ctx, id)
		if err != nil {
			return err
		}
		if ok(jk) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-events:
		}
	}
}

// Shutdown implements Provisioner: deletes the JupyterKernel (its pod and Secret follow).
func (k *Kubernetes) Shutdown(ctx context.Context, id string) error {
	jk, err := k.getKernel(ctx, id)
	if errors.Is(err, ErrNotFound) {
		// A kernel created a moment ago (a notebook closed right after it opened) may not be
		// in the cache yet: only the API server can say it does not exist.
		jk, err = k.readKernel(ctx, k.direct, id)
	}
	if err != nil {
		return err
	}
	k.reports.forget(id)
	if err := k.client.Delete(ctx, jk, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting kernel %s: %w", id, err)
	}
	return nil
}

// Alive implements Provisioner: the kernel exists and has not failed or ended.
func (k *Kubernetes) Alive(ctx context.Context, id string) bool {
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return false
	}
	return !isEnded(jk.Status.Phase)
}

func isEnded(p ejv1.KernelPhase) bool { return p == ejv1.KernelFailed || p == ejv1.KernelSucceeded }

// Restore implements Provisioner: every JupyterKernel of this gateway, running ones with their
// connection info, suspended and failed ones as such, and the others as starting (the
// gateway waits for them again).
func (k *Kubernetes) Restore(ctx context.Context) ([]*Instance, error) {
	list := &ejv1.JupyterKernelList{}
	if err := k.client.List(ctx, list, client.InNamespace(k.kernelNs), client.MatchingLabels{ejv1.LabelGateway: k.name}); err != nil {
		return nil, fmt.Errorf("listing kernels: %w", err)
	}
	var out []*Instance
	for i := range list.Items {
		jk := &list.Items[i]
		if !k.owns(jk) || jk.DeletionTimestamp != nil {
			continue
		}
		inst := &Instance{ID: jk.Name, SpecName: jk.Labels[ejv1.LabelKernelSpec], Owner: ownerOf(jk)}
		if jk.Spec.KernelSpec != nil {
			inst.SpecName = jk.Spec.KernelSpec.Name
			if s := k.specInterruptMode(ctx, jk.Spec.KernelSpec.Name); s != "" {
				inst.InterruptMode = s
			}
		}
		if jk.Status.LastActivity != nil {
			inst.LastActivity = jk.Status.LastActivity.Time
		}
		switch {
		case jk.Spec.Suspend:
			inst.Suspended = true
		case jk.Status.Phase == ejv1.KernelRunning && jk.Status.PodIP != "":
			info, err := k.connectionInfo(ctx, jk)
			if err != nil {
				return nil, err
			}
			inst.Info = info
		case isEnded(jk.Status.Phase):
			inst.Failed = nonEmptyString(jk.Status.Message, "the kernel's pod "+strings.ToLower(string(jk.Status.Phase)))
		}
		out = append(out, inst)
	}
	return out, nil
}

// ownerOf is the identity that started a kernel, as recorded on it. Kernels started before
// identities were recorded belong to the admin.
func ownerOf(jk *ejv1.JupyterKernel) Identity {
	name := jk.Annotations[ejv1.AnnotationOwner]
	if name == "" {
		name = "admin"
	}
	return Identity{Name: name, User: jk.Spec.User}
}

func (k *Kubernetes) specInterruptMode(ctx context.Context, name string) string {
	s := &ejv1.JupyterKernelSpec{}
	if err := k.client.Get(ctx, types.NamespacedName{Namespace: k.ns, Name: name}, s); err != nil {
		return ""
	}
	return string(s.Spec.InterruptMode)
}
