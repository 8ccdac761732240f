package teepcoap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	dtlsServer "github.com/plgd-dev/go-coap/v3/dtls/server"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	"github.com/plgd-dev/go-coap/v3/tcp"
	tcpClient "github.com/plgd-dev/go-coap/v3/tcp/client"
	tcpServer "github.com/plgd-dev/go-coap/v3/tcp/server"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpServer "github.com/plgd-dev/go-coap/v3/udp/server"
	"github.com/teep-go/teep/internal/coapbind"
)

// Transports, as named in metrics and logs.
const (
	TransportUDP  = "udp"
	TransportDTLS = "dtls"
	TransportTCP  = "tcp"
	TransportTLS  = "tls"
)

// Server defaults and limits.
const (
	// ExchangeLifetime is EXCHANGE_LIFETIME with the default transmission
	// parameters (RFC 7252 §4.8.2): how long the stack keeps a response to
	// answer a retransmitted confirmable request.
	ExchangeLifetime = udpClient.ExchangeLifetime
	// DefaultPeerIdleTimeout forgets a UDP/DTLS peer (and its response
	// cache) after this much silence. It equals EXCHANGE_LIFETIME, so a
	// retransmission always finds the cached response of its first copy.
	DefaultPeerIdleTimeout = ExchangeLifetime
	// DefaultMaxPeers bounds the peers (UDP/DTLS endpoints, TCP/TLS
	// connections) one listener tracks; more are refused.
	DefaultMaxPeers = 1024
	// DefaultBlockSZX is the block size the TAM sends (1024 bytes over
	// UDP and DTLS; BERT over TCP and TLS).
	DefaultBlockSZX = blockwise.SZX1024
	// DefaultBlockTransferTimeout bounds one block-wise transfer (Block1
	// reassembly, or a Block2 response kept for its continuations); an
	// unfinished one is dropped and its memory released after it.
	DefaultBlockTransferTimeout = 2 * time.Minute
	// DefaultMaxBlockTransfersPerPeer bounds the Block1 bodies a peer may
	// have in reassembly at once.
	DefaultMaxBlockTransfersPerPeer = 4
	// MaxDatagramBytes bounds a UDP datagram (one block and its options,
	// or a small message sent whole).
	MaxDatagramBytes = 16 << 10
	// MaxTCPMessageBytes bounds one CoAP-over-TCP message (RFC 8323 §5.3.1
	// Max-Message-Size announced in the CSM); bigger bodies go block-wise.
	MaxTCPMessageBytes = 1 << 20
	// DefaultHandshakeTimeout bounds a DTLS handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	// Tick is how often the stack checks for due retransmissions (of
	// separate responses), expired response-cache entries, block
	// transfers and idle peers; its own default (4 s) is far coarser than
	// ACK_TIMEOUT.
	Tick = 100 * time.Millisecond
	// MaxTrackedMIDs is how many recent message IDs per peer are remembered
	// to count retransmissions (the metric only; the stack deduplicates).
	MaxTrackedMIDs = 256
)

// ServerConfig configures the CoAP listeners of the TAM. An empty address
// leaves that listener off.
type ServerConfig struct {
	Handler                             *Handler
	UDPAddr, DTLSAddr, TCPAddr, TLSAddr string

	// Certificate serves DTLS (ECDSA, RFC 7925 §4.4.2) and TLS. DTLS may
	// also, or instead, accept PSKs.
	Certificate *tls.Certificate
	// PSK maps PSK identities to keys (RFC 7925 §4.2) for DTLS.
	PSK map[string][]byte
	// ClientCAs verify client certificates (DTLS and TLS);
	// RequireClientCert refuses clients without one (PSK clients excepted).
	ClientCAs         *x509.CertPool
	RequireClientCert bool

	PeerIdleTimeout          time.Duration
	MaxPeers                 int
	BlockTransferTimeout     time.Duration
	MaxBlockTransfersPerPeer int
	HandshakeTimeout         time.Duration
	Logger                   *slog.Logger
}

// Server is the set of CoAP listeners, bound but not yet serving.
type Server struct {
	cfg   ServerConfig
	h     *Handler
	log   *slog.Logger
	udp   *coapnet.UDPConn
	dtls  *coapnet.DTLSListener
	tcp   *coapnet.TCPListener
	tls   *coapnet.TLSListener
	addrs map[string]net.Addr

	runner periodic.Func

	mu    sync.Mutex
	mids  map[any]*midRing
	peers map[string]int // admitted peers per transport (MaxPeers)
}

// Listen checks cfg and binds the configured listeners now, so that
// mistakes (a busy port, a missing certificate) show before serving.
func Listen(cfg ServerConfig) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("teepcoap: ServerConfig.Handler is required")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.PeerIdleTimeout, DefaultPeerIdleTimeout)
	def(&cfg.BlockTransferTimeout, DefaultBlockTransferTimeout)
	def(&cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.MaxBlockTransfersPerPeer <= 0 {
		cfg.MaxBlockTransfersPerPeer = DefaultMaxBlockTransfersPerPeer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, h: cfg.Handler, log: cfg.Logger, addrs: map[string]net.Addr{}, mids: map[any]*midRing{}, peers: map[string]int{}}
	if cfg.DTLSAddr != "" && cfg.Certificate == nil && len(cfg.PSK) == 0 {
		return nil, errors.New("teepcoap: DTLS needs a certificate or PSKs")
	}
	if cfg.TLSAddr != "" && cfg.Certificate == nil {
		return nil, errors.New("teepcoap: TLS needs a certificate")
	}
	var err error
	fail := func(what string, e error) (*Server, error) {
		s.Close()
		return nil, fmt.Errorf("teepcoap: %s listener: %w", what, e)
	}
	if cfg.UDPAddr != "" {
		if s.udp, err = coapnet.NewListenUDP("udp", cfg.UDPAddr); err != nil {
			return fail(TransportUDP, err)
		}
		s.addrs[TransportUDP] = s.udp.LocalAddr()
	}
	if cfg.DTLSAddr != "" {
		if s.dtls, err = coapnet.NewDTLSListener("udp", cfg.DTLSAddr, coapnet.NewDTLSServerOptions(s.dtlsOptions()...)); err != nil {
			return fail(TransportDTLS, err)
		}
		s.addrs[TransportDTLS] = s.dtls.Addr()
	}
	if cfg.TCPAddr != "" {
		if s.tcp, err = coapnet.NewTCPListener("tcp", cfg.TCPAddr); err != nil {
			return fail(TransportTCP, err)
		}
		s.addrs[TransportTCP] = s.tcp.Addr()
	}
	if cfg.TLSAddr != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cfg.Certificate}}
		if cfg.ClientCAs != nil {
			tc.ClientCAs = cfg.ClientCAs
			tc.ClientAuth = tls.VerifyClientCertIfGiven
			if cfg.RequireClientCert {
				tc.ClientAuth = tls.RequireAndVerifyClientCert
			}
		}
		if s.tls, err = coapnet.NewTLSListener("tcp", cfg.TLSAddr, tc); err != nil {
			return fail(TransportTLS, err)
		}
		s.addrs[TransportTLS] = s.tls.Addr()
	}
	return s, nil
}

// RFC 7925 §4.2 and §4.4.1: AES-128-CCM-8 is mandatory; GCM is accepted
// for peers (such as general-purpose TLS stacks) that lack it.
var (
	certSuites = []piondtls.CipherSuiteID{piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	pskSuites  = []piondtls.CipherSuiteID{piondtls.TLS_PSK_WITH_AES_128_CCM_8, piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256}
)

func (s *Server) dtlsOptions() []piondtls.ServerOption {
	var suites []piondtls.CipherSuiteID
	var opts []piondtls.ServerOption
	if s.cfg.Certificate != nil {
		suites = append(suites, certSuites...)
		opts = append(opts, piondtls.WithCertificates(*s.cfg.Certificate))
		if s.cfg.ClientCAs != nil {
			opts = append(opts, piondtls.WithClientCAs(s.cfg.ClientCAs), piondtls.WithClientAuth(piondtls.VerifyClientCertIfGiven))
			if s.cfg.RequireClientCert && len(s.cfg.PSK) == 0 {
				opts = append(opts, piondtls.WithClientAuth(piondtls.RequireAndVerifyClientCert))
			}
		}
	}
	if len(s.cfg.PSK) > 0 {
		suites = append(suites, pskSuites...)
		psk := s.cfg.PSK
		opts = append(opts, piondtls.WithPSK(func(identity []byte) ([]byte, error) {
			k, ok := psk[string(identity)]
			if !ok {
				return nil, errors.New("unknown PSK identity")
			}
			return k, nil
		}))
	}
	opts = append(opts, piondtls.WithCipherSuites(suites...), piondtls.WithExtendedMasterSecret(piondtls.RequireExtendedMasterSecret))
	return opts
}

// Addr is the bound address of a transport's listener, nil when off.
func (s *Server) Addr(transport string) net.Addr { return s.addrs[transport] }

// Close releases listeners that are not serving.
func (s *Server) Close() {
	for _, c := range []interface{ Close() error }{s.udpCloser(), s.dtlsCloser(), s.tcpCloser(), s.tlsCloser()} {
		if c != nil {
			c.Close()
		}
	}
}

func (s *Server) udpCloser() interface{ Close() error } {
	if s.udp == nil {
		return nil
	}
	return s.udp
}

func (s *Server) dtlsCloser() interface{ Close() error } {
	if s.dtls == nil {
		return nil
	}
	return s.dtls
}

func (s *Server) tcpCloser() interface{ Close() error } {
	if s.tcp == nil {
		return nil
	}
	return s.tcp
}

func (s *Server) tlsCloser() interface{ Close() error } {
	if s.tls == nil {
		return nil
	}
	return s.tls
}

// Serve serves every bound listener until ctx is done, then stops them
// (requests in progress are dropped; the peers retransmit) and returns nil,
// or the first listener's error.
func (s *Server) Serve(ctx context.Context) error {
	runner := periodic.New(ctx.Done(), Tick)
	s.runner = runner
	type stopper interface{ Stop() }
	var stops []stopper
	errc := make(chan error, 4)
	n := 0
	run := func(stop stopper, serve func() error) {
		stops = append(stops, stop)
		n++
		go func() { errc <- serve() }()
	}
	if s.udp != nil {
		srv := udp.NewServer(convert[udpServer.Option](s.udpOptions(TransportUDP))...)
		run(srv, func() error { return srv.Serve(s.udp) })
	}
	if s.dtls != nil {
		srv := dtls.NewServer(convert[dtlsServer.Option](append(s.udpOptions(TransportDTLS), options.WithDTLSHandshakeTimeout(s.cfg.HandshakeTimeout)))...)
		run(srv, func() error { return srv.Serve(s.dtls) })
	}
	if s.tcp != nil {
		srv := tcp.NewServer(s.tcpOptions(TransportTCP)...)
		run(srv, func() error { return srv.Serve(s.tcp) })
	}
	if s.tls != nil {
		srv := tcp.NewServer(s.tcpOptions(TransportTLS)...)
		run(srv, func() error { return srv.Serve(s.tls) })
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		n--
	}
	for _, st := range stops {
		st.Stop()
	}
	for ; n > 0; n-- {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) errors(transport string) func(error) {
	return func(err error) { s.log.Debug("CoAP", "transport", transport, "err", err) }
}

// udpOptions are the options of the UDP and DTLS servers; each value
// implements both udpServer.Option and dtlsServer.Option.
func (s *Server) udpOptions(transport string) []any {
	return []any{
		options.WithMux(s.h.Handler(transport)),
		options.WithBlockwise(true, DefaultBlockSZX, s.cfg.BlockTransferTimeout),
		options.WithBlockwiseReceivingMessagesCacheMaxEntries(s.cfg.MaxBlockTransfersPerPeer),
		options.WithMaxMessageSize(MaxDatagramBytes),
		options.WithInactivityMonitor(s.cfg.PeerIdleTimeout, func(cc *udpClient.Conn) { cc.Close() }),
		options.WithRequestMonitor(s.udpMonitor(transport)),
		options.WithOnNewConn(s.udpOnNewConn(transport)),
		options.WithErrors(s.errors(transport)),
		options.WithPeriodicRunner(s.runner),
	}
}

func convert[T any](in []any) []T {
	out := make([]T, 0, len(in))
	for _, o := range in {
		out = append(out, o.(T))
	}
	return out
}

func (s *Server) tcpOptions(transport string) []tcpServer.Option {
	return []tcpServer.Option{
		options.WithMux(s.h.Handler(transport)),
		options.WithBlockwise(true, blockwise.SZXBERT, s.cfg.BlockTransferTimeout),
		options.WithBlockwiseReceivingMessagesCacheMaxEntries(s.cfg.MaxBlockTransfersPerPeer),
		options.WithMaxMessageSize(MaxTCPMessageBytes),
		options.WithInactivityMonitor(s.cfg.PeerIdleTimeout, func(cc *tcpClient.Conn) { cc.Close() }),
		options.WithRequestMonitor(s.tcpMonitor(transport)),
		options.WithOnNewConn(s.tcpOnNewConn(transport)),
		options.WithErrors(s.errors(transport)),
		options.WithPeriodicRunner(s.runner),
	}
}

// admit counts a new peer against MaxPeers. Over the limit, a TCP or TLS
// connection is closed at once; a UDP or DTLS peer stays unadmitted, and
// udpMonitor answers its request 5.03 with Max-Age and then forgets it, so
// a device learns to come back instead of retransmitting into silence.
func (s *Server) admit(transport string, key any, closeFn func() error, onClose func(func()), datagrams bool) {
	s.mu.Lock()
	if s.peers[transport] >= s.cfg.MaxPeers {
		s.mu.Unlock()
		s.h.metrics.rejected.WithLabelValues(transport, "max_peers").Inc()
		if !datagrams {
			closeFn()
		}
		return
	}
	s.peers[transport]++
	pk := peerKey{transport: transport, conn: key}
	s.mids[pk] = &midRing{seen: map[int32]struct{}{}}
	s.mu.Unlock()
	onClose(func() {
		s.mu.Lock()
		delete(s.mids, pk)
		s.peers[transport]--
		s.mu.Unlock()
	})
}

type peerKey struct {
	transport string
	conn      any
}

func (s *Server) udpOnNewConn(transport string) func(*udpClient.Conn) {
	return func(cc *udpClient.Conn) { s.admit(transport, cc, cc.Close, cc.AddOnClose, true) }
}

func (s *Server) tcpOnNewConn(transport string) func(*tcpClient.Conn) {
	return func(cc *tcpClient.Conn) { s.admit(transport, cc, cc.Close, cc.AddOnClose, false) }
}

func (s *Server) admitted(transport string, conn any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.mids[peerKey{transport: transport, conn: conn}]
	return ok
}

// refuseFull answers a request of a peer over MaxPeers with 5.03 and
// PeersFullMaxAge (a request that is not itself an answer; an ACK or RST
// is dropped) and closes the peer, so it holds no state here.
func (s *Server) refuseFull(transport string, cc *udpClient.Conn, req *pool.Message) {
	defer cc.Close()
	if req.Code() == codes.Empty || req.Type() == message.Acknowledgement || req.Type() == message.Reset {
		return
	}
	s.refuseUDP(transport, cc, req, &coapbind.Rejection{Code: codes.ServiceUnavailable, Reason: "too many peers; retry later"}, PeersFullMaxAge)
}

// refuseUDP answers req with rej (and Max-Age when maxAge > 0) before the
// stack sees it: piggybacked on the ACK of a confirmable request, else as
// a non-confirmable message.
func (s *Server) refuseUDP(transport string, cc *udpClient.Conn, req *pool.Message, rej *coapbind.Rejection, maxAge uint32) {
	resp := cc.AcquireMessage(cc.Context())
	defer cc.ReleaseMessage(resp)
	rejectionMessage(resp, req, rej)
	if maxAge > 0 {
		resp.SetOptionUint32(message.MaxAge, maxAge)
	}
	if req.Type() == message.Confirmable {
		resp.SetType(message.Acknowledgement)
		resp.SetMessageID(req.MessageID())
	} else {
		resp.SetType(message.NonConfirmable)
		resp.SetMessageID(cc.GetMessageID())
	}
	if err := cc.Session().WriteMessage(resp); err != nil {
		s.log.Debug("CoAP refusal not sent", "transport", transport, "err", err)
	}
}

// midRing remembers the last MaxTrackedMIDs message IDs of a peer.
type midRing struct {
	ring []int32
	seen map[int32]struct{}
}

// retransmitted records mid and reports whether it was seen recently.
func (s *Server) retransmitted(transport string, conn any, mid int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mids[peerKey{transport: transport, conn: conn}]
	if r == nil {
		return false
	}
	if _, ok := r.seen[mid]; ok {
		return true
	}
	if len(r.ring) >= MaxTrackedMIDs {
		delete(r.seen, r.ring[0])
		r.ring = r.ring[1:]
	}
	r.ring = append(r.ring, mid)
	r.seen[mid] = struct{}{}
	return false
}

// observe applies coapbind.Inspect to a received message and counts it. A
// rejected message is answered here and dropped before the stack buffers it.
func (s *Server) observe(transport string, req *pool.Message, reliable bool) *coapbind.Rejection {
	if req.Code() == codes.Empty || req.Code() >= codes.Created {
		return nil
	}
	blk, rej := coapbind.Inspect(req, s.h.cfg.MaxBodyBytes, reliable)
	if rej != nil {
		s.h.metrics.rejected.WithLabelValues(transport, coapbind.Label(rej.Code)).Inc()
		s.log.Info("TEEP CoAP message refused", "transport", transport, "code", coapbind.Label(rej.Code), "reason", rej.Reason)
		return rej
	}
	if blk.Option == message.Block1 {
		s.h.metrics.blocks.WithLabelValues(transport, "block1").Inc()
		if !blk.More && blk.Num > 0 {
			s.h.metrics.reassemblies.WithLabelValues(transport).Inc()
		}
	}
	if req.HasOption(message.Block2) {
		s.h.metrics.blocks.WithLabelValues(transport, "block2").Inc()
	}
	return nil
}

func rejectionMessage(resp *pool.Message, req *pool.Message, rej *coapbind.Rejection) {
	resp.SetCode(rej.Code)
	resp.SetToken(req.Token())
	resp.SetContentFormat(coapbind.ProblemContentFormat)
	resp.SetBody(bytes.NewReader(coapbind.Problem(rej.Code, rej.Reason)))
	if rej.Size1 > 0 {
		resp.SetOptionUint32(message.Size1, rej.Size1)
	}
}

func (s *Server) udpMonitor(transport string) func(*udpClient.Conn, *pool.Message) (bool, error) {
	return func(cc *udpClient.Conn, req *pool.Message) (bool, error) {
		if !s.admitted(transport, cc) {
			s.refuseFull(transport, cc, req)
			return true, nil
		}
		if req.Type() == message.Confirmable && req.Code() != codes.Empty && s.retransmitted(transport, cc, req.MessageID()) {
			s.h.metrics.retransmissions.WithLabelValues(transport).Inc()
			return false, nil // the stack answers from its response cache
		}
		rej := s.observe(transport, req, false)
		if rej == nil {
			return false, nil
		}
		s.refuseUDP(transport, cc, req, rej, 0)
		return true, nil
	}
}

func (s *Server) tcpMonitor(transport string) func(*tcpClient.Conn, *pool.Message) (bool, error) {
	return func(cc *tcpClient.Conn, req *pool.Message) (bool, error) {
		rej := s.observe(transport, req, true)
		if rej == nil {
			return false, nil
		}
		resp := cc.AcquireMessage(cc.Context())
		defer cc.ReleaseMessage(resp)
		rejectionMessage(resp, req, rej)
		if err := cc.Session().WriteMessage(resp); err != nil {
			s.log.Debug("CoAP refusal not sent", "transport", transport, "err", err)
		}
		return true, nil
	}
}
