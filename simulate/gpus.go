package simulate

// pool is the cluster's GPUs and the queue of kernels waiting for them, served first come,
// first served as the controller's GPU queue serves kernel pods: a kernel that does not fit
// keeps its place, and no later kernel overtakes it.
type pool struct {
	total int // 0: as many as asked for
	used  int
	queue []*kernel
}

func (p *pool) fits(gpus int) bool { return p.total == 0 || p.used+gpus <= p.total }

func (p *pool) enqueue(k *kernel) { p.queue = append(p.queue, k) }

// remove takes a kernel out of the queue (its session closed while it waited).
func (p *pool) remove(k *kernel) {
	for i, q := range p.queue {
		if q == k {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			return
		}
	}
}

// next pops the kernel at the head of the queue if its GPUs are free, and takes them.
func (p *pool) next() *kernel {
	if len(p.queue) == 0 || !p.fits(p.queue[0].gpus) {
		return nil
	}
	k := p.queue[0]
	p.queue = p.queue[1:]
	p.used += k.gpus
	return k
}

func (p *pool) release(gpus int) { p.used -= gpus }
