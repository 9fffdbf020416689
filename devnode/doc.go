// Package devnode is a development and test node agent: it registers a Node and runs the
// pods the scheduler binds to it as local processes, so the whole system runs on one machine
// without a container runtime. It plays the kubelet for `make up` and the end-to-end tests.
// It is not for production: production runs pods on a real kubelet.
//
// # Node
//
// The Node gets capacity and allocatable from Options (cpu, memory, pods, fake GPUs, extra
// extended resources), the labels kubernetes.io/hostname, kubernetes.io/os,
// kubernetes.io/arch and LabelDevnode plus Options.Labels, and Options.Taints (by default
// DefaultGPUTaint when it has GPUs). It reports Ready through nodes/status and renews its Lease
// in kube-node-lease; the control plane's node-lifecycle controller then lifts the not-ready
// taint. When the agent stops the node reports NotReady (reason KubeletNotReady).
//
// # Containers
//
// Each run of a container is a process started through a helper (the agent's own executable
// with a hidden first argument, see RunHelperIfRequested) in new pid, mount and UTS
// namespaces:
//
//   - the command is its pid namespace's init (pid 1), as in a container: when it ends, the
//     kernel kills every process it left, and, like any init, it does not die of a SIGTERM
//     it installed no handler for (it is then killed when the grace period ends);
//   - the root is an overlay of the host's root with a private upper directory, so an
//     unmapped image runs on the host's files, copy-on-write: what a container writes outside
//     its volumes (its /tmp, say) stays in the run directory and never reaches the host. The
//     host's other mounts (/sys, /dev, ...) are bound in as they are; /proc is the pid
//     namespace's own;
//   - a mapped image (Options.ImageMap: an image reference or prefix to a host directory laid
//     out like the image's root) has its files bound over that root: DIR/usr/local/bin/x
//     appears at /usr/local/bin/x next to the host's files, and the host does not change;
//   - an image with a root filesystem (Options.ImageRoot, --image-root: a directory holding
//     the image's whole root, such as a debootstrapped distribution) runs as under a container
//     runtime: the root is an overlay of that directory with the run's private upper
//     directory (the directory is never written), with /dev and /sys bound from the host, a
//     fresh devpts at /dev/pts, a private tmpfs at /dev/shm, the host's /etc/resolv.conf
//     (read-only) and a world-writable /tmp; no other file or mount of the host appears. Its
//     status imageID is devnode-root://DIR (devnode-dir://DIR for ImageMap). Exec probes
//     run the image's own setpriv (util-linux) when the container is not root;
//   - volumes are bound at their mountPath; absolute paths resolve inside the container's
//     root, symbolic links included (/var/run/x is /run/x on Debian); missing mount points
//     are created in the private upper directory;
//   - /etc/hosts is the pod's own file; the host name is the pod's;
//   - the process runs as the container's runAsUser/runAsGroup (root when unset; a
//     runAsNonRoot container without runAsUser is refused, as devnode cannot read the
//     image's USER), with supplementalGroups and fsGroup, no_new_privs when
//     allowPrivilegeEscalation is false, in workingDir (default /, created when missing).
//
// Entrypoint semantics: devnode cannot read an image's ENTRYPOINT or CMD, so a container must
// set command (args are appended); one without a command fails with reason
// CreateContainerError. command[0] without a '/' is looked up in the container's PATH, which
// defaults to StandardPath: with an unmapped image `python3` is Debian's /usr/bin/python3. A
// command that cannot be found or executed is reported as waiting with reason
// CreateContainerError and the exec error as message ("exec: \"x\": executable file not found
// in $PATH (...)"); under restartPolicy Never the pod then fails, otherwise devnode retries
// with back-off. $(VAR) references in command, args, env values and subPathExpr expand as the
// kubelet expands them.
//
// Environment: envFrom, then env (literal values; valueFrom fieldRef metadata.name,
// metadata.namespace, metadata.uid, metadata.labels['k'], metadata.annotations['k'],
// spec.nodeName, spec.serviceAccountName, status.podIP, status.hostIP; resourceFieldRef;
// secretKeyRef; configMapKeyRef), over KUBERNETES_SERVICE_HOST/PORT (the API server devnode
// talks to), with PATH, HOSTNAME and HOME (from the image's or the host's /etc/passwd, else /)
// added when unset (the passwd file of an ImageRoot image is its own only). A missing Secret, ConfigMap or key makes the container wait with reason
// CreateContainerConfigError until it appears.
//
// Volumes: emptyDir (kept across container restarts), hostPath, secret, configMap,
// downwardAPI and projected (secret, configMap, downwardAPI, serviceAccountToken through the
// TokenRequest API). Their files are written once, when the pod starts, under
// <root>/pods/<ns>_<name>_<uid>/volumes/<volume>, with their modes; they are owned by the user
// every container runs as when that is one non-root user (so a kernel running as uid 1000 can
// read its connection Secret mounted with mode 0400), else by root, and by the fsGroup, which
// also gets the kubelet's group permissions. Secret, configMap, downwardAPI and projected
// volumes are mounted read-only. A persistentVolumeClaim volume is resolved as the kubelet
// does: the claim in the pod's namespace must be Bound (status.phase, spec.volumeName) to a
// PV whose claimRef is that claim; hostPath and local PVs are bound in from their directory on
// this machine (shared by every devnode on it and every pod of the claim), read-only when the
// volume says readOnly, else given to the fsGroup as an emptyDir is. Until the claim is
// usable (missing, not bound, a PV of another kind) the containers wait with reason
// ContainerCreating and a message naming the claim and the fix, and devnode retries. Other
// volume types fail the pod with reason Unsupported.
//
// # Network
//
// Each pod gets a network namespace of its own, as under a kubelet: lo and eth0, one end of a
// veth pair whose other end is on a Linux bridge of the host (ejbr..., one per pod network,
// shared by every devnode on the machine), with an address from Options.PodNetwork
// (10.244.0.0/16 by default; the bridge has the first one and is the default route), reported
// as status.podIP and podIPs and unique on the machine while the pod lives (host-wide locks in
// Options.LockDir keep several devnodes apart). A server binds 0.0.0.0 as in any pod; the host
// and every pod on the machine reach it at the pod IP. The namespace is held by a sleeping
// process devnode starts for the pod (it dies with devnode, and the veth pair with it); every
// container and exec probe of the pod joins it. hostNetwork pods stay in the host's namespace
// with 127.0.0.1. devnode needs ip (iproute2) and nsenter (util-linux) for this.
//
// In-cluster clients reach the API server at KUBERNETES_SERVICE_HOST/PORT, the address
// devnode itself uses. When that is on the host's loopback (a local control plane), devnode
// listens on the same address inside each pod's namespace and relays to it, so the server's
// certificate still matches.
//
// Every ClusterIP Service gets an address of its own from Options.ServiceNetwork (10.96.0.0/16 by
// default, routed locally on the host, so pods reach it through the bridge and host processes
// directly); devnode listens there on each TCP service port and relays connections to a ready
// pod the Service selects (targetPort by number or container port name), or, for a Service
// without a selector, to the ready addresses of its EndpointSlices. Each pod's
// /etc/hosts maps <svc>.<ns>.svc.cluster.local, <svc>.<ns>.svc, <svc>.<ns> and, in the pod's
// namespace, <svc> to that address; the file is rewritten in place when Services change.
// Host processes find a Service's address with LookupService (it reads <root>/services.json)
// or Agent.ServiceAddress. Headless and ExternalName Services get no address.
//
// # GPUs
//
// Options.GPUs fake devices per GPU resource (DeviceID: GPU-<node>-0, ...) are advertised as
// capacity. A container that limits (or requests) the resource gets that many devices, and
// NVIDIA_VISIBLE_DEVICES lists them, as the NVIDIA device plugin sets it. A device is never
// held by two running containers; it is freed when its container ends. A container whose
// devices are still held (by a pod still stopping) waits with reason ContainerCreating.
//
// # Probes, status and restarts
//
// Startup, readiness and liveness probes of kinds httpGet (host defaults to the pod IP),
// tcpSocket and exec (run in the container's namespaces, as its user, through nsenter and
// setpriv) follow their period, timeout and thresholds; the Ready condition follows readiness;
// a failed liveness or startup probe stops the run, which restarts per restartPolicy. gRPC
// probes fail the pod with reason Unsupported. Lifecycle hooks (exec, httpGet, tcpSocket,
// sleep): postStart runs once the process started (its failure stops the run); preStop runs
// before SIGTERM, within the grace period.
//
// Status: phase as the kubelet computes it, conditions PodReadyToStartContainers,
// Initialized, ContainersReady and Ready (other conditions, such as PodScheduled, are kept),
// podIP(s), hostIP(s), start time, and per container its state, last termination, exit code,
// reason (Completed, Error, CrashLoopBackOff, CreateContainerError, ...), restart count,
// ready, started, image and container id. Init containers run in order, each to success,
// before the containers; restartPolicy Never, OnFailure and Always are honoured, with a
// restart back-off from Options.RestartBackoff doubling to Options.MaxRestartBackoff.
//
// Deletion: on a graceful delete devnode runs preStop hooks, sends SIGTERM to each container's
// process group, SIGKILL after the grace period (the whole pid namespace dies with its init),
// writes the final status, then deletes the pod with grace period 0, as the kubelet does.
//
// # Logs and state
//
// Stdout and stderr of each run go to LogPath: <root>/pods/<ns>_<name>_<uid>/logs/<container>/
// <restartCount>.log. A start failure is appended there too. The pod directory goes with the
// pod. <root>/pods is mode 0700, so pods cannot look into each other's volumes.
//
// # Restarts of devnode
//
// Every container's init carries a parent-death signal, and its pid namespace dies with it, so
// nothing devnode started outlives it, even when it is killed with SIGKILL; a stopping agent
// stops its containers (SIGTERM, then SIGKILL after Options.ShutdownGracePeriod). A starting agent kills whatever still runs in a container of a
// previous devnode with the same root (found through the overlay backing each process's mount
// namespace, so processes that left their process group are found too), then picks its pods up
// again from the API: restart counts, finished runs, IPs and GPUs (recorded in each pod's
// state.json) carry over; a run that was going when devnode stopped counts as failed with
// reason ContainerStatusUnknown and restarts per restartPolicy (a Never pod fails).
//
// # Permissions
//
// devnode runs as root (it mounts, switches users, binds ports below 1024). Its client needs
// no more than ClusterRole grants (a test runs it with exactly that): its Node and
// nodes/status, Leases, pods (get, list, watch, delete; all namespaces, as Services select
// pods anywhere) and pods/status, Services and EndpointSlices (list, watch), Secrets,
// ConfigMaps, PersistentVolumeClaims and PersistentVolumes (get), serviceaccounts/token
// (create).
//
// Not supported: resource limits (not enforced), image pulls, network namespaces,
// updating volume contents after the start, terminationMessagePath files
// (FallbackToLogsOnError works), sidecar init containers, ephemeral containers,
// activeDeadlineSeconds, and the kubelet API (kubectl logs/exec): read the log files instead.
package devnode
