package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	"github.com/plgd-dev/go-coap/v3/tcp"
	tcpClient "github.com/plgd-dev/go-coap/v3/tcp/client"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/teep-go/teep/internal/coapbind"
)

// CoAP URI schemes (RFC 7252 §6, RFC 8323 §8) the Broker accepts for TAMs.
const (
	SchemeCoAP     = "coap"
	SchemeCoAPS    = "coaps"
	SchemeCoAPTCP  = "coap+tcp"
	SchemeCoAPSTCP = "coaps+tcp"
)

// Defaults of the TEEP/CoAP client.
const (
	// DefaultCoAPExchangeTimeout bounds one exchange: the request, its
	// retransmissions and every block of the answer (an Update of MiBs
	// takes thousands of 1024-byte blocks over UDP).
	DefaultCoAPExchangeTimeout = 10 * time.Minute
	// DefaultCoAPDialTimeout bounds connecting (and the DTLS or TLS
	// handshake).
	DefaultCoAPDialTimeout = 30 * time.Second
	// CoAPMaxDatagramBytes bounds a received datagram.
	CoAPMaxDatagramBytes = 16 << 10
	// CoAPMaxTCPMessageBytes bounds one CoAP-over-TCP message.
	CoAPMaxTCPMessageBytes = 1 << 20
	// CoAPBlockTransferTimeout bounds a block-wise transfer inside the
	// stack.
	CoAPBlockTransferTimeout = 5 * time.Minute
	// CoAPBlockSZX is the block size the Broker sends and asks for over
	// UDP and DTLS (1024 bytes, docs/coap-binding.md §5).
	CoAPBlockSZX = blockwise.SZX1024
	// CoAPMaxStaleBlocks bounds the answers to a block request that do not
	// describe the block asked for before the exchange fails.
	CoAPMaxStaleBlocks = 8
	// CoAPMinTick and CoAPMaxTick bound the tick of retransmission checks
	// (a quarter of ACK_TIMEOUT).
	CoAPMinTick = 5 * time.Millisecond
	CoAPMaxTick = 500 * time.Millisecond
)

// IsCoAPScheme reports whether a TAM URI scheme is one of CoAP's.
func IsCoAPScheme(s string) bool {
	switch strings.ToLower(s) {
	case SchemeCoAP, SchemeCoAPS, SchemeCoAPTCP, SchemeCoAPSTCP:
		return true
	}
	return false
}

// CoAPError is a TAM answer with an error code (docs/coap-binding.md),
// with the detail of its concise problem details when it had one.
type CoAPError struct {
	Code   codes.Code
	Detail string
	MaxAge time.Duration // of a 5.03
}

func (e *CoAPError) Error() string {
	s := fmt.Sprintf("broker: TAM answered %s %s", coapbind.Label(e.Code), coapbind.Title(e.Code))
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// CoAPOptions configure NewCoAPClient.
type CoAPOptions struct {
	// RootCAs verify the TAM's certificate (coaps, coaps+tcp); nil uses
	// the system roots.
	RootCAs *x509.CertPool
	// Certificate, when set, is presented to TAMs that ask for one.
	Certificate *tls.Certificate
	// PSKIdentity and PSK select DTLS with a pre-shared key (RFC 7925
	// §4.2) for coaps:// instead of certificates.
	PSKIdentity string
	PSK         []byte
	// ExchangeTimeout bounds one exchange (0: DefaultCoAPExchangeTimeout).
	ExchangeTimeout time.Duration
	DialTimeout     time.Duration
	// MaxMessageSize bounds a TAM answer (0: DefaultMaxMessageSize).
	MaxMessageSize int64
	// Retry policy, the same as over HTTP (zero: the defaults).
	Retry Retry
	// AckTimeout is ACK_TIMEOUT (RFC 7252 §4.8; 0: the stack's 2 s), and
	// MaxRetransmit MAX_RETRANSMIT (0: 4).
	AckTimeout    time.Duration
	MaxRetransmit uint32
	Logger        *slog.Logger
}

// CoAPClient is the TEEP/CoAP client (docs/coap-binding.md): the device
// side of the binding. It keeps one connection per TAM endpoint and redials
// when one fails.
type CoAPClient struct {
	o     CoAPOptions
	retry Retry
	log   *slog.Logger
	sleep func(context.Context, time.Duration) error

	mu    sync.Mutex
	conns map[string]*coapConn
	// runner drives the stack's retransmissions and expiries for every
	// connection; stop ends it (Close).
	runner periodic.Func
	stop   chan struct{}
}

// NewCoAPClient returns a TEEP/CoAP client.
func NewCoAPClient(o CoAPOptions) *CoAPClient {
	o.ExchangeTimeout = orDuration(o.ExchangeTimeout, DefaultCoAPExchangeTimeout)
	o.DialTimeout = orDuration(o.DialTimeout, DefaultCoAPDialTimeout)
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxRetransmit == 0 {
		o.MaxRetransmit = 4
	}
	o.AckTimeout = orDuration(o.AckTimeout, 2*time.Second)
	r := o.Retry
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	r.BaseDelay = orDuration(r.BaseDelay, DefaultBaseDelay)
	r.MaxDelay = orDuration(r.MaxDelay, DefaultMaxDelay)
	c := &CoAPClient{o: o, retry: r, log: o.Logger, sleep: sleepCtx, conns: map[string]*coapConn{}, stop: make(chan struct{})}
	// The stack checks for due retransmissions on this tick (its default
	// is 4 s, far coarser than ACK_TIMEOUT).
	c.runner = periodic.New(c.stop, min(max(o.AckTimeout/4, CoAPMinTick), CoAPMaxTick))
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Close closes the client's connections; the client is not usable after.
func (c *CoAPClient) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	for k, cc := range c.conns {
		cc.close()
		delete(c.conns, k)
	}
}

// checkCoAPURI validates a coap(s)(+tcp) TAM URI.
func checkCoAPURI(uri string) (*url.URL, error) {
	u, err := CheckTAMURI(uri)
	if err != nil {
		return nil, err
	}
	if !IsCoAPScheme(u.Scheme) {
		return nil, fmt.Errorf("TAM URI %q: not a CoAP URI", uri)
	}
	if u.RawQuery != "" {
		return nil, fmt.Errorf("TAM URI %q: a query is not allowed", uri)
	}
	return u, nil
}

// Post sends one TEEP/CoAP request: an empty payload starts a session, a
// non-empty one carries a TEEP message. It returns the TAM's message, or
// nil when the TAM answered without payload (the session is over). It
// retries like the HTTP client: transport failures, 5.02, 5.03 (honouring
// Max-Age) and 5.04, with exponential backoff and jitter.
func (c *CoAPClient) Post(ctx context.Context, uri string, msg []byte) ([]byte, error) {
	u, err := checkCoAPURI(uri)
	if err != nil {
		return nil, err
	}
	var last error
	attempts := c.retry.MaxAttempts
	if len(msg) > 0 {
		// As over HTTP (see Retry): a TEEP message may have reached the
		// TAM under another message ID; the Broker restarts the session.
		attempts = 1
	}
	for attempt := 1; ; attempt++ {
		body, retryAfter, err := c.postOnce(ctx, u, msg)
		if err == nil {
			return body, nil
		}
		last = err
		if !retryable(err) || attempt >= attempts || ctx.Err() != nil {
			break
		}
		d := c.retry.delay(attempt, retryAfter)
		c.log.Warn("TAM request failed, retrying", "tam", uri, "attempt", attempt, "delay", d, "err", err)
		if err := c.sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("%w (gave up waiting to retry: %v)", last, err)
		}
	}
	return nil, last
}

func (c *CoAPClient) postOnce(ctx context.Context, u *url.URL, msg []byte) ([]byte, time.Duration, error) {
	cc, err := c.conn(u)
	if err != nil {
		err = fmt.Errorf("broker: connect to %s: %w", u.Redacted(), err)
		if transientCoAP(err) {
			return nil, 0, retryableError{err}
		}
		return nil, 0, err
	}
	ectx, cancel := context.WithTimeout(ctx, c.o.ExchangeTimeout)
	defer cancel()
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	resp, err := cc.post(ectx, path, msg, c.o.MaxMessageSize)
	if err != nil {
		c.drop(u, cc)
		if ctx.Err() != nil {
			return nil, 0, err
		}
		if rej := cc.rejected.Load(); rej != nil {
			return nil, 0, fmt.Errorf("%w: %s", ErrBadResponse, rej.Reason)
		}
		if errors.Is(err, ErrBadResponse) {
			return nil, 0, fmt.Errorf("broker: POST %s: %w", u.Redacted(), err)
		}
		return nil, 0, retryableError{fmt.Errorf("broker: POST %s: %w", u.Redacted(), err)}
	}
	defer cc.release(resp)
	var body []byte
	if resp.Body() != nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body(), c.o.MaxMessageSize+1))
		if err != nil {
			return nil, 0, retryableError{fmt.Errorf("broker: read answer from %s: %w", u.Redacted(), err)}
		}
		if int64(len(body)) > c.o.MaxMessageSize {
			return nil, 0, fmt.Errorf("%w: payload larger than %d bytes", ErrBadResponse, c.o.MaxMessageSize)
		}
	}
	code := resp.Code()
	switch {
	case code >= codes.BadRequest:
		ce := &CoAPError{Code: code}
		if cf, err := resp.ContentFormat(); err == nil && cf == coapbind.ProblemContentFormat {
			if p, err := coapbind.ParseProblem(body); err == nil {
				ce.Detail = coapbind.Clip(p.Detail)
			}
		}
		switch code {
		case codes.BadGateway, codes.ServiceUnavailable, codes.GatewayTimeout:
			if ma, err := resp.GetOptionUint32(message.MaxAge); err == nil {
				ce.MaxAge = time.Duration(ma) * time.Second
			} else if code == codes.ServiceUnavailable {
				// RFC 7252 §5.10.5: Max-Age defaults to 60 s.
				ce.MaxAge = 60 * time.Second
			}
			return nil, ce.MaxAge, retryableError{ce}
		}
		return nil, 0, ce
	case code < codes.Created || code > codes.Content:
		// 2.31 Continue and anything outside 2.01-2.05 is not an answer.
		return nil, 0, fmt.Errorf("%w: code %s", ErrBadResponse, coapbind.Label(code))
	}
	if len(body) == 0 {
		return nil, 0, nil // the session is over
	}
	if cf, err := resp.ContentFormat(); err != nil || cf != coapbind.ContentFormat {
		return nil, 0, fmt.Errorf("%w: Content-Format %v, want %d", ErrBadResponse, cfString(cf, err), coapbind.ContentFormat)
	}
	return body, 0, nil
}

func cfString(cf message.MediaType, err error) string {
	if err != nil {
		return "absent"
	}
	return fmt.Sprint(uint16(cf))
}

// transientCoAP tells connection failures worth retrying from ones that
// will not change (a certificate the client does not trust).
func transientCoAP(err error) bool {
	var (
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
	)
	if errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie) {
		return false
	}
	return true
}

func (c *CoAPClient) drop(u *url.URL, cc *coapConn) {
	key := strings.ToLower(u.Scheme) + "://" + u.Host
	c.mu.Lock()
	if c.conns[key] == cc {
		delete(c.conns, key)
	}
	c.mu.Unlock()
	cc.close()
}

// conn returns the connection to u's endpoint, dialling when there is none
// or the last one is closed.
func (c *CoAPClient) conn(u *url.URL) (*coapConn, error) {
	key := strings.ToLower(u.Scheme) + "://" + u.Host
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.conns[key]; cc != nil {
		select {
		case <-cc.done():
			delete(c.conns, key)
		default:
			return cc, nil
		}
	}
	cc, err := c.dial(u)
	if err != nil {
		return nil, err
	}
	c.conns[key] = cc
	return cc, nil
}

func (c *CoAPClient) dial(u *url.URL) (*coapConn, error) {
	scheme := strings.ToLower(u.Scheme)
	host := u.Host
	if u.Port() == "" {
		port := "5683"
		if scheme == SchemeCoAPS || scheme == SchemeCoAPSTCP {
			port = "5684"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	// The connection outlives ctx (it serves later exchanges), so only the
	// dialer is bounded, not the connection's context.
	dialer := &net.Dialer{Timeout: c.o.DialTimeout}
	cc := &coapConn{}
	// The stack gives up on a request whose retransmissions are exhausted
	// without telling the waiting caller; closing the connection then
	// ends the wait, and Post retries on a new one.
	onError := func(err error) {
		c.log.Debug("CoAP stack", "tam", host, "err", err)
		if errors.Is(err, context.DeadlineExceeded) {
			c.log.Debug("CoAP exchange expired; closing the connection", "tam", host, "err", err)
			go cc.close()
		}
	}
	maxBody := c.o.MaxMessageSize
	switch scheme {
	case SchemeCoAP, SchemeCoAPS:
		monitor := func(_ *udpClient.Conn, m *pool.Message) (bool, error) { return cc.inspect(m, maxBody, false) }
		opts := []udp.Option{
			options.WithDialer(dialer),
			// The Broker drives Block1 and Block2 itself (coapConn.postBlocks):
			// the stack's UDP block-wise client does not retransmit a lost
			// continuation, while each block sent as its own confirmable
			// request is retransmitted like any other.
			options.WithBlockwise(false, CoAPBlockSZX, CoAPBlockTransferTimeout),
			options.WithMaxMessageSize(CoAPMaxDatagramBytes),
			options.WithRequestMonitor(monitor),
			options.WithTransmission(1, c.o.AckTimeout, c.o.MaxRetransmit),
			options.WithPeriodicRunner(c.runner),
			options.WithErrors(onError),
		}
		var err error
		if scheme == SchemeCoAP {
			cc.udp, err = udp.Dial(host, opts...)
		} else {
			cc.udp, err = dtls.Dial(host, dtls.NewDTLSClientOptions(c.dtlsOptions(u.Hostname())...), opts...)
		}
		if err != nil {
			return nil, err
		}
	case SchemeCoAPTCP, SchemeCoAPSTCP:
		// The TCP client has no receive hook: a body there is bounded by
		// the block transfer timeout and MaxMessageSize after reassembly.
		opts := []tcp.Option{
			options.WithDialer(dialer),
			options.WithBlockwise(true, blockwise.SZXBERT, CoAPBlockTransferTimeout),
			options.WithMaxMessageSize(CoAPMaxTCPMessageBytes),
			options.WithPeriodicRunner(c.runner),
			options.WithErrors(onError),
		}
		if scheme == SchemeCoAPSTCP {
			tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.o.RootCAs, ServerName: u.Hostname()}
			if c.o.Certificate != nil {
				tc.Certificates = []tls.Certificate{*c.o.Certificate}
			}
			opts = append(opts, options.WithTLS(tc))
		}
		var err error
		if cc.tcp, err = tcp.Dial(host, opts...); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("scheme %q is not CoAP", u.Scheme)
	}
	return cc, nil
}

// dtlsOptions: PSK when configured, else the TAM's certificate checked
// against RootCAs (coapbind.DTLSClient, shared with the conformance kit).
func (c *CoAPClient) dtlsOptions(serverName string) []piondtls.ClientOption {
	return coapbind.DTLSClient{ServerName: serverName, RootCAs: c.o.RootCAs, Certificate: c.o.Certificate,
		PSK: c.o.PSK, PSKIdentity: c.o.PSKIdentity}.Options()
}

// coapConn is one connection to a TAM endpoint.
type coapConn struct {
	udp *udpClient.Conn
	tcp *tcpClient.Conn
	// rejected is the last answer the block guard refused (the stack's
	// request then fails with a closed connection).
	rejected atomic.Pointer[coapbind.Rejection]
}

// acceptOption asks for application/teep+cbor answers.
var acceptOption = func() message.Option {
	buf := make([]byte, 4)
	n, _ := message.EncodeUint32(buf, uint32(coapbind.ContentFormat))
	return message.Option{ID: message.Accept, Value: buf[:n]}
}()

func (cc *coapConn) post(ctx context.Context, path string, payload []byte, maxBody int64) (*pool.Message, error) {
	if cc.udp != nil {
		return cc.postBlocks(ctx, path, payload, maxBody)
	}
	var r io.ReadSeeker
	if len(payload) > 0 {
		r = bytes.NewReader(payload)
	}
	return cc.tcp.Post(ctx, path, coapbind.ContentFormat, r, acceptOption)
}

// postBlocks is one TEEP/CoAP exchange over UDP or DTLS with block-wise
// transfer (RFC 7959) driven here: each block is its own confirmable
// request, so the stack retransmits a lost block or a lost answer like any
// request, and the TAM's message-ID cache answers a retransmission without
// processing it twice. Every request has a fresh token, so a late or
// duplicated answer to an earlier block matches no request; the TAM ties
// the blocks together as matchable requests (RFC 9175 §3.3: same options
// but the block ones). The answer returned carries the whole body.
func (cc *coapConn) postBlocks(ctx context.Context, path string, payload []byte, maxBody int64) (*pool.Message, error) {
	size := int(CoAPBlockSZX.Size())
	szx := CoAPBlockSZX
	var resp *pool.Message
	// Block1: the request body, block by block (one request when it fits).
	for off, num := 0, int64(0); ; {
		end := len(payload)
		more := false
		if len(payload) > size {
			end = min(off+size, len(payload))
			more = end < len(payload)
		}
		var blockOpts []message.Option
		if len(payload) > size {
			blockOpts = append(blockOpts, blockOption(message.Block1, szx, num, more))
			if num == 0 {
				blockOpts = append(blockOpts, uintOption(message.Size1, uint32(len(payload))))
			}
		}
		r, err := cc.doBlock(ctx, path, len(payload) > 0, payload[off:end], blockOpts, func(r *pool.Message) bool {
			if !r.HasOption(message.Block1) {
				return true
			}
			v, err := r.GetOptionUint32(message.Block1)
			if err != nil {
				return false
			}
			_, n, _, err := blockwise.DecodeBlockOption(v)
			// A TAM asking for smaller blocks answers block 0 with a
			// smaller size (RFC 7959 §2.5); the numbers then differ.
			return err == nil && (n == num || num == 0)
		})
		if err != nil {
			return nil, err
		}
		if !more || r.Code() != codes.Continue {
			// The last block's answer is the TAM's; so is an error before it.
			resp = r
			break
		}
		if v, err := r.GetOptionUint32(message.Block1); err == nil {
			if s, _, _, err := blockwise.DecodeBlockOption(v); err == nil && s < szx {
				szx, size = s, int(s.Size())
			}
		}
		cc.udp.ReleaseMessage(r)
		off = end
		num = int64(off / size)
	}
	if !resp.HasOption(message.Block2) {
		return resp, nil
	}
	// Block2: the answer's body, block by block.
	var body []byte
	for {
		v, err := resp.GetOptionUint32(message.Block2)
		if err != nil {
			cc.udp.ReleaseMessage(resp)
			return nil, fmt.Errorf("%w: Block2 option: %v", ErrBadResponse, err)
		}
		chunk, err := readBody(resp, CoAPMaxDatagramBytes)
		if err != nil {
			cc.udp.ReleaseMessage(resp)
			return nil, err
		}
		bszx, more, err := acceptBlock2(v, int64(len(body)), chunk, maxBody)
		if err != nil {
			cc.udp.ReleaseMessage(resp)
			return nil, err
		}
		body = append(body, chunk...)
		if !more {
			resp.Remove(message.Block2)
			resp.SetBody(bytes.NewReader(body))
			return resp, nil
		}
		next := int64(len(body)) / bszx.Size()
		cc.udp.ReleaseMessage(resp)
		resp, err = cc.doBlock(ctx, path, len(payload) > 0, nil, []message.Option{blockOption(message.Block2, bszx, next, false)}, func(r *pool.Message) bool {
			v, err := r.GetOptionUint32(message.Block2)
			if err != nil {
				return r.Code() >= codes.BadRequest
			}
			s, n, _, err := blockwise.DecodeBlockOption(v)
			return err == nil && n*s.Size() == next*bszx.Size()
		})
		if err != nil {
			return nil, err
		}
		if resp.Code() >= codes.BadRequest {
			// The TAM forgot the body (its transfer timed out): its error
			// is the answer.
			return resp, nil
		}
	}
}

// doBlock sends one confirmable POST of an exchange, with a fresh token,
// and returns the first answer that ok accepts; others (answers that do not
// describe the block asked for) are dropped and the block asked for again,
// at most CoAPMaxStaleBlocks times.
func (cc *coapConn) doBlock(ctx context.Context, path string, withFormat bool, chunk []byte, blockOpts []message.Option, ok func(*pool.Message) bool) (*pool.Message, error) {
	for range CoAPMaxStaleBlocks {
		var r io.ReadSeeker
		if len(chunk) > 0 {
			r = bytes.NewReader(chunk)
		}
		req, err := cc.udp.NewPostRequest(ctx, path, coapbind.ContentFormat, r, append([]message.Option{acceptOption}, blockOpts...)...)
		if err != nil {
			return nil, err
		}
		if withFormat {
			// Every block request carries the options of the first, so the
			// TAM matches it to its transfer.
			req.SetContentFormat(coapbind.ContentFormat)
		}
		resp, err := cc.udp.Do(req)
		cc.udp.ReleaseMessage(req)
		if err != nil {
			return nil, err
		}
		if ok(resp) {
			return resp, nil
		}
		cc.udp.ReleaseMessage(resp)
	}
	return nil, fmt.Errorf("%w: %d answers not for the block asked for", ErrBadResponse, CoAPMaxStaleBlocks)
}

func blockOption(id message.OptionID, szx blockwise.SZX, num int64, more bool) message.Option {
	v, err := blockwise.EncodeBlockOption(szx, num, more)
	if err != nil {
		// num stays below 2^20: bodies are bounded far below 1 GiB.
		panic(err)
	}
	return uintOption(id, v)
}

func uintOption(id message.OptionID, v uint32) message.Option {
	buf := make([]byte, 4)
	n, _ := message.EncodeUint32(buf, v)
	return message.Option{ID: id, Value: buf[:n]}
}

// acceptBlock2 checks one Block2 block of an answer (its option value opt
// and payload chunk) against the have bytes received before it: the block
// must be the next one (RFC 7959 §2.4), not BERT (UDP), exactly its size
// unless it is the last (§2.2), and keep the body within maxBody. It
// returns the block's size exponent and whether more blocks follow.
func acceptBlock2(opt uint32, have int64, chunk []byte, maxBody int64) (blockwise.SZX, bool, error) {
	szx, num, more, err := blockwise.DecodeBlockOption(opt)
	if err != nil {
		return 0, false, fmt.Errorf("%w: Block2 option: %v", ErrBadResponse, err)
	}
	if szx == blockwise.SZXBERT {
		return 0, false, fmt.Errorf("%w: Block2 SZX 7 over UDP", ErrBadResponse)
	}
	size := szx.Size()
	if have < 0 || have%size != 0 || num != have/size {
		return 0, false, fmt.Errorf("%w: Block2 block %d of %d bytes at offset %d", ErrBadResponse, num, size, have)
	}
	n := int64(len(chunk))
	if n > size || (more && n != size) {
		return 0, false, fmt.Errorf("%w: Block2 block %d carries %d bytes, its size is %d", ErrBadResponse, num, n, size)
	}
	if have+n > maxBody {
		return 0, false, fmt.Errorf("%w: payload larger than %d bytes", ErrBadResponse, maxBody)
	}
	return szx, more, nil
}

// readBody reads one block's payload, at most limit bytes.
func readBody(m *pool.Message, limit int64) ([]byte, error) {
	if m.Body() == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(m.Body(), limit+1))
	if err != nil {
		return nil, fmt.Errorf("broker: read a block of the answer: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: a block of %d bytes, more than its size %d", ErrBadResponse, len(b), limit)
	}
	return b, nil
}

func (cc *coapConn) release(m *pool.Message) {
	if cc.udp != nil {
		cc.udp.ReleaseMessage(m)
	} else {
		cc.tcp.ReleaseMessage(m)
	}
}

func (cc *coapConn) done() <-chan struct{} {
	if cc.udp != nil {
		return cc.udp.Done()
	}
	return cc.tcp.Done()
}

func (cc *coapConn) close() {
	if cc.udp != nil {
		cc.udp.Close()
	} else {
		cc.tcp.Close()
	}
}

// inspect runs the block guard on an answer before the stack buffers it: a
// TAM announcing or sending more than maxBody closes the connection.
func (cc *coapConn) inspect(m *pool.Message, maxBody int64, reliable bool) (bool, error) {
	if m.Code() < codes.Created {
		return false, nil
	}
	if _, rej := coapbind.Inspect(m, maxBody, reliable); rej != nil {
		cc.rejected.Store(rej)
		return false, rej
	}
	return false, nil
}
