package teetest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/teep-go/teep/internal/tee"
)

// heapWatch samples the live heap (after a collection) and keeps the peak
// above the baseline taken when it was made.
type heapWatch struct{ base, peak uint64 }

func newHeapWatch() *heapWatch {
	w := &heapWatch{}
	w.base = liveHeap()
	return w
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func (w *heapWatch) sample() {
	if h := liveHeap(); h > w.base && h-w.base > w.peak {
		w.peak = h - w.base
	}
}

func testStreaming(t *testing.T, h *harness) {
	size := h.b.StreamSize
	if size == 0 {
		size = DefaultStreamSize
	}
	bound := uint64(size / 4)
	const piece = 32 << 10
	samples := size / 16 // about 16 heap samples each way
	src := rand.New(rand.NewChaCha8([32]byte{'t', 'e', 'e', 't', 'e', 's', 't'}))
	want := sha256.New()
	buf := make([]byte, piece)

	watch := newHeapWatch()
	err := tee.Update(ctx, h.st(), func(tx tee.Tx) error {
		w, err := tx.Create("stream/big")
		if err != nil {
			return err
		}
		for n := int64(0); n < size; n += piece {
			b := buf[:min(piece, size-n)]
			for i := range b {
				b[i] = byte(src.Uint32())
			}
			want.Write(b)
			if _, err := w.Write(b); err != nil {
				w.Close()
				return err
			}
			if (n+piece)%samples < piece {
				watch.sample()
			}
		}
		return w.Close()
	})
	if err != nil {
		t.Fatalf("writing %d bytes: %v", size, err)
	}
	if watch.peak > bound {
		t.Errorf("writing %d bytes kept %d bytes live on the heap; a streaming write keeps under %d", size, watch.peak, bound)
	}

	writePeak := watch.peak
	tt := h.open(t) // read what is at rest, not what a cache kept
	watch = newHeapWatch()
	r, n, err := tt.Storage().Open("stream/big")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	if n != size {
		t.Fatalf("Open reports %d bytes, want %d", n, size)
	}
	got := sha256.New()
	var read int64
	for {
		k, err := r.Read(buf[:4<<10])
		got.Write(buf[:k])
		if (read+int64(k))/samples != read/samples {
			watch.sample()
		}
		read += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading at %d: %v", read, err)
		}
	}
	if read != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("read %d bytes back, SHA-256 %x; wrote %d, %x", read, got.Sum(nil), size, want.Sum(nil))
	}
	if watch.peak > bound {
		t.Errorf("reading %d bytes kept %d bytes live on the heap; a streaming read keeps under %d", size, watch.peak, bound)
	}
	t.Logf("%d bytes streamed; peak live heap above baseline: %d bytes writing, %d reading", size, writePeak, watch.peak)
}
