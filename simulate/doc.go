// Package simulate replays a trace of notebook sessions against the gateway's culling rule and
// tells how many GPU-hours elastic kernels give back, against one set of GPUs bound to each
// notebook for its whole session; `elastic-jupyter simulate` prints its table.
//
// # The trace: a NotebookOS workload template
//
// NotebookOS (github.com/ds2-lab/NotebookOS, GPU notebooks for Jupyter; its workload driver and
// dashboard are github.com/ds2-lab/NotebookOS-Dashboard) replays "workload templates", JSON files
// derived from the Adobe Sensei notebook trace (driver-backend/configs/workload_templates/, e.g.
// "adobe sensei june 1-2 2021 (Tv2).json": 59 sessions, 790 trainings). What this package reads
// of them, as found there:
//
//   - The top level: "sessions" (an array), with "workloadTitle" (or "workload_title") and
//     fields the simulation ignores: "workloadSeed", "timescaleAdjustmentFactor",
//     "numberOfSessions", "remoteStorageDefinition", "debugLoggingEnabled" and their snake_case
//     twins.
//   - A session: "id" (a UUID there), "start_tick" and "stop_tick" (when its notebook opens
//     and closes), "trainings", and "max_resource_request" {"cpus", "memory", "gpus", "vram",
//     "gpu_type"}; also "num_training_events", "trainings_completed" and
//     "current_resource_request", ignored.
//   - A training (a cell that runs): "start_tick", "duration_in_ticks", "end_tick" (start +
//     duration), "gpus" and "gpu_utilizations" (one {"utilization": percent} per GPU; the
//     driver's Go code counts a training's GPUs by this list), "cpus", "memory", "vram"
//     (ignored). NotebookOS's Python template generator writes "num_gpus" instead of "gpus".
//     In the Sensei template a third of the trainings use no GPU, and durations start at 3
//     ticks.
//   - The tick length is not in a template: it is the driver's trace step ("trace-step", 60 s by
//     default; the Sensei CSVs beside its generators are named for 60 s readings). A trace may
//     say "tick_seconds" (this package's addition); otherwise a tick is DefaultTick.
//
// Parse checks a trace and names the field and the fix of what it refuses: missing ticks,
// sessions that close before they open, trainings outside their session or overlapping (a
// kernel runs one cell at a time), GPU counts that disagree. Fields it does not read are
// ignored, so NotebookOS's files load as they are (its Sensei template and the small ones
// beside it did, when this was written).
//
// # The model
//
// A session's kernel is given the session's GPUs for its life: the largest of
// max_resource_request.gpus and any training's GPUs, as a kernelspec fixes a kernel's GPUs. When
// the session opens, its notebook starts the kernel; the kernel asks for its GPUs, waits for them
// if the cluster (Config.GPUs) has too few free, first come, first served (the controller's GPU
// queue: one that does not fit keeps its place), and is up Config.Resume later. It is busy while
// a training runs and idle otherwise; its notebook's tab stays connected until the session
// closes. A training that comes while the kernel is not up waits for it, and the next one comes
// at its own tick or when this one ends, whichever is later; a session whose stop tick passes
// with trainings still to run closes when they have run. A kernel without GPUs never waits.
//
// Every CullInterval (from tick 0) the culler asks gateway.Cullable, the rule the gateway's own
// culler uses, of every kernel that is up, with the kernel's last activity (when it came up, or
// its last training started or ended), its execution state and one connection: so only with
// cullConnected does it cull the kernel of an open notebook, which every kernel of a trace is.
// A culled kernel gives its GPUs back; with Suspend the next training resumes it, with Delete
// the next training starts a fresh kernel (its variables are lost). Both ask for GPUs again and
// take Config.Resume to come up, so the two policies move the same GPUs; what Delete costs
// more is the variables, which the table counts as restarts. The gateway's cullBusy is not
// simulated.
//
// GPU-time counts GPUs × time held, from getting the GPUs (the pod coming up included) to
// being culled or the session closing. Bound is each session's GPUs × its life, as if bound per
// notebook on a cluster large enough; Busy is the GPU-time of kernels running a training, which
// no idle threshold gives back. On a cluster smaller than Trace.PeakGPUs sessions also wait with
// no culling at all, and hold less than Bound only because they waited.
//
// Compare runs one trace at several settings (Plan orders them: no culling, a policy at each
// threshold, Delete at a few) and Table.Write prints them as a table.
//
// # The example trace
//
// examples/traces/synthetic-sensei.json is a working day of 40 sessions in this format, made by
// generateSynthetic (generate_test.go; `go test ./simulate -run TestSyntheticTrace -update`
// writes it again): integer draws from a fixed seed, from buckets shaped after the Sensei
// template — notebooks opened from morning to mid-afternoon and left open for hours, short
// cells with idle gaps up to hours, now and then a long training, a third of the cells without
// GPUs, 0 to 8 GPUs per notebook.
package simulate
