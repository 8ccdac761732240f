package broker_test

// A lossy network between device and TAM: a UDP proxy on loopback that
// drops, duplicates and reorders datagrams (seeded, bounded). Sessions must
// still complete through CoAP retransmission and the TAM's response cache,
// nothing may be installed twice, and no token may be accepted twice (the
// TAM rejects no message as a replay).

import (
	"bufio"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// faults are the proxy's rates of mischief, per datagram.
type faults struct{ drop, dup, reorder float64 }

// Bounds of the proxy's mischief.
const (
	lossyMaxDropsRow  = 3 // consecutive drops per direction, so progress is certain
	lossyReorderDelay = 15 * time.Millisecond
)

type lossyStats struct {
	forwarded, dropped, duplicated, reordered int
	// blockDrops counts dropped datagrams carrying a whole block (more
	// than lossyBlockBytes), per direction: 0 a Block1 request block, 1 a
	// Block2 answer block.
	blockDrops [2]int
}

// lossyBlockBytes: a datagram longer than this carries a full 1024-byte
// block with its header and options.
const lossyBlockBytes = 1024

type lossyProxy struct {
	t        *testing.T
	front    *net.UDPConn // the device's side
	back     *net.UDPConn // connected to the TAM
	mu       sync.Mutex
	rng      *rand.Rand
	f        faults
	client   *net.UDPAddr
	dropsRow [2]int
	held     [2][]byte
	stats    lossyStats
	wg       sync.WaitGroup
}

func startLossyProxy(t *testing.T, target net.Addr, seed uint64, f faults) *lossyProxy {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, target.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{t: t, front: front, back: back, f: f, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	p.wg.Add(2)
	go p.pump(0)
	go p.pump(1)
	t.Cleanup(func() {
		front.Close()
		back.Close()
		p.wg.Wait()
	})
	return p
}

func (p *lossyProxy) addr() string { return p.front.LocalAddr().String() }

// pump moves datagrams in one direction: 0 device → TAM, 1 TAM → device.
func (p *lossyProxy) pump(dir int) {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		var n int
		var err error
		if dir == 0 {
			var from *net.UDPAddr
			n, from, err = p.front.ReadFromUDP(buf)
			if err == nil {
				p.mu.Lock()
				p.client = from
				p.mu.Unlock()
			}
		} else {
			n, err = p.back.Read(buf)
		}
		if err != nil {
			return
		}
		p.deliver(dir, append([]byte(nil), buf[:n]...))
	}
}

func (p *lossyProxy) write(dir int, b []byte) {
	if dir == 0 {
		p.back.Write(b)
		return
	}
	p.mu.Lock()
	c := p.client
	p.mu.Unlock()
	if c != nil {
		p.front.WriteToUDP(b, c)
	}
}

func (p *lossyProxy) deliver(dir int, b []byte) {
	p.mu.Lock()
	r := p.rng.Float64()

	var send [][]byte
	switch {
	case r < p.f.drop && p.dropsRow[dir] < lossyMaxDropsRow:
		p.dropsRow[dir]++
		p.stats.dropped++
		if len(b) > lossyBlockBytes {
			p.stats.blockDrops[dir]++
		}
	case r >= p.f.drop && r < p.f.drop+p.f.dup:
		p.dropsRow[dir] = 0
		p.stats.duplicated++
		send = [][]byte{b, b}
	case r >= p.f.drop+p.f.dup && r < p.f.drop+p.f.dup+p.f.reorder && p.held[dir] == nil:
		// Hold this one back: it goes after the next datagram, or after a
		// short delay when none follows.
		p.dropsRow[dir] = 0
		p.stats.reordered++
		p.held[dir] = b
		time.AfterFunc(lossyReorderDelay, func() {
			p.mu.Lock()
			h := p.held[dir]
			if h != nil && &h[0] == &b[0] {
				p.held[dir] = nil
			} else {
				h = nil
			}
			p.mu.Unlock()
			if h != nil {
				p.write(dir, h)
			}
		})
	default:
		p.dropsRow[dir] = 0
		send = [][]byte{b}
		if h := p.held[dir]; h != nil {
			p.held[dir] = nil
			send = append(send, h)
		}
	}
	p.stats.forwarded += len(send)
	p.mu.Unlock()
	for _, s := range send {
		p.write(dir, s)
	}
}

// tamCounter reads one counter of the TAM's /metrics (0 when absent).
func tamCounter(t *testing.T, srv *tamtest.TAM, name, labels string) float64 {
	t.Helper()
	resp, err := srv.HTTPClient.Get(srv.BaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name) || (labels != "" && !strings.Contains(l, labels)) {
			continue
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// TestCoAPLossyNetwork: whole sessions (install, update) through a proxy
// that drops, duplicates and reorders. Every message faces every fault,
// inside block-wise transfers too: the Broker sends each block as its own
// confirmable request, retransmitted when it or its answer is lost.
func TestCoAPLossyNetwork(t *testing.T) {
	for _, c := range []struct {
		name  string
		size  int
		f     faults
		seeds []uint64
	}{
		{"single-datagram/all-faults", 200, faults{drop: 0.15, dup: 0.10, reorder: 0.10}, []uint64{1, 2, 3}},
		{"block-wise-256KiB/all-faults", 256 << 10, faults{drop: 0.10, dup: 0.05, reorder: 0.05}, []uint64{1, 2, 3}},
		// 5 MiB is 5120 Block2 round trips: a lower rate keeps the run short
		// and still loses about a hundred blocks.
		{"block-wise-5MiB/all-faults", 5 << 20, faults{drop: 0.01, dup: 0.01, reorder: 0.01}, []uint64{1}},
	} {
		for _, seed := range c.seeds {
			t.Run(c.name+"/seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
				lossySession(t, seed, c.size, c.f)
			})
		}
	}
}

func lossySession(t *testing.T, seed uint64, size int, f faults) {
	tees := openTEEs(t, t.TempDir(), "tee0")
	srv := startCoAPTAM(t, attestationKeys(tees))
	signer := tamtest.Signer(t)
	srv.TrustSigner(signer.PublicKey())
	proxy := startLossyProxy(t, srv.coap.Addr("udp"), seed, f)
	d := newCoAPDevice(t, tees, "tee0", "coap://"+proxy.addr()+"/tam", srv.Keys(), append(srv.Keys(), signer.PublicKey()),
		broker.CoAPOptions{AckTimeout: 40 * time.Millisecond, MaxRetransmit: 8,
			Retry: broker.Retry{MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}})
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i)
	}
	srv.Require(srv.Upload(tamtest.Envelope(t, signer, "app", 1, content)))
	d.sync()
	srv.Upload(tamtest.Envelope(t, signer, "app", 2, []byte("v2")))
	d.sync()
	d.sync() // nothing left to do
	if got := d.installed(); got[payload("app")] != 2 {
		t.Fatalf("installed: %v", got)
	}
	proxy.mu.Lock()
	st := proxy.stats
	proxy.mu.Unlock()
	block1 := testutil.ToFloat64(srv.blocks("udp", "block1"))
	block2 := testutil.ToFloat64(srv.blocks("udp", "block2"))
	t.Logf("proxy: %+v; TAM: %v Block1 blocks, %v Block2 continuations", st, block1, block2)
	if (f.drop > 0 && st.dropped == 0) || st.duplicated == 0 || st.reordered == 0 {
		t.Fatalf("the proxy did not exercise its faults: %+v", st)
	}
	if size > lossyBlockBytes && st.blockDrops[1] == 0 {
		t.Fatalf("no Block2 block was lost: %+v", st)
	}
	if n := tamCounter(t, srv.TAM, "teep_tam_updates_completed_total", `outcome="success"`); n != 2 {
		t.Fatalf("%v successful Updates, want 2 (each install once)", n)
	}
	if n := tamCounter(t, srv.TAM, "teep_tam_messages_rejected_total", ""); n != 0 {
		t.Fatalf("the TAM rejected %v messages (a token accepted twice would show here)", n)
	}
	if n := testutilValue(srv.registry, "teep_tam_coap_retransmissions_total"); n == 0 {
		t.Fatal("no retransmission reached the TAM: the response cache was not exercised")
	}
}

// TestCoAPLossyBlock1: a 256 KiB request body crosses the lossy proxy in
// Block1 blocks, some lost, duplicated or reordered. The TAM must
// reassemble it exactly once and answer it (4.00: it is not a signed TEEP
// message), and the Broker must get that answer.
func TestCoAPLossyBlock1(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			srv := startCoAPTAM(t, nil)
			proxy := startLossyProxy(t, srv.coap.Addr("udp"), seed, faults{drop: 0.10, dup: 0.05, reorder: 0.05})
			c := broker.NewCoAPClient(broker.CoAPOptions{AckTimeout: 40 * time.Millisecond, MaxRetransmit: 8})
			t.Cleanup(c.Close)
			body := make([]byte, 256<<10)
			for i := range body {
				body[i] = byte(i * 13)
			}
			_, err := c.Post(ctx, "coap://"+proxy.addr()+"/tam", body)
			var ce *broker.CoAPError
			if !errors.As(err, &ce) || ce.Code != codes.BadRequest {
				t.Fatalf("Post: %v, want the TAM's 4.00", err)
			}
			proxy.mu.Lock()
			st := proxy.stats
			proxy.mu.Unlock()
			t.Logf("proxy: %+v", st)
			if st.blockDrops[0] == 0 || st.duplicated == 0 || st.reordered == 0 {
				t.Fatalf("no Block1 block was lost, duplicated and reordered: %+v", st)
			}
			if n := testutilValue(srv.registry, "teep_tam_coap_block1_reassemblies_total"); n != 1 {
				t.Fatalf("%v reassemblies, want 1", n)
			}
			if n := testutil.ToFloat64(srv.blocks("udp", "block1")); n < float64(len(body)/1024) {
				t.Fatalf("%v Block1 blocks for %d bytes", n, len(body))
			}
		})
	}
}
