package devnode

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultGPUResource is the extended resource fake GPUs are advertised as when no
// --gpu-resource is given.
const DefaultGPUResource corev1.ResourceName = "nvidia.com/gpu"

// DefaultGPUTaint is the taint a node with GPUs carries when no taint is configured, as GPU
// node pools usually do: only pods that tolerate it (kernels that asked for a GPU) land there.
var DefaultGPUTaint = corev1.Taint{Key: string(DefaultGPUResource), Value: "present", Effect: corev1.TaintEffectNoSchedule}

// DefaultPodNetwork and DefaultServiceNetwork are the ranges pod IPs and Service addresses
// come from unless Options say otherwise.
var (
	DefaultPodNetwork     = netip.MustParsePrefix("10.244.0.0/16")
	DefaultServiceNetwork = netip.MustParsePrefix("10.96.0.0/16")
)

// StandardPath is the PATH of a container whose environment sets none (the container
// runtimes' default).
const StandardPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ImageMapping maps an image reference to a host directory laid out like that image's root
// filesystem. Image matches a pod's image exactly, or as a prefix when it ends in ':', '@'
// or '/', or when the pod's image is Image followed by ":tag" or "@digest".
type ImageMapping struct {
	// Image is an image reference (repository, repository:tag) or a prefix of one.
	Image string
	// Dir is the host directory that stands for the image's root filesystem.
	Dir string
}

// The ImageID a container status reports for a mapped image: the prefix, then the directory.
const (
	// ImageIDDir prefixes the directory of an ImageMap entry (files laid over the host's root).
	ImageIDDir = "devnode-dir://"
	// ImageIDRoot prefixes the directory of an ImageRoot entry (the container's whole root).
	ImageIDRoot = "devnode-root://"
)

// Options configure an Agent. Zero values take the defaults documented on each field.
type Options struct {
	// NodeName is the name of the Node to register (required; a DNS subdomain).
	NodeName string
	// Root is devnode's state directory: pod directories, logs and services.json
	// (default: $TMPDIR/elastic-jupyter-devnode/<node>).
	Root string
	// CPU is the node's cpu capacity (default: the host's CPU count).
	CPU resource.Quantity
	// Memory is the node's memory capacity (default: the host's memory).
	Memory resource.Quantity
	// Pods is the node's pod capacity (default 110).
	Pods int
	// GPUs is the number of fake GPU devices per entry of GPUResources.
	GPUs int
	// GPUResources are the extended resources fake GPUs are advertised as, each with its own
	// GPUs devices (default: DefaultGPUResource). MIG-style names such as
	// nvidia.com/mig-1g.10gb are allowed.
	GPUResources []corev1.ResourceName
	// Resources are further extended resources advertised as capacity (not enforced).
	Resources corev1.ResourceList
	// Labels are added to the Node's labels.
	Labels map[string]string
	// Taints are the Node's taints. Nil means DefaultGPUTaint when GPUs > 0 and none
	// otherwise; an empty non-nil slice means none.
	Taints []corev1.Taint
	// ImageMap maps images to host directories whose files are laid over the host's root
	// (a few binaries: DIR/usr/local/bin/x appears at /usr/local/bin/x). The longest matching
	// Image of ImageMap and ImageRoot wins.
	ImageMap []ImageMapping
	// ImageRoot maps images to host directories holding the image's whole root filesystem (a
	// distribution: bin, etc, usr, ...): containers of such an image get a copy-on-write
	// overlay of DIR as their root, as under a container runtime, and see nothing of the
	// host's files but /dev, /sys, /etc/resolv.conf and their volumes. DIR is never written.
	ImageRoot []ImageMapping
	// PodNetwork is the private IPv4 range pod IPs come from (default 10.244.0.0/16). Its
	// first address (.1) is the host's, on the bridge every pod's veth is attached to; the
	// network address and the broadcast address are never used.
	PodNetwork netip.Prefix
	// ServiceNetwork is the private IPv4 range Service addresses come from (default
	// 10.96.0.0/16), routed locally on the host so that devnode's Service proxies listen
	// there for pods and host processes alike.
	ServiceNetwork netip.Prefix
	// LockDir holds the host-wide address locks that keep two devnodes on one machine from
	// handing out the same address (default: $TMPDIR/elastic-jupyter-devnode-addresses).
	LockDir string
	// HelperPath is the executable started to set up each container; it must call
	// RunHelperIfRequested first thing (default: this process's executable).
	HelperPath string
	// KubeAPIQPS and KubeAPIBurst limit the requests devnode sends the API server, as the
	// kubelet's --kube-api-qps and --kube-api-burst do (defaults 50 and 100, the kubelet's).
	// Every pod costs a few requests (its volumes' Secrets and tokens, a status write per
	// change), so client-go's own default of 5 a second would queue a burst of pod starts for
	// minutes, which no kubelet does.
	KubeAPIQPS   float32
	KubeAPIBurst int
	// HeartbeatInterval is how often the node Lease is renewed (default 5s).
	HeartbeatInterval time.Duration
	// StatusInterval is how often the Node status is reported (default 10s).
	StatusInterval time.Duration
	// RestartBackoff is the first delay before restarting a failed container; it doubles
	// up to MaxRestartBackoff (defaults 1s and 1m).
	RestartBackoff, MaxRestartBackoff time.Duration
	// ShutdownGracePeriod bounds how long containers get to stop when the agent stops
	// (default 5s).
	ShutdownGracePeriod time.Duration
	// Log receives the agent's logs (default: slog.Default()).
	Log *slog.Logger
}

// Validate reports the first invalid option, naming the field and the fix.
func (o Options) Validate() error {
	_, err := o.withDefaults()
	return err
}

// withDefaults returns o with every zero field set to its default, or an error naming the
// first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.NodeName == "" {
		return o, errors.New("node name is empty: set --node-name to the Node to register, e.g. devnode-1")
	}
	if errs := validation.IsDNS1123Subdomain(o.NodeName); len(errs) > 0 {
		return o, fmt.Errorf("node name %q is invalid (%s): use lower-case letters, digits, '-' and '.'", o.NodeName, strings.Join(errs, "; "))
	}
	if o.Root == "" {
		o.Root = filepath.Join(os.TempDir(), "elastic-jupyter-devnode", o.NodeName)
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return o, fmt.Errorf("root %q: %w", o.Root, err)
	}
	o.Root = root
	if err := checkMountPath("root", o.Root); err != nil {
		return o, err
	}
	if o.CPU.IsZero() {
		o.CPU = *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI)
	}
	if o.Memory.IsZero() {
		o.Memory = hostMemory()
	}
	if o.Pods == 0 {
		o.Pods = 110
	}
	if o.Pods < 0 {
		return o, fmt.Errorf("pods %d is negative: give the number of pods the node accepts", o.Pods)
	}
	if o.GPUs < 0 {
		return o, fmt.Errorf("gpus %d is negative: give the number of fake GPUs, 0 for none", o.GPUs)
	}
	if len(o.GPUResources) == 0 {
		o.GPUResources = []corev1.ResourceName{DefaultGPUResource}
	}
	seen := map[corev1.ResourceName]bool{}
	for _, r := range o.GPUResources {
		if err := checkExtendedResource("gpu resource", r); err != nil {
			return o, err
		}
		if seen[r] {
			return o, fmt.Errorf("gpu resource %q is given twice: list each resource once", r)
		}
		seen[r] = true
	}
	for r := range o.Resources {
		if err := checkExtendedResource("resource", r); err != nil {
			return o, err
		}
		if seen[r] {
			return o, fmt.Errorf("resource %q is also a gpu resource: give it once", r)
		}
	}
	for k, v := range o.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return o, fmt.Errorf("label key %q is invalid: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return o, fmt.Errorf("label %s value %q is invalid: %s", k, v, strings.Join(errs, "; "))
		}
	}
	if o.Taints == nil && o.GPUs > 0 {
		o.Taints = []corev1.Taint{DefaultGPUTaint}
	}
	images := map[string]string{}
	for i := range o.ImageMap {
		m := &o.ImageMap[i]
		if m.Image == "" {
			return o, fmt.Errorf("image map entry %d has no image: write IMAGE_OR_PREFIX=DIR", i+1)
		}
		if images[m.Image] != "" {
			return o, fmt.Errorf("image map %s is given twice: map each image once", m.Image)
		}
		images[m.Image] = "image map"
		dir, err := filepath.Abs(m.Dir)
		if err != nil {
			return o, fmt.Errorf("image map %s: %w", m.Image, err)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return o, fmt.Errorf("image map %s=%s: the directory does not exist: build the image's files there (e.g. make build into DIR/usr/local/bin)", m.Image, m.Dir)
		}
		m.Dir = dir
	}
	for i := range o.ImageRoot {
		m := &o.ImageRoot[i]
		if m.Image == "" {
			return o, fmt.Errorf("image root entry %d has no image: write IMAGE_OR_PREFIX=DIR", i+1)
		}
		if other := images[m.Image]; other != "" {
			return o, fmt.Errorf("image root %s: the image is also given as %s: map each image once, with --image-map (files over the host's root) or --image-root (a whole root filesystem)", m.Image, other)
		}
		images[m.Image] = "image root"
		dir, err := filepath.Abs(m.Dir)
		if err != nil {
			return o, fmt.Errorf("image root %s: %w", m.Image, err)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return o, fmt.Errorf("image root %s=%s: the directory does not exist: build the image's root filesystem there (hack/rootfs.sh builds the JupyterLab one)", m.Image, m.Dir)
		}
		for _, sub := range []string{"etc", "usr"} {
			if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
				return o, fmt.Errorf("image root %s=%s is not a root filesystem (it has no %s/): give the directory holding the image's whole root (bin, etc, usr, ...), or use --image-map to lay a few files over the host's root", m.Image, m.Dir, sub)
			}
		}
		if err := checkMountPath("image root "+m.Image, dir); err != nil {
			return o, err
		}
		m.Dir = dir
	}
	if !o.PodNetwork.IsValid() {
		o.PodNetwork = DefaultPodNetwork
	}
	if !o.ServiceNetwork.IsValid() {
		o.ServiceNetwork = DefaultServiceNetwork
	}
	for name, p := range map[string]netip.Prefix{"pod network": o.PodNetwork, "service network": o.ServiceNetwork} {
		if !p.Addr().Is4() || !p.Addr().IsPrivate() || p.Bits() < 8 || p.Bits() > 29 {
			return o, fmt.Errorf("%s %s must be a private IPv4 range (10/8, 172.16/12 or 192.168/16) between /8 and /29, e.g. %s", name, p, map[string]netip.Prefix{"pod network": DefaultPodNetwork, "service network": DefaultServiceNetwork}[name])
		}
	}
	if o.PodNetwork.Overlaps(o.ServiceNetwork) {
		return o, fmt.Errorf("pod network %s overlaps service network %s: give them separate ranges", o.PodNetwork, o.ServiceNetwork)
	}
	o.PodNetwork, o.ServiceNetwork = o.PodNetwork.Masked(), o.ServiceNetwork.Masked()
	if o.LockDir == "" {
		o.LockDir = filepath.Join(os.TempDir(), "elastic-jupyter-devnode-addresses")
	}
	if o.HelperPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("finding this executable to run as the container helper: %w", err)
		}
		o.HelperPath = exe
	}
	if o.KubeAPIQPS < 0 || o.KubeAPIBurst < 0 {
		return o, fmt.Errorf("kube API qps %g and burst %d must not be negative", o.KubeAPIQPS, o.KubeAPIBurst)
	}
	if o.KubeAPIQPS == 0 {
		o.KubeAPIQPS = 50
	}
	if o.KubeAPIBurst == 0 {
		o.KubeAPIBurst = 100
	}
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"heartbeat interval", &o.HeartbeatInterval, 5 * time.Second},
		{"status interval", &o.StatusInterval, 10 * time.Second},
		{"restart backoff", &o.RestartBackoff, time.Second},
		{"max restart backoff", &o.MaxRestartBackoff, time.Minute},
		{"shutdown grace period", &o.ShutdownGracePeriod, 5 * time.Second},
	}
	for _, d := range durations {
		if *d.d < 0 {
			return o, fmt.Errorf("%s %s is negative", d.name, *d.d)
		}
		if *d.d == 0 {
			*d.d = d.def
		}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return o, nil
}

// checkMountPath refuses paths overlayfs options or mountinfo cannot carry.
func checkMountPath(field, p string) error {
	if strings.ContainsAny(p, ":,\\ \t\n") {
		return fmt.Errorf("%s %q contains ':', ',', '\\' or white space, which mount options cannot carry: choose another directory", field, p)
	}
	return nil
}

func checkExtendedResource(field string, r corev1.ResourceName) error {
	name := string(r)
	if !strings.Contains(name, "/") || strings.HasPrefix(name, "kubernetes.io/") || strings.HasSuffix(name, ".kubernetes.io/") {
		return fmt.Errorf("%s %q is not an extended resource name: use a domain-prefixed name such as nvidia.com/gpu", field, name)
	}
	if errs := validation.IsQualifiedName(name); len(errs) > 0 {
		return fmt.Errorf("%s %q is invalid: %s", field, name, strings.Join(errs, "; "))
	}
	return nil
}

// hostMemory reads MemTotal from /proc/meminfo (1Gi when it cannot).
func hostMemory() resource.Quantity {
	data, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				return *resource.NewQuantity(kb*1024, resource.BinarySI)
			}
		}
	}
	return resource.MustParse("1Gi")
}

// ParseImageMapping parses IMAGE_OR_PREFIX=DIR, the value of --image-map.
func ParseImageMapping(s string) (ImageMapping, error) {
	return parseMapping("image map", s, "ghcr.io/elastic-jupyter/elastic-jupyter=/tmp/image")
}

// ParseImageRoot parses IMAGE_OR_PREFIX=DIR, the value of --image-root.
func ParseImageRoot(s string) (ImageMapping, error) {
	return parseMapping("image root", s, "quay.io/jupyter/base-notebook=$HOME/.cache/elastic-jupyter/rootfs/jupyterlab-trixie")
}

func parseMapping(what, s, example string) (ImageMapping, error) {
	image, dir, ok := strings.Cut(s, "=")
	if !ok || image == "" || dir == "" {
		return ImageMapping{}, fmt.Errorf("%s %q: write IMAGE_OR_PREFIX=DIR, e.g. %s", what, s, example)
	}
	return ImageMapping{Image: image, Dir: dir}, nil
}

// ParseTaint parses KEY[=VALUE]:EFFECT, as kubectl taint does.
func ParseTaint(s string) (corev1.Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return corev1.Taint{}, fmt.Errorf("taint %q has no effect: write KEY[=VALUE]:EFFECT, e.g. nvidia.com/gpu=present:NoSchedule", s)
	}
	key, value, _ := strings.Cut(kv, "=")
	t := corev1.Taint{Key: key, Value: value, Effect: corev1.TaintEffect(effect)}
	switch t.Effect {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		return t, fmt.Errorf("taint %q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", s, effect)
	}
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return t, fmt.Errorf("taint %q: key %q is invalid: %s", s, key, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
		return t, fmt.Errorf("taint %q: value %q is invalid: %s", s, value, strings.Join(errs, "; "))
	}
	return t, nil
}

// imageSource is where a container's files come from.
type imageSource struct {
	// dir is the mapped directory; "" for an unmapped image, which runs on the host's root.
	dir string
	// root says dir is the image's whole root (ImageRoot), not files over the host's (ImageMap).
	root bool
}

// image returns where the files of image come from: the longest matching Image of ImageMap
// and ImageRoot (Validate refuses an Image given in both).
func (o *Options) image(image string) imageSource {
	best, src := -1, imageSource{}
	for _, list := range []struct {
		maps []ImageMapping
		root bool
	}{{o.ImageMap, false}, {o.ImageRoot, true}} {
		for _, m := range list.maps {
			if imageMatches(m.Image, image) && len(m.Image) > best {
				best, src = len(m.Image), imageSource{dir: m.Dir, root: list.root}
			}
		}
	}
	return src
}

// imageID is the ImageID of a container of image: where its files come from.
func (s imageSource) imageID(image string) string {
	switch {
	case s.dir == "":
		return image
	case s.root:
		return ImageIDRoot + s.dir
	}
	return ImageIDDir + s.dir
}

// passwd is the passwd file the container's user is looked up in: the image's own, except
// that an image laid over the host's root without one has the host's.
func (s imageSource) passwd() string {
	if s.dir != "" {
		p := filepath.Join(s.dir, "etc", "passwd")
		if _, err := os.Stat(p); err == nil || s.root {
			return p
		}
	}
	return "/etc/passwd"
}

func imageMatches(pattern, image string) bool {
	if pattern == image {
		return true
	}
	if strings.HasSuffix(pattern, ":") || strings.HasSuffix(pattern, "@") || strings.HasSuffix(pattern, "/") {
		return strings.HasPrefix(image, pattern)
	}
	rest, ok := strings.CutPrefix(image, pattern)
	return ok && (strings.HasPrefix(rest, ":") || strings.HasPrefix(rest, "@"))
}
