// Package webhook holds elastic-jupyter's admission webhooks: the mutation that turns a kernel
// pod into one that runs under the kernel launcher with the GPUs, tolerations, node selection
// and security context of its team, and the validation of kernel pods against the team policy
// and of the five custom resources.
//
// The mutation (MutateKernelPod) and the validations (Validate*) are plain functions of their
// inputs, table-tested. The webhooks are controller-runtime's typed ones, a type a kind
// (KernelPodWebhook, an admission.Defaulter and admission.Validator of pods; KernelSpecWebhook,
// KernelTemplateWebhook, GatewayWebhook, NotebookWebhook and KernelWebhook, admission.Validators
// of the five kinds): they only fetch those inputs (the pod's kernelspec, the team's Rules,
// what references exist) and turn field errors into an Invalid refusal that names every one.
// The team policy (Policy) comes from a ConfigMap read live through an informer that watches
// that ConfigMap only (PolicyStore). NewManager builds a manager for `elastic-jupyter
// webhook`; Register serves the webhooks on any manager, so tests and `make up` can run them
// in-process.
//
// config/webhook holds the webhook configurations (paths PathMutateKernelPod,
// PathValidateKernelPod and ValidatePath(kind)) and the least-privilege RBAC the webhook needs.
package webhook
