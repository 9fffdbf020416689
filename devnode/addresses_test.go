package devnode

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddrPool(t *testing.T) {
	dir := t.TempDir()
	p, err := newAddrPool("pod", netip.MustParsePrefix("127.9.0.0/29"), dir)
	require.NoError(t, err)
	defer p.close()
	first, last := p.bounds()
	assert.Equal(t, "127.9.0.2", first.String(), ".0 and .1 are never handed out")
	assert.Equal(t, "127.9.0.6", last.String(), "the broadcast address is never handed out")

	var got []string
	for range 5 {
		a, err := p.allocate(netip.Addr{})
		require.NoError(t, err)
		got = append(got, a.String())
	}
	assert.ElementsMatch(t, []string{"127.9.0.2", "127.9.0.3", "127.9.0.4", "127.9.0.5", "127.9.0.6"}, got)
	_, err = p.allocate(netip.Addr{})
	assert.ErrorContains(t, err, "every pod address in 127.9.0.0/29 is in use")

	// a second pool on the same lock directory (another devnode on this machine) gets nothing
	other, err := newAddrPool("pod", netip.MustParsePrefix("127.9.0.0/29"), dir)
	require.NoError(t, err)
	defer other.close()
	_, err = other.allocate(netip.MustParseAddr("127.9.0.4"))
	assert.Error(t, err, "an address held by another pool was handed out")

	p.release(netip.MustParseAddr("127.9.0.4"))
	a, err := other.allocate(netip.MustParseAddr("127.9.0.4"))
	require.NoError(t, err)
	assert.Equal(t, "127.9.0.4", a.String(), "a released address can be taken, and the preferred one is")

	b, err := p.allocate(netip.MustParseAddr("127.9.0.3"))
	require.NoError(t, err)
	assert.Equal(t, "127.9.0.3", b.String(), "a pool keeps giving its own address to whoever prefers it")
}
