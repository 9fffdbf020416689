package devnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// addrPool hands out addresses from a range. Every address handed out is also
// locked host-wide (flock on a file in lockDir), so two devnodes on one machine, or a devnode
// and its restarted self, never hold the same address; a lock dies with its process.
type addrPool struct {
	kind    string
	prefix  netip.Prefix
	lockDir string

	mu     sync.Mutex
	held   map[netip.Addr]*os.File
	cursor netip.Addr
}

func newAddrPool(kind string, prefix netip.Prefix, lockDir string) (*addrPool, error) {
	if err := os.MkdirAll(lockDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the address lock directory: %w", err)
	}
	return &addrPool{kind: kind, prefix: prefix, lockDir: lockDir, held: map[netip.Addr]*os.File{}}, nil
}

// bounds returns the first and last addresses handed out: the network address and .1 of
// the range are skipped (.1 is the host's, on the pod bridge), and so is the broadcast address.
func (p *addrPool) bounds() (netip.Addr, netip.Addr) {
	b := p.prefix.Addr().As4()
	base := binary.BigEndian.Uint32(b[:])
	hostBits := 32 - p.prefix.Bits()
	var lastB [4]byte
	binary.BigEndian.PutUint32(lastB[:], base|(1<<hostBits-1))
	return p.prefix.Addr().Next().Next(), netip.AddrFrom4(lastB).Prev()
}

// allocate locks an address: preferred when it is valid and free, else the next free one
// after the last handed out (so a released address is not reused at once).
func (p *addrPool) allocate(preferred netip.Addr) (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	first, last := p.bounds()
	if preferred.IsValid() && p.prefix.Contains(preferred) && !preferred.Less(first) && !last.Less(preferred) {
		if _, mine := p.held[preferred]; mine {
			return preferred, nil
		}
		if p.tryLock(preferred) {
			return preferred, nil
		}
	}
	start := p.cursor
	if !start.IsValid() || start.Less(first) || last.Less(start) {
		start = first
	}
	a := start
	for {
		a = a.Next()
		if last.Less(a) {
			a = first
		}
		if _, mine := p.held[a]; !mine && p.tryLock(a) {
			p.cursor = a
			return a, nil
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("every %s address in %s is in use: give devnode a larger range", p.kind, p.prefix)
		}
	}
}

func (p *addrPool) tryLock(a netip.Addr) bool {
	f, err := os.OpenFile(filepath.Join(p.lockDir, p.kind+"-"+a.String()+".lock"), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return false
	}
	p.held[a] = f
	return true
}

// release gives an address back.
func (p *addrPool) release(a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.held[a]; ok {
		_ = f.Close()
		delete(p.held, a)
	}
}

// close releases every address.
func (p *addrPool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for a, f := range p.held {
		errs = append(errs, f.Close())
		delete(p.held, a)
	}
	return errors.Join(errs...)
}
