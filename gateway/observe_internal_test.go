package gateway

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
)

func status(t *testing.T, state string) *jupyter.Message {
	t.Helper()
	m, err := jupyter.NewMessage("status", "s", "k", map[string]string{"execution_state": state}, nil)
	require.NoError(t, err)
	m.Channel = jupyter.ChannelIOPub
	return m
}

// TestExecutionStateFollowsOneIOPubStream: the monitor's and a websocket's iopub streams each
// carry a kernel's statuses in order, but interleave; a websocket's late "busy" after the
// monitor's "idle" must not leave an idle kernel busy (it would never be culled). Without a
// monitor, websockets' statuses count.
func TestExecutionStateFollowsOneIOPubStream(t *testing.T) {
	type obs struct {
		state       string
		fromMonitor bool
	}
	for _, tc := range []struct {
		name      string
		monitored bool
		seen      []obs
		want      string
	}{
		{"a websocket's busy arrives after the monitor's idle", true,
			[]obs{{"busy", true}, {"busy", false}, {"idle", true}, {"busy", false}}, stateIdle},
		{"the monitor says busy, a websocket's idle is late", true,
			[]obs{{"idle", false}, {"busy", true}, {"idle", false}}, stateBusy},
		{"no monitor: websockets' statuses count", false,
			[]obs{{"busy", false}, {"idle", false}}, stateIdle},
		{"starting is not a state of a running kernel", true,
			[]obs{{"idle", true}, {"starting", true}}, stateIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &kernel{phase: phaseRunning, state: stateIdle}
			if tc.monitored {
				k.monitor = &kernelconn.Conn{} // only its presence counts here
			}
			for _, o := range tc.seen {
				k.observe(status(t, o.state), o.fromMonitor)
			}
			assert.Equal(t, tc.want, k.activity().ExecutionState)
		})
	}
}
