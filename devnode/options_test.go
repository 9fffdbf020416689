package devnode

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestOptionsValidation(t *testing.T) {
	dir := t.TempDir()
	rootfs := t.TempDir()
	for _, d := range []string{"etc", "usr"} {
		require.NoError(t, os.Mkdir(filepath.Join(rootfs, d), 0o755))
	}
	colon := filepath.Join(t.TempDir(), "a:b")
	for _, d := range []string{"etc", "usr"} {
		require.NoError(t, os.MkdirAll(filepath.Join(colon, d), 0o755))
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string // substring of the error; "" means valid
	}{
		{"minimal", Options{NodeName: "n1"}, ""},
		{"no node name", Options{}, "set --node-name"},
		{"bad node name", Options{NodeName: "Node_1"}, `node name "Node_1" is invalid`},
		{"root with colon", Options{NodeName: "n1", Root: "/tmp/a:b"}, "mount options cannot carry"},
		{"negative gpus", Options{NodeName: "n1", GPUs: -1}, "gpus -1 is negative"},
		{"gpu resource without domain", Options{NodeName: "n1", GPUResources: []corev1.ResourceName{"gpu"}}, "not an extended resource name"},
		{"gpu resource twice", Options{NodeName: "n1", GPUResources: []corev1.ResourceName{"nvidia.com/gpu", "nvidia.com/gpu"}}, "given twice"},
		{"kubernetes.io resource", Options{NodeName: "n1", Resources: corev1.ResourceList{"kubernetes.io/x": resource.MustParse("1")}}, "not an extended resource name"},
		{"bad label", Options{NodeName: "n1", Labels: map[string]string{"a b": "c"}}, `label key "a b" is invalid`},
		{"missing image dir", Options{NodeName: "n1", ImageMap: []ImageMapping{{Image: "x", Dir: dir + "/nope"}}}, "the directory does not exist"},
		{"image dir", Options{NodeName: "n1", ImageMap: []ImageMapping{{Image: "x", Dir: dir}}}, ""},
		{"image map twice", Options{NodeName: "n1", ImageMap: []ImageMapping{{Image: "x", Dir: dir}, {Image: "x", Dir: rootfs}}}, "image map x is given twice"},
		{"image root", Options{NodeName: "n1", ImageRoot: []ImageMapping{{Image: "x", Dir: rootfs}}}, ""},
		{"image root and map", Options{NodeName: "n1", ImageMap: []ImageMapping{{Image: "y", Dir: dir}}, ImageRoot: []ImageMapping{{Image: "x", Dir: rootfs}}}, ""},
		{"image root without image", Options{NodeName: "n1", ImageRoot: []ImageMapping{{Dir: rootfs}}}, "image root entry 1 has no image"},
		{"missing image root", Options{NodeName: "n1", ImageRoot: []ImageMapping{{Image: "x", Dir: dir + "/nope"}}}, "hack/rootfs.sh"},
		{"image root not a rootfs", Options{NodeName: "n1", ImageRoot: []ImageMapping{{Image: "x", Dir: dir}}}, "is not a root filesystem (it has no etc/)"},
		{"image root with colon", Options{NodeName: "n1", ImageRoot: []ImageMapping{{Image: "x", Dir: colon}}}, "mount options cannot carry"},
		{"image in both lists", Options{NodeName: "n1", ImageMap: []ImageMapping{{Image: "x", Dir: dir}}, ImageRoot: []ImageMapping{{Image: "x", Dir: rootfs}}}, "also given as image map"},
		{"public pod network", Options{NodeName: "n1", PodNetwork: netip.MustParsePrefix("8.8.0.0/24")}, "pod network 8.8.0.0/24 must be a private IPv4 range (10/8, 172.16/12 or 192.168/16) between /8 and /29, e.g. 10.244.0.0/16"},
		{"loopback service network", Options{NodeName: "n1", ServiceNetwork: netip.MustParsePrefix("127.0.1.0/24")}, "service network 127.0.1.0/24 must be a private IPv4 range"},
		{"tiny pod network", Options{NodeName: "n1", PodNetwork: netip.MustParsePrefix("10.1.0.0/30")}, "between /8 and /29"},
		{"overlapping networks", Options{NodeName: "n1", PodNetwork: netip.MustParsePrefix("10.96.0.0/12"), ServiceNetwork: netip.MustParsePrefix("10.96.0.0/16")}, "overlaps"},
		{"negative duration", Options{NodeName: "n1", RestartBackoff: -time.Second}, "restart backoff -1s is negative"},
		{"negative qps", Options{NodeName: "n1", KubeAPIQPS: -1}, "kube API qps -1 and burst 0 must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{NodeName: "n1", GPUs: 2}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, []corev1.Taint{DefaultGPUTaint}, o.Taints, "a GPU node is tainted by default")
	assert.Equal(t, []corev1.ResourceName{DefaultGPUResource}, o.GPUResources)
	assert.Equal(t, 110, o.Pods)
	assert.Equal(t, float32(50), o.KubeAPIQPS, "the kubelet's default, not client-go's 5")
	assert.Equal(t, 100, o.KubeAPIBurst)
	assert.False(t, o.CPU.IsZero())
	assert.False(t, o.Memory.IsZero())
	assert.Equal(t, netip.MustParsePrefix("10.244.0.0/16"), o.PodNetwork)
	assert.Equal(t, netip.MustParsePrefix("10.96.0.0/16"), o.ServiceNetwork)

	o, err = Options{NodeName: "n1"}.withDefaults()
	require.NoError(t, err)
	assert.Empty(t, o.Taints, "a node without GPUs is not tainted")
	o, err = Options{NodeName: "n1", GPUs: 1, Taints: []corev1.Taint{}}.withDefaults()
	require.NoError(t, err)
	assert.Empty(t, o.Taints, "an explicit empty list means no taints")
}

func TestParseTaint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want corev1.Taint
		err  string
	}{
		{in: "nvidia.com/gpu=present:NoSchedule", want: corev1.Taint{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}},
		{in: "dedicated:NoExecute", want: corev1.Taint{Key: "dedicated", Effect: corev1.TaintEffectNoExecute}},
		{in: "dedicated=x", err: "has no effect"},
		{in: "dedicated=x:Sometimes", err: `effect "Sometimes" is not`},
		{in: "bad key=x:NoSchedule", err: `key "bad key" is invalid`},
	} {
		got, err := ParseTaint(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
}

func TestParseImageMapping(t *testing.T) {
	m, err := ParseImageMapping("ghcr.io/elastic-jupyter/elastic-jupyter=/tmp/img")
	require.NoError(t, err)
	assert.Equal(t, ImageMapping{Image: "ghcr.io/elastic-jupyter/elastic-jupyter", Dir: "/tmp/img"}, m)
	for _, bad := range []string{"", "image", "=dir", "image="} {
		_, err := ParseImageMapping(bad)
		assert.ErrorContains(t, err, "IMAGE_OR_PREFIX=DIR", bad)
	}
}

func TestParseImageRoot(t *testing.T) {
	m, err := ParseImageRoot("quay.io/jupyter/base-notebook=/cache/rootfs/jupyterlab-trixie")
	require.NoError(t, err)
	assert.Equal(t, ImageMapping{Image: "quay.io/jupyter/base-notebook", Dir: "/cache/rootfs/jupyterlab-trixie"}, m)
	m, err = ParseImageRoot("quay.io/jupyter/=/r=x")
	require.NoError(t, err)
	assert.Equal(t, ImageMapping{Image: "quay.io/jupyter/", Dir: "/r=x"}, m, "the first '=' splits")
	for _, bad := range []string{"", "image", "=dir", "image="} {
		_, err := ParseImageRoot(bad)
		assert.ErrorContains(t, err, "image root", bad)
		assert.ErrorContains(t, err, "IMAGE_OR_PREFIX=DIR", bad)
	}
}
