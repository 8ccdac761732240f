package teepcoap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/teep-go/teep/internal/coapbind"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/teep"
)

type fakeEngine struct {
	mu    sync.Mutex
	calls []tam.HandleOptions
	ins   [][]byte
	fn    func(ctx context.Context, in []byte) ([]byte, error)
}

func (f *fakeEngine) Handle(ctx context.Context, in []byte, o tam.HandleOptions) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, o)
	f.ins = append(f.ins, append([]byte(nil), in...))
	f.mu.Unlock()
	return f.fn(ctx, in)
}

func (f *fakeEngine) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func echo(_ context.Context, in []byte) ([]byte, error) {
	switch {
	case len(in) == 0:
		return []byte("query-request"), nil
	case string(in) == "done":
		return nil, nil
	case bytes.HasPrefix(in, []byte("big:")):
		return bytes.Repeat([]byte("B"), 5000), nil
	}
	return append([]byte("re:"), in...), nil
}

type testServer struct {
	fe       *fakeEngine
	srv      *Server
	registry *prometheus.Registry
}

func start(t *testing.T, fn func(context.Context, []byte) ([]byte, error), mod ...func(*Config, *ServerConfig)) *testServer {
	t.Helper()
	ts := &testServer{fe: &fakeEngine{fn: fn}, registry: prometheus.NewRegistry()}
	cfg := Config{Engine: ts.fe, LegacyPath: "/tam/legacy", Registerer: ts.registry, MaxBodyBytes: 64 << 10}
	sc := ServerConfig{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0"}
	for _, m := range mod {
		m(&cfg, &sc)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc.Handler = h
	if ts.srv, err = Listen(sc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// peer is a raw UDP socket speaking hand-built CoAP datagrams.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	mid  uint16
}

func dialPeer(t *testing.T, ts *testServer) *peer {
	t.Helper()
	c, err := net.DialUDP("udp", nil, ts.srv.Addr(TransportUDP).(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c, mid: uint16(rand.N(60000))}
}

type req struct {
	code    codes.Code
	path    string
	cf      int // -1: none
	accept  int // -1: none
	payload []byte
	opts    func(m *pool.Message)
	typ     message.Type
}

func (p *peer) encode(r req) ([]byte, uint16) {
	p.t.Helper()
	m := pool.NewMessage(context.Background())
	if r.code == 0 {
		r.code = codes.POST
	}
	m.SetCode(r.code)
	p.mid++
	m.SetMessageID(int32(p.mid))
	m.SetType(r.typ)
	m.SetToken([]byte{byte(p.mid), byte(p.mid >> 8), 0xAA})
	if r.path == "" {
		r.path = "/tam"
	}
	if err := m.SetPath(r.path); err != nil {
		p.t.Fatal(err)
	}
	if r.cf >= 0 {
		m.SetContentFormat(message.MediaType(r.cf))
	}
	if r.accept >= 0 {
		m.SetAccept(message.MediaType(r.accept))
	}
	if r.opts != nil {
		r.opts(m)
	}
	if len(r.payload) > 0 {
		m.SetBody(bytes.NewReader(r.payload))
	}
	b, err := m.MarshalWithEncoder(coder.DefaultCoder)
	if err != nil {
		p.t.Fatal(err)
	}
	return b, p.mid
}

func (p *peer) send(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// recv reads one datagram (nil after the timeout).
func (p *peer) recv(timeout time.Duration) []byte {
	p.t.Helper()
	buf := make([]byte, 70000)
	p.conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := p.conn.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func decode(t *testing.T, b []byte) *pool.Message {
	t.Helper()
	m := pool.NewMessage(context.Background())
	if _, err := m.UnmarshalWithDecoder(coder.DefaultCoder, b); err != nil {
		t.Fatalf("undecodable answer %x: %v", b, err)
	}
	return m
}

// exchange sends r and returns the answer to its message ID.
func (p *peer) exchange(r req) *pool.Message {
	p.t.Helper()
	b, mid := p.encode(r)
	p.send(b)
	for {
		a := p.recv(5 * time.Second)
		if a == nil {
			p.t.Fatalf("no answer to %+v", r)
		}
		m := decode(p.t, a)
		if uint16(m.MessageID()) == mid || m.Type() != message.Acknowledgement {
			return m
		}
	}
}

func body(t *testing.T, m *pool.Message) []byte {
	t.Helper()
	if m.Body() == nil {
		return nil
	}
	b, err := m.ReadBody()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func problem(t *testing.T, m *pool.Message) *coapbind.ProblemDetails {
	t.Helper()
	cf, err := m.ContentFormat()
	if err != nil || cf != coapbind.ProblemContentFormat {
		t.Fatalf("error answer %v without problem details (Content-Format %v, %v)", m.Code(), cf, err)
	}
	p, err := coapbind.ParseProblem(body(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if p.ResponseCode != m.Code() {
		t.Fatalf("problem response-code %v, answer %v", p.ResponseCode, m.Code())
	}
	return p
}

func TestBinding(t *testing.T) {
	ts := start(t, echo)
	p := dialPeer(t, ts)
	const cf = int(coapbind.ContentFormat)
	cases := []struct {
		name   string
		r      req
		code   codes.Code
		body   string
		detail string
	}{
		{"session start", req{cf: -1, accept: cf}, codes.Changed, "query-request", ""},
		{"session start with Content-Format", req{cf: cf, accept: -1}, codes.Changed, "query-request", ""},
		{"message", req{cf: cf, accept: -1, payload: []byte("msg")}, codes.Changed, "re:msg", ""},
		{"session over", req{cf: cf, accept: -1, payload: []byte("done")}, codes.Changed, "", ""},
		{"legacy path", req{path: "/tam/legacy", cf: cf, accept: -1, payload: []byte("msg")}, codes.Changed, "re:msg", ""},
		{"wrong Content-Format", req{cf: 60, accept: -1, payload: []byte("msg")}, codes.UnsupportedMediaType, "", "Content-Format must be 65000"},
		{"wrong Content-Format, empty", req{cf: 0, accept: -1}, codes.UnsupportedMediaType, "", "Content-Format"},
		{"no Content-Format on a payload", req{cf: -1, accept: -1, payload: []byte("msg")}, codes.UnsupportedMediaType, "", "Content-Format"},
		{"Accept excludes TEEP", req{cf: cf, accept: 50, payload: []byte("msg")}, codes.NotAcceptable, "", "65000"},
		{"GET", req{code: codes.GET, cf: -1, accept: -1}, codes.MethodNotAllowed, "", "only POST"},
		{"PUT", req{code: codes.PUT, cf: cf, accept: -1, payload: []byte("x")}, codes.MethodNotAllowed, "", "only POST"},
		{"unknown path", req{path: "/other", cf: cf, accept: -1}, codes.NotFound, "", "/other"},
		{"too large", req{cf: cf, accept: -1, payload: make([]byte, 1000), opts: func(m *pool.Message) {
			m.SetOptionUint32(message.Size1, 1<<30)
		}}, codes.RequestEntityTooLarge, "", "larger than 65536"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := p.exchange(c.r)
			if m.Code() != c.code {
				t.Fatalf("code %v, want %v", m.Code(), c.code)
			}
			if m.Type() != message.Acknowledgement {
				t.Fatalf("answer type %v, want a piggybacked ACK", m.Type())
			}
			if c.code == codes.Changed {
				if got := string(body(t, m)); got != c.body {
					t.Fatalf("payload %q, want %q", got, c.body)
				}
				if cf, err := m.ContentFormat(); c.body != "" && (err != nil || cf != coapbind.ContentFormat) {
					t.Fatalf("Content-Format %v %v", cf, err)
				}
				return
			}
			if pd := problem(t, m); !strings.Contains(pd.Detail, c.detail) {
				t.Fatalf("detail %q, want %q", pd.Detail, c.detail)
			}
			if c.code == codes.RequestEntityTooLarge {
				if s, err := m.GetOptionUint32(message.Size1); err != nil || s != 64<<10 {
					t.Fatalf("4.13 Size1 = %d, %v", s, err)
				}
			}
		})
	}
	if n := ts.fe.count(); n != 5 {
		t.Fatalf("engine called %d times, want 5 (refused requests must not reach it)", n)
	}
	if ts.fe.calls[4].Numbering != teep.Legacy || ts.fe.calls[0].Numbering != teep.Draft26 || !strings.HasPrefix(ts.fe.calls[0].Peer, "udp 127.0.0.1:") {
		t.Fatalf("engine calls %+v", ts.fe.calls)
	}
	if got := testutil.ToFloat64(ts.srv.h.metrics.requests.WithLabelValues("udp", "2.04")); got != 5 {
		t.Fatalf("2.04 count %v", got)
	}
}

func TestEngineErrors(t *testing.T) {
	cases := []struct {
		err    error
		code   codes.Code
		detail string
		maxAge uint32
	}{
		{&tam.Error{Kind: tam.KindBadMessage, Reason: "signature does not verify"}, codes.BadRequest, "signature does not verify", 0},
		{&tam.Error{Kind: tam.KindReplay, Reason: "token already used"}, codes.BadRequest, "token already used", 0},
		{&tam.Error{Kind: tam.KindUnauthorized, Reason: "unknown Agent key"}, codes.BadRequest, "unknown Agent key", 0},
		{&tam.Error{Kind: tam.KindUnavailable, Reason: "busy"}, codes.ServiceUnavailable, "busy", UnavailableMaxAge},
		{&tam.Error{Kind: tam.KindInternal, Reason: "internal error", Err: errors.New("disk /var/secret full")}, codes.InternalServerError, "internal error", 0},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), codes.ServiceUnavailable, "timed out", UnavailableMaxAge},
	}
	for _, c := range cases {
		ts := start(t, func(context.Context, []byte) ([]byte, error) { return nil, c.err })
		m := dialPeer(t, ts).exchange(req{cf: int(coapbind.ContentFormat), accept: -1, payload: []byte("x")})
		pd := problem(t, m)
		if m.Code() != c.code || !strings.Contains(pd.Detail, c.detail) || strings.Contains(pd.Detail, "secret") {
			t.Errorf("%v: %v %q", c.err, m.Code(), pd.Detail)
		}
		if ma, err := m.GetOptionUint32(message.MaxAge); c.maxAge != 0 && (err != nil || ma != c.maxAge) {
			t.Errorf("%v: Max-Age %d, %v", c.err, ma, err)
		}
	}
}

func TestPanicBecomes500(t *testing.T) {
	ts := start(t, func(context.Context, []byte) ([]byte, error) { panic("boom") })
	p := dialPeer(t, ts)
	m := p.exchange(req{cf: int(coapbind.ContentFormat), accept: -1, payload: []byte("x")})
	if pd := problem(t, m); m.Code() != codes.InternalServerError || strings.Contains(pd.Detail, "boom") {
		t.Fatalf("panic: %v %q", m.Code(), pd.Detail)
	}
}

func TestBusy(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ts := start(t, func(ctx context.Context, in []byte) ([]byte, error) {
		if string(in) == "slow" {
			entered <- struct{}{}
			<-release
		}
		return []byte("ok"), nil
	}, func(c *Config, _ *ServerConfig) { c.MaxInFlight = 1 })
	slow := dialPeer(t, ts)
	b, _ := slow.encode(req{cf: int(coapbind.ContentFormat), accept: -1, payload: []byte("slow")})
	slow.send(b)
	<-entered
	m := dialPeer(t, ts).exchange(req{cf: int(coapbind.ContentFormat), accept: -1, payload: []byte("fast")})
	if ma, err := m.GetOptionUint32(message.MaxAge); m.Code() != codes.ServiceUnavailable || err != nil || ma != BusyMaxAge {
		t.Fatalf("over the in-flight limit: %v, Max-Age %d %v", m.Code(), ma, err)
	}
	close(release)
}

// TestDuplicateConfirmable: a retransmitted CON (same message ID and token)
// gets the cached answer, byte for byte; the engine sees the message once.
func TestDuplicateConfirmable(t *testing.T) {
	var n int
	var mu sync.Mutex
	ts := start(t, func(_ context.Context, in []byte) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Appendf(nil, "answer %d", n), nil
	})
	p := dialPeer(t, ts)
	b, _ := p.encode(req{cf: int(coapbind.ContentFormat), accept: -1, payload: []byte("token-bearing message")})
	p.send(b)
	first := p.recv(5 * time.Second)
	// A copy arriving while the first is still in flight inside the stack
	// is dropped (its answer is on its way); a client retransmits after
	// ACK_TIMEOUT, as this loop does.
	var second []byte
	copies := 0
	for ; copies < 20 && second == nil; copies++ {
		p.send(b)
		second = p.recv(250 * time.Millisecond)
	}
	if first == nil || !bytes.Equal(first, second) {
		t.Fatalf("answers differ:\n%x\n%x", first, second)
	}
	if got := string(body(t, decode(t, first))); got != "answer 1" {
		t.Fatalf("answer %q", got)
	}
	if c := ts.fe.count(); c != 1 {
		t.Fatalf("engine saw the message %d times", c)
	}
	if got := testutil.ToFloat64(ts.srv.h.metrics.retransmissions.WithLabelValues("udp")); got != float64(copies) {
		t.Fatalf("retransmissions metric %v", got)
	}
}

// TestBadDatagrams: garbage, truncated options and bad block options never
// crash the server; CoAP-level faults get their codes; the server still
// answers afterwards.
func TestBadDatagrams(t *testing.T) {
	ts := start(t, echo)
	p := dialPeer(t, ts)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		g := make([]byte, rng.IntN(64))
		for j := range g {
			g[j] = byte(rng.Uint32())
		}
		p.send(g)
	}
	valid, _ := p.encode(req{cf: int(coapbind.ContentFormat), accept: -1, payload: []byte("msg")})
	for cut := 5; cut < len(valid); cut++ {
		// Truncated options: the header survives, the options do not.
		p.send(valid[:cut])
	}
	for p.recv(200*time.Millisecond) != nil {
		// Resets for malformed confirmable messages, if any.
	}
	const cf = int(coapbind.ContentFormat)
	block1 := func(num uint32, more bool, szx blockwise.SZX) func(*pool.Message) {
		return func(m *pool.Message) {
			v, err := blockwise.EncodeBlockOption(szx, int64(num), more)
			if err != nil {
				t.Fatal(err)
			}
			m.SetOptionUint32(message.Block1, v)
		}
	}
	for _, c := range []struct {
		name string
		r    req
		code codes.Code
	}{
		{"huge Block1 number", req{cf: cf, accept: -1, payload: make([]byte, 1024), opts: block1(100000, true, blockwise.SZX1024)}, codes.RequestEntityTooLarge},
		{"Block1 past the limit", req{cf: cf, accept: -1, payload: make([]byte, 1024), opts: block1(64, false, blockwise.SZX1024)}, codes.RequestEntityTooLarge},
		{"huge Size1 with Block1", req{cf: cf, accept: -1, payload: make([]byte, 1024), opts: func(m *pool.Message) {
			block1(0, true, blockwise.SZX1024)(m)
			m.SetOptionUint32(message.Size1, 1<<31)
		}}, codes.RequestEntityTooLarge},
		{"BERT over UDP", req{cf: cf, accept: -1, payload: make([]byte, 1024), opts: block1(0, true, blockwise.SZXBERT)}, codes.BadRequest},
		{"short non-final block", req{cf: cf, accept: -1, payload: make([]byte, 100), opts: block1(0, true, blockwise.SZX1024)}, codes.RequestEntityIncomplete},
		{"Block1 option too long", req{cf: cf, accept: -1, payload: []byte("x"), opts: func(m *pool.Message) {
			m.SetOptionBytes(message.Block1, []byte{1, 2, 3, 4})
		}}, codes.BadOption},
		{"block out of order", req{cf: cf, accept: -1, payload: make([]byte, 64), opts: block1(3, false, blockwise.SZX64)}, codes.RequestEntityIncomplete},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := p.exchange(c.r)
			if m.Code() != c.code {
				t.Fatalf("code %v, want %v", m.Code(), c.code)
			}
			if c.name != "block out of order" && c.name != "Block1 option too long" {
				// The stack answers these itself (its option parser,
				// its reassembly), with a text diagnostic.
				problem(t, m)
			}
			if c.code == codes.RequestEntityTooLarge {
				if s, err := m.GetOptionUint32(message.Size1); err != nil || s != 64<<10 {
					t.Fatalf("Size1 %d %v", s, err)
				}
			}
		})
	}
	// A Block1 transfer with a wrong Content-Format: the body is
	// reassembled, then refused like a whole one.
	wf := p.exchange(req{cf: 60, accept: -1, payload: make([]byte, 64), opts: func(m *pool.Message) {
		block1(0, true, blockwise.SZX64)(m)
		m.SetToken([]byte("wrongcf"))
	}})
	if wf.Code() != codes.Continue {
		t.Fatalf("first block with a wrong Content-Format: %v", wf.Code())
	}
	wf = p.exchange(req{cf: 60, accept: -1, payload: []byte("end"), opts: func(m *pool.Message) {
		block1(1, false, blockwise.SZX64)(m)
		m.SetToken([]byte("wrongcf"))
	}})
	if wf.Code() != codes.UnsupportedMediaType {
		t.Fatalf("last block with a wrong Content-Format: %v", wf.Code())
	}
	if m := p.exchange(req{cf: cf, accept: -1, payload: []byte("msg")}); m.Code() != codes.Changed || string(body(t, m)) != "re:msg" {
		t.Fatalf("after the bad input: %v %q", m.Code(), body(t, m))
	}
	if n := ts.fe.count(); n != 1 {
		t.Fatalf("bad input reached the engine: %d calls", n)
	}
}

// TestUnfinishedReassemblyReleased: Block1 transfers never finished hold
// the peer's reassembly slots (MaxBlockTransfersPerPeer) until the transfer
// timeout; the stack then releases them. Release is observed through the
// slots themselves: a new transfer, refused with 5.03 while they are full,
// is accepted again once they are freed, and a late block of a released
// transfer continues nothing (4.08).
func TestUnfinishedReassemblyReleased(t *testing.T) {
	const slots = 2
	ts := start(t, echo, func(_ *Config, sc *ServerConfig) {
		// Long enough that filling the slots takes far less; the test
		// waits for the release, it does not time it.
		sc.BlockTransferTimeout = 2 * time.Second
		sc.MaxBlockTransfersPerPeer = slots
	})
	p := dialPeer(t, ts)
	const cf = int(coapbind.ContentFormat)
	first := func(tok string, accept int) codes.Code {
		return p.exchange(req{cf: cf, accept: accept, payload: make([]byte, 64), opts: func(m *pool.Message) {
			v, _ := blockwise.EncodeBlockOption(blockwise.SZX64, 0, true)
			m.SetOptionUint32(message.Block1, v)
			m.SetToken([]byte(tok))
		}}).Code()
	}
	for i := range slots {
		if c := first("open"+strconv.Itoa(i), -1); c != codes.Continue {
			t.Fatalf("transfer %d: %v", i, c)
		}
	}
	if c := first("full", -1); c != codes.ServiceUnavailable {
		t.Fatalf("a transfer beyond the %d slots: %v, want 5.03", slots, c)
	}
	deadline := time.Now().Add(30 * time.Second)
	// The probes differ from the first transfers by Accept, so the late
	// block below cannot continue a probe as a matchable request (RFC 9175
	// §3.3).
	for i := 0; first("probe"+strconv.Itoa(i), cf) != codes.Continue; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the unfinished transfers were never released")
		}
		time.Sleep(50 * time.Millisecond)
	}
	late := p.exchange(req{cf: cf, accept: -1, payload: []byte("end"), opts: func(m *pool.Message) {
		v, _ := blockwise.EncodeBlockOption(blockwise.SZX64, 1, false)
		m.SetOptionUint32(message.Block1, v)
		m.SetToken([]byte("open0"))
	}})
	if late.Code() != codes.RequestEntityIncomplete {
		t.Fatalf("block after the reassembly timeout: %v", late.Code())
	}
	if n := ts.fe.count(); n != 0 {
		t.Fatalf("unfinished transfers reached the engine: %d calls", n)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{},
		{Engine: &fakeEngine{}, Path: "tam"},
		{Engine: &fakeEngine{}, Path: "/tam", LegacyPath: "/tam"},
	} {
		if _, err := NewHandler(c); err == nil {
			t.Errorf("NewHandler(%+v) accepted", c)
		}
	}
	h, err := NewHandler(Config{Engine: &fakeEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []ServerConfig{
		{},
		{Handler: h, DTLSAddr: "127.0.0.1:0"},
		{Handler: h, TLSAddr: "127.0.0.1:0"},
		{Handler: h, UDPAddr: "256.0.0.1:1"},
	} {
		if s, err := Listen(c); err == nil {
			s.Close()
			t.Errorf("Listen(%+v) accepted", c)
		}
	}
}

// TestPeersFull: a UDP peer beyond MaxPeers is answered 5.03 with
// PeersFullMaxAge and problem details, not left retransmitting into
// silence; the admitted peer keeps being served.
func TestPeersFull(t *testing.T) {
	ts := start(t, func(context.Context, []byte) ([]byte, error) { return []byte("ok"), nil },
		func(_ *Config, sc *ServerConfig) { sc.MaxPeers = 1 })
	first := dialPeer(t, ts)
	ok := req{cf: int(coapbind.ContentFormat), accept: -1, payload: []byte("hello"), typ: message.Confirmable}
	if m := first.exchange(ok); m.Code() != codes.Changed {
		t.Fatalf("first peer: %v", m.Code())
	}
	for i := range 2 { // and again: the refused peer holds no slot
		m := dialPeer(t, ts).exchange(ok)
		ma, err := m.GetOptionUint32(message.MaxAge)
		if m.Code() != codes.ServiceUnavailable || err != nil || ma != PeersFullMaxAge || m.Type() != message.Acknowledgement {
			t.Fatalf("peer %d over MaxPeers: %v %v, Max-Age %d %v", i+2, m.Type(), m.Code(), ma, err)
		}
		if p := problem(t, m); !strings.Contains(p.Detail, "too many peers") {
			t.Fatalf("problem detail %q", p.Detail)
		}
	}
	if m := first.exchange(ok); m.Code() != codes.Changed {
		t.Fatalf("first peer after the refusals: %v", m.Code())
	}
}
