package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

// localState is what the local provisioner remembers of its kernels' saved variables.
type localState struct {
	once   sync.Once
	helper string
	err    error
	mu     sync.Mutex
	saved  map[string]StateOutcome
}

// stateHelper writes the launcher's state helper into the runtime directory, once.
func (p *LocalProvisioner) stateHelper() (string, error) {
	p.state.once.Do(func() {
		path := launcher.StateHelperInstallPath(filepath.Join(p.RuntimeDir, "bin"))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			p.state.err = err
			return
		}
		p.state.helper, p.state.err = path, os.WriteFile(path, launcher.StateHelper(), 0o600)
	})
	return p.state.helper, p.state.err
}

// GPUs implements Provisioner: local kernels hold none.
func (p *LocalProvisioner) GPUs(context.Context, string) int { return 0 }

// State implements Provisioner: with StateDir set, every local kernel keeps its variables
// there.
func (p *LocalProvisioner) State(_ context.Context, id string) (StateLocation, bool) {
	if p.StateDir == "" {
		return StateLocation{}, false
	}
	helper, err := p.stateHelper()
	if err != nil {
		return StateLocation{}, false
	}
	p.state.mu.Lock()
	o := p.state.saved[id]
	p.state.mu.Unlock()
	return StateLocation{
		Helper: helper, File: filepath.Join(p.StateDir, launcher.StateFileName(id)), MaxBytes: p.StateMaxBytes,
		Saved: o.Saved, Message: o.Message,
	}, true
}

// RecordState implements Provisioner: in memory (local kernels die with the gateway).
func (p *LocalProvisioner) RecordState(_ context.Context, id string, o StateOutcome) error {
	if p.StateDir == "" {
		return fmt.Errorf("kernel %s keeps no state", id)
	}
	p.state.mu.Lock()
	defer p.state.mu.Unlock()
	if p.state.saved == nil {
		p.state.saved = map[string]StateOutcome{}
	}
	p.state.saved[id] = o
	return nil
}

// forgetState removes a shut-down kernel's snapshot and record.
func (p *LocalProvisioner) forgetState(id string) {
	if p.StateDir == "" {
		return
	}
	_, _ = launcher.RemoveState(p.StateDir, id)
	p.state.mu.Lock()
	delete(p.state.saved, id)
	p.state.mu.Unlock()
}
