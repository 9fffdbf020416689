// Package webhook holds elastic-jupyter's admission webhooks: the mutation that turns a kernel
// pod into one that runs under the kernel launcher with the GPUs, tolerations and node
// selection of its team, and the validation of kernel pods against the team policy and of the
// five custom resources.
//
// The mutation (MutateKernelPod) and the validations (Validate*) are plain functions of their
// inputs, table-tested; the admission handlers only fetch those inputs and wrap the results.
// Team policy comes from a ConfigMap read live (PolicyStore).
package webhook
