package launcher_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

// BenchmarkStateSaveLoad100MiB saves and loads a 100 MiB numpy array through a real kernel, as
// a suspend and the next resume do (the same kernel loads it back, so the numbers are the
// helper's, not a kernel start's).
func BenchmarkStateSaveLoad100MiB(b *testing.B) {
	statePath := filepath.Join(b.TempDir(), launcher.StateFileName("bench"))
	k := startStateKernel(b)
	k.run("import numpy as np\narr = np.random.default_rng(1).random(100 * 2**20 // 8)")
	var save, load time.Duration
	b.SetBytes(100 << 20)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rep, _ := k.state(launcher.StateSaveExpr(helper, statePath, 0))
		save += time.Since(start)
		require.True(b, rep.OK, rep.Error)
		start = time.Now()
		rep, _ = k.state(launcher.StateLoadExpr(helper, statePath))
		load += time.Since(start)
		require.True(b, rep.OK, rep.Error)
		require.Contains(b, rep.Restored, "arr")
	}
	b.ReportMetric(save.Seconds()/float64(b.N), "save-s/op")
	b.ReportMetric(load.Seconds()/float64(b.N), "load-s/op")
}
