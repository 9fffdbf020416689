package devnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/types"
)

// podState is what devnode records about a pod it runs (<pod dir>/state.json), so a restarted
// devnode gives the pod back its IP and GPUs and knows what it had started.
type podState struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	UID       types.UID `json:"uid"`
	// PodIP is the pod's IP.
	PodIP string `json:"podIP,omitempty"`
	// Devices are the fake GPU ids each container holds.
	Devices map[string][]string `json:"devices,omitempty"`
	// Processes are the pids of the containers' current runs.
	Processes map[string]int `json:"processes,omitempty"`
}

func readPodState(podDir string) (*podState, error) {
	data, err := os.ReadFile(filepath.Join(podDir, stateFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s podState
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(podDir, stateFileName), err)
	}
	return &s, nil
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s *podState) write(podDir string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(podDir, stateFileName), data, 0o600)
}
