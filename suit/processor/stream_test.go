package processor_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"io"
	"math/rand"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/suitstore"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// genReader yields size bytes of a fixed pseudo-random pattern without
// holding more than one 64 KiB block.
type genReader struct {
	block []byte
	left  int64
	off   int
}

var genBlock = func() []byte {
	b := make([]byte, 64<<10)
	rand.New(rand.NewSource(7)).Read(b)
	return b
}()

func newGen(size int64) *genReader { return &genReader{block: genBlock, left: size} }

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.left > 0 {
		c := copy(p[n:], g.block[g.off:])
		if int64(c) > g.left {
			c = int(g.left)
		}
		n += c
		g.left -= int64(c)
		g.off = (g.off + c) % len(g.block)
	}
	return n, nil
}

func genDigest(size int64) []byte {
	h := sha256.New()
	io.CopyBuffer(h, newGen(size), make([]byte, 256<<10))
	return h.Sum(nil)
}

// countStore wraps MemStore but only counts component bytes (a stand-in for
// a store whose writes cost nothing), so a test can stream gigabytes
// without keeping them and the benchmark measures the processor alone.
type countStore struct {
	*processor.MemStore
	mu    sync.Mutex
	sizes map[string]int64
}

func newCountStore() *countStore {
	return &countStore{MemStore: processor.NewMemStore(), sizes: map[string]int64{}}
}

func (s *countStore) Begin(ctx context.Context) (processor.Txn, error) {
	t, err := s.MemStore.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &countTxn{Txn: t, s: s}, nil
}

type countTxn struct {
	processor.Txn
	s *countStore
}

type countWriter struct {
	s   *countStore
	key string
	n   int64
}

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
func (w *countWriter) Close() error {
	w.s.mu.Lock()
	w.s.sizes[w.key] = w.n
	w.s.mu.Unlock()
	return nil
}

func (t *countTxn) Create(_ context.Context, id suit.ComponentID) (io.WriteCloser, error) {
	return &countWriter{s: t.s, key: id.Key()}, nil
}

// streamFetcher serves a generated payload, optionally AES-CTR encrypted.
type streamFetcher struct {
	size   int64
	cek    []byte
	iv     []byte
	served atomic.Int64
}

func (f *streamFetcher) Fetch(context.Context, string) (io.ReadCloser, int64, error) {
	var r io.Reader = newGen(f.size)
	if f.cek != nil {
		block, _ := aes.NewCipher(f.cek)
		r = cipher.StreamReader{S: cipher.NewCTR(block, f.iv), R: r}
	}
	f.served.Add(1)
	return io.NopCloser(r), f.size, nil
}

// streamEnvelope builds a signed manifest fetching a size-byte payload;
// with encrypt, the payload is A128CTR-encrypted under a CEK this returns.
func streamEnvelope(t testing.TB, size int64, encrypt bool) ([]byte, *streamFetcher) {
	f := &streamFetcher{size: size}
	install := m{21: "https://example.org/big"}
	if encrypt {
		// Encrypt draws the CEK and IV from Rand first: a known Rand gives
		// a known CEK, so the fetcher can encrypt the stream itself.
		known := bytes.Repeat([]byte{0x5a}, 64)
		_, info, err := suit.Encrypt(nil, suit.EncryptOptions{ContentAlg: suit.AlgA128CTR, KEK: bytes.Repeat([]byte{1}, 16), Rand: bytes.NewReader(known)})
		if err != nil {
			t.Fatal(err)
		}
		f.cek, f.iv = known[:16], known[16:32]
		install[19] = info
	}
	d := suit.Digest{Alg: suit.AlgSHA256, Bytes: genDigest(size)}
	shared := seq(20, m{3: d.Marshal(), 14: uint64(size)})
	man := manifest(1, ids("big.suit"), [][][]byte{ids("big")}, shared, m{20: seq(20, install, 21, 2, 3, 15)})
	return signed(t, man), f
}

func streamProcessor(t testing.TB, f processor.Fetcher) (*processor.Processor, *countStore) {
	store := newCountStore()
	p, err := processor.New(processor.Config{
		Trust: trustExample(t), Store: store, Fetcher: f,
		Decryption: suit.DecryptionKeys{KEKs: []suit.KEK{{Key: bytes.Repeat([]byte{1}, 16)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, store
}

// TestStreamingPeakMemory installs a large fetched payload (256 MiB; 1 GiB
// with TEEP_SUIT_BIG=1 and -short=false) and checks the heap never grows by
// 64 MiB: fetch, decrypt, hash and staging all stream.
func TestStreamingPeakMemory(t *testing.T) {
	size := int64(256 << 20)
	if os.Getenv("TEEP_SUIT_BIG") == "1" && !testing.Short() {
		size = 1 << 30
	}
	if testing.Short() {
		size = 32 << 20
	}
	for _, encrypt := range []bool{false, true} {
		env, f := streamEnvelope(t, size, encrypt)
		p, store := streamProcessor(t, f)
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		var peak atomic.Uint64
		done := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-done:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		start := time.Now()
		res, err := p.Install(context.Background(), env, processor.RunOptions{})
		elapsed := time.Since(start)
		close(done)
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if got := store.sizes[suit.NewComponentID("big").Key()]; got != size || res.Installed[0].Size != size {
			t.Fatalf("staged %d bytes, want %d", got, size)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		growth := int64(peak.Load()) - int64(before.HeapInuse)
		t.Logf("encrypt=%v: %d MiB in %v (%.0f MiB/s); bytes allocated %.1f MiB; peak heap growth %.1f MiB",
			encrypt, size>>20, elapsed.Round(time.Millisecond), float64(size)/(1<<20)/elapsed.Seconds(), float64(alloc)/(1<<20), float64(growth)/(1<<20))
		if alloc >= 64<<20 || growth >= 64<<20 {
			t.Fatalf("memory: allocated %d bytes, peak growth %d bytes (limit 64 MiB)", alloc, growth)
		}
	}
}

// BenchmarkStreamInstall measures fetch → (decrypt) → hash → stage
// throughput and reports it as a ratio of plain SHA-256 throughput over the
// same generated data, measured in the same run.
func BenchmarkStreamInstall(b *testing.B) {
	const size = 64 << 20
	for _, tc := range []struct {
		name    string
		encrypt bool
		dir     bool
	}{{"plain", false, false}, {"a128ctr", true, false}, {"plain-dirstore", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			env, f := streamEnvelope(b, size, tc.encrypt)
			p, _ := streamProcessor(b, f)
			if tc.dir {
				// The directory store: real files, fsync on close.
				ds, err := suitstore.Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer ds.Close()
				if p, err = processor.New(processor.Config{Trust: trustExample(b), Store: ds, Fetcher: f}); err != nil {
					b.Fatal(err)
				}
			}
			// Baseline: SHA-256 over the same generator, best of three.
			var base time.Duration
			for i := 0; i < 3; i++ {
				s := time.Now()
				genDigest(size)
				if d := time.Since(s); base == 0 || d < base {
					base = d
				}
			}
			b.SetBytes(size)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := p.Install(context.Background(), env, processor.RunOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(base.Seconds()/per.Seconds(), "ratio-vs-sha256")
		})
	}
}
