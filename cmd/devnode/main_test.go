package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Flag values (--image-root, --log-level, --resource, ...) are parsed and validated before devnode talks to the API server.
func TestDevnodeImageRootFlag(t *testing.T) {
	ctx := context.Background()
	rootfs := t.TempDir()
	for _, d := range []string{"etc", "usr"} {
		require.NoError(t, os.Mkdir(filepath.Join(rootfs, d), 0o755))
	}
	noKubeconfig := "--kubeconfig=" + filepath.Join(t.TempDir(), "absent")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--image-root=quay.io/jupyter/base-notebook"}, "--image-root: image root \"quay.io/jupyter/base-notebook\": write IMAGE_OR_PREFIX=DIR"},
		{[]string{"--image-root=quay.io/jupyter/base-notebook=" + filepath.Join(rootfs, "absent")}, "hack/rootfs.sh"},
		{[]string{"--image-root=quay.io/jupyter/base-notebook=" + rootfs, "--image-map=quay.io/jupyter/base-notebook=" + rootfs}, "map each image once"},
		{[]string{"--kube-api-qps=-2"}, "kube API qps -2 and burst 0 must not be negative"},
		{[]string{"--log-level=loud"}, "use DEBUG, INFO"},
		{[]string{"--gpu-resource=nvidia.com/gpu,", "--resource=fpga"}, "--resource \"fpga\": write NAME=QUANTITY"},
		// valid: devnode gets as far as the kubeconfig
		{[]string{"--image-root=quay.io/jupyter/base-notebook=" + rootfs, "--image-root=quay.io/other/=" + rootfs}, "loading the kubeconfig"},
	} {
		err := run(ctx, append([]string{"--node-name=n1", noKubeconfig}, tc.args...))
		assert.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
}
