// Package controller reconciles the elastic-jupyter kinds into running workloads and reports
// their state: JupyterNotebooks into notebook server Deployments and Services, JupyterGateways
// into gateway Deployments with least-privilege RBAC, JupyterKernels into a connection Secret
// and a kernel Pod each, and JupyterKernelSpecs and JupyterKernelTemplates into Ready
// conditions.
//
// Each reconciler gets its object, returns early when it is gone, builds the objects it wants
// with pure functions (table-tested), creates or updates them, and writes status only when it
// changed, with conditions that carry the generation they describe.
package controller
