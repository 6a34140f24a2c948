package main

import (
	"math"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"syscall"
	"time"
)

// cpuTime returns the user plus system CPU time this process has used.
// mosquitto is another process, so the broker's work is not in it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mallocs returns the number of heap objects allocated so far by the whole
// process: the client's own goroutines count as well as the caller's.
func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// settled collects garbage twice (the second pass frees what the first
// one's finalizers released) and returns the number of goroutines and the
// bytes of live heap objects.
func settled() (goroutines int, heap uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapAlloc
}

// heapSampler records the peak of live plus not yet collected heap
// objects while it runs, sampling runtime/metrics, which unlike
// ReadMemStats does not stop the world.
type heapSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap starts sampling every 5 ms.
func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), peak: heapNow()}
	h.wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				h.peak = max(h.peak, heapNow())
			case <-h.stop:
				return
			}
		}
	})
	return h
}

// done stops the sampler and returns the peak it saw.
func (h *heapSampler) done() uint64 {
	close(h.stop)
	h.wg.Wait()
	return max(h.peak, heapNow())
}

// percentile returns the p-th percentile (0 to 100) of ds, in
// nanoseconds, by the nearest-rank method. It sorts ds.
func percentile(ds []int64, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(float64(len(ds)) * p / 100))
	return float64(ds[min(max(rank, 1), len(ds))-1])
}

// median returns the median of xs, which it sorts.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
