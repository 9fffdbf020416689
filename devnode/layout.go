package devnode

import (
	"fmt"
	"path/filepath"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
)

// The layout of the root directory (Options.Root):
//
//	<root>/services.json                          Service name -> local address (see LookupService)
//	<root>/pods/                                  mode 0700: pods cannot look into each other
//	<root>/pods/<ns>_<name>_<uid>/state.json      what devnode started for the pod (IP, GPUs, pids)
//	<root>/pods/<ns>_<name>_<uid>/hosts           the pod's /etc/hosts
//	<root>/pods/<ns>_<name>_<uid>/volumes/<vol>/  emptyDir, secret, configMap, downwardAPI, projected
//	<root>/pods/<ns>_<name>_<uid>/logs/<container>/<restartCount>.log   stdout and stderr
//	<root>/pods/<ns>_<name>_<uid>/containers/<container>/<restartCount>/{rootfs,upper,work}
const (
	podsDirName     = "pods"
	servicesFile    = "services.json"
	stateFileName   = "state.json"
	hostsFileName   = "hosts"
	volumesDirName  = "volumes"
	logsDirName     = "logs"
	containerDirs   = "containers"
	rootfsDirName   = "rootfs"
	upperDirName    = "upper"
	workDirName     = "work"
	rootLockName    = ".lock"
	containerIDType = "devnode://"
)

// PodDir returns the directory devnode keeps a pod's volumes, logs and state in.
func PodDir(root, namespace, name string, uid types.UID) string {
	return filepath.Join(root, podsDirName, namespace+"_"+name+"_"+string(uid))
}

// LogPath returns the file holding the stdout and stderr of one run of a container: runs are
// numbered by the container's restartCount at the time they started (0 for the first).
func LogPath(root, namespace, name string, uid types.UID, container string, restartCount int32) string {
	return filepath.Join(PodDir(root, namespace, name, uid), logsDirName, container, strconv.Itoa(int(restartCount))+".log")
}

// containerRunDir is where one run of a container keeps its root filesystem mount point and
// its overlay upper and work directories.
func containerRunDir(podDir, container string, restartCount int32) string {
	return filepath.Join(podDir, containerDirs, container, strconv.Itoa(int(restartCount)))
}

// containerID is the status.containerStatuses[].containerID of a run.
func containerID(uid types.UID, container string, restartCount int32) string {
	short := string(uid)
	if len(short) > 8 {
		short = short[:8]
	}
	return fmt.Sprintf("%s%s-%s-%d", containerIDType, short, container, restartCount)
}
