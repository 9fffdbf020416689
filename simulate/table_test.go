package simulate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompareRefusesBadOptions(t *testing.T) {
	tr, err := Parse([]byte(threeSessions))
	require.NoError(t, err)
	ok := Options{Settings: []Setting{{"Suspend", time.Minute}}, CullInterval: time.Minute}
	for _, tc := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Settings = nil }, "no settings to compare"},
		{func(o *Options) { o.Settings = []Setting{{"Suspend", -time.Minute}} }, "idle threshold -1m0s is negative"},
		{func(o *Options) { o.Settings = []Setting{{"Suspend", 0}, {"Delete", 0}} }, "no culling is given twice"},
		{func(o *Options) { o.Settings = []Setting{{"Delete", time.Hour}, {"Delete", time.Hour}} }, "Delete at 1h is given twice"},
		{func(o *Options) { o.CullInterval = 0 }, "cull interval 0s"},
		{func(o *Options) { o.Settings = []Setting{{"suspend", time.Minute}} }, `cull policy "suspend": use Suspend or Delete`},
		{func(o *Options) { o.Resume = -1 }, "Suspend at 1m: resume time"},
	} {
		o := ok
		tc.change(&o)
		_, err := Compare(tr, o)
		assert.ErrorContains(t, err, tc.want)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	assert.Zero(t, Percentile(nil, 0.5))
	ds := []time.Duration{5, 1, 4, 2, 3}
	assert.Equal(t, time.Duration(3), Percentile(ds, 0.5))
	assert.Equal(t, time.Duration(5), Percentile(ds, 0.95))
	assert.Equal(t, time.Duration(1), Percentile(ds, 0))
	assert.Equal(t, []time.Duration{5, 1, 4, 2, 3}, ds, "the waits keep their order")
	twenty := make([]time.Duration, 20)
	for i := range twenty {
		twenty[i] = time.Duration(i + 1)
	}
	assert.Equal(t, time.Duration(19), Percentile(twenty, 0.95))
}

func TestShort(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 90 * time.Minute: "1h30m", 2 * time.Hour: "2h", 45 * time.Second: "45s",
		time.Hour + 30*time.Second: "1h30s", 1400 * time.Millisecond: "1s", -time.Minute: "-1m"} {
		assert.Equal(t, want, short(d))
	}
}
