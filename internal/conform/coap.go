package conform

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/tcp"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/teep-go/teep/internal/coapbind"
)

// Transports a check applies to.
const (
	overHTTP = "http"
	overCoAP = "coap"
)

// CoAP URI schemes the kit speaks (docs/coap-binding.md): CoAP over UDP,
// over DTLS (a certificate or a PSK), over TCP and over TLS.
const (
	schemeCoAP     = "coap"
	schemeCoAPS    = "coaps"
	schemeCoAPTCP  = "coap+tcp"
	schemeCoAPSTCP = "coaps+tcp"
)

// Limits of the kit's CoAP client.
const (
	coapMaxMessageBytes = 1 << 20 // one datagram or TCP message
	// coapHandshakeTimeout bounds the DTLS handshake: a peer refusing the
	// PSK may just stop answering.
	coapHandshakeTimeout = 10 * time.Second
	// coapOtherFormat is a Content-Format that is not TEEP's (0,
	// text/plain; charset=utf-8, RFC 7252 §12.3).
	coapOtherFormat message.MediaType = 0
)

// coapTransport carries the kit's requests over CoAP: stack is the stack
// with block-wise transfer, for TEEP messages of any size; raw sends a
// single message as given, for the checks of block options.
type coapTransport struct {
	path       string
	reliable   bool // TCP or TLS: blocks are BERT (RFC 8323 §6)
	stack, raw mux.Conn
}

func isCoAPScheme(s string) bool {
	return s == schemeCoAP || s == schemeCoAPS || s == schemeCoAPTCP || s == schemeCoAPSTCP
}

// dialCoAP connects to the TAM at u. tc verifies a coaps+tcp TAM; dc
// carries the credentials for a coaps (DTLS) TAM.
func dialCoAP(ctx context.Context, u *url.URL, tc *tls.Config, dc coapbind.DTLSClient) (*coapTransport, error) {
	host := u.Host
	if u.Port() == "" {
		port := "5683"
		if u.Scheme == schemeCoAPS || u.Scheme == schemeCoAPSTCP {
			port = "5684"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	datagrams := u.Scheme == schemeCoAP || u.Scheme == schemeCoAPS
	t := &coapTransport{path: u.EscapedPath(), reliable: !datagrams}
	if t.path == "" {
		t.path = "/"
	}
	dialer := &net.Dialer{Timeout: DefaultRequestTimeout}
	dial := func(bw bool) (mux.Conn, error) {
		switch u.Scheme {
		case schemeCoAP:
			return udp.Dial(host, options.WithContext(ctx), options.WithDialer(dialer),
				options.WithBlockwise(bw, blockwise.SZX1024, DefaultRequestTimeout), options.WithMaxMessageSize(coapMaxMessageBytes))
		case schemeCoAPS:
			if dc.ServerName == "" {
				dc.ServerName = u.Hostname()
			}
			if dc.RootCAs == nil && tc != nil {
				dc.RootCAs = tc.RootCAs
			}
			c, err := dtls.Dial(host, dtls.NewDTLSClientOptions(dc.Options()...), options.WithContext(ctx), options.WithDialer(dialer),
				options.WithBlockwise(bw, blockwise.SZX1024, DefaultRequestTimeout), options.WithMaxMessageSize(coapMaxMessageBytes))
			if err != nil {
				return nil, err
			}
			// The handshake runs with the first message: a CoAP ping, bounded,
			// so a refused key or certificate fails here and says so, not as
			// every check timing out.
			pctx, cancel := context.WithTimeout(ctx, coapHandshakeTimeout)
			defer cancel()
			if err := c.Ping(pctx); err != nil {
				c.Close()
				return nil, fmt.Errorf("DTLS handshake or ping: %w", err)
			}
			return c, nil
		default:
			opts := []tcp.Option{options.WithContext(ctx), options.WithDialer(dialer),
				options.WithBlockwise(bw, blockwise.SZXBERT, DefaultRequestTimeout), options.WithMaxMessageSize(coapMaxMessageBytes)}
			if u.Scheme == schemeCoAPSTCP {
				c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
				if tc != nil {
					c = tc.Clone()
					c.ServerName = u.Hostname()
				}
				opts = append(opts, options.WithTLS(c))
			}
			return tcp.Dial(host, opts...)
		}
	}
	var err error
	if t.stack, err = dial(true); err != nil {
		return nil, fmt.Errorf("conform: connect to %s: %w", u.Redacted(), err)
	}
	if t.raw, err = dial(false); err != nil {
		t.stack.Close()
		return nil, fmt.Errorf("conform: connect to %s: %w", u.Redacted(), err)
	}
	return t, nil
}

func (t *coapTransport) close() {
	t.stack.Close()
	t.raw.Close()
}

// coapFormat maps the media types the checks use to Content-Formats.
func coapFormat(mediaType string) message.MediaType {
	if strings.EqualFold(mediaType, MediaType) {
		return coapbind.ContentFormat
	}
	return coapOtherFormat
}

var coapMethods = map[string]codes.Code{
	http.MethodGet: codes.GET, http.MethodPost: codes.POST, http.MethodPut: codes.PUT, http.MethodDelete: codes.DELETE,
}

// do sends one request the way the HTTP checks describe it: Accept and
// Content-Type become the CoAP options, extra are added as they are. The
// answer's code becomes a status as the binding mirrors HTTP
// (docs/coap-binding.md §3): 2.04 with a payload is 200, other codes c.dd
// are c×100+dd (2.04 without payload 204, 4.15 415, 5.03 503).
func (t *coapTransport) do(ctx context.Context, method string, body []byte, header map[string]string, extra ...message.Option) (*exchange, error) {
	code, ok := coapMethods[method]
	if !ok {
		return nil, fmt.Errorf("conform: no CoAP method for %s", method)
	}
	conn := t.stack
	if len(extra) > 0 {
		conn = t.raw
	}
	req := conn.AcquireMessage(ctx)
	defer conn.ReleaseMessage(req)
	req.SetCode(code)
	tok, err := message.GetToken()
	if err != nil {
		return nil, err
	}
	req.SetToken(tok)
	if err := req.SetPath(t.path); err != nil {
		return nil, err
	}
	if a := header["Accept"]; a != "" {
		req.SetAccept(coapFormat(a))
	}
	if ct := header["Content-Type"]; ct != "" {
		req.SetContentFormat(coapFormat(ct))
	}
	for _, o := range extra {
		req.AddOptionBytes(o.ID, o.Value)
	}
	if len(body) > 0 {
		req.SetBody(bytes.NewReader(body))
	}
	resp, err := conn.Do(req)
	if err != nil {
		return nil, err
	}
	defer conn.ReleaseMessage(resp)
	ex := &exchange{header: http.Header{}, coap: resp.Code()}
	if resp.Body() != nil {
		if ex.body, err = io.ReadAll(io.LimitReader(resp.Body(), MaxResponseSize+1)); err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if len(ex.body) > MaxResponseSize {
			return nil, fmt.Errorf("response larger than %d bytes", MaxResponseSize)
		}
	}
	if cf, err := resp.ContentFormat(); err == nil {
		ex.format, ex.hasFormat = cf, true
		switch cf {
		case coapbind.ContentFormat:
			ex.header.Set("Content-Type", MediaType)
		case coapbind.ProblemContentFormat:
			ex.header.Set("Content-Type", "application/concise-problem-details+cbor")
		}
	}
	if s, err := resp.GetOptionUint32(message.Size1); err == nil {
		ex.size1, ex.hasSize1 = s, true
	}
	ex.status = int(resp.Code()>>5)*100 + int(resp.Code()&0x1f)
	if resp.Code() == codes.Changed && len(ex.body) > 0 {
		ex.status = http.StatusOK
	}
	return ex, nil
}

// ---- CoAP transport checks ----

func coapLabel(ex *exchange) string { return coapbind.Label(ex.coap) }

func checkCoAPEmptyPOST(r *tamRun) (Status, string) {
	ex, err := r.do(http.MethodPost, nil, map[string]string{"Accept": MediaType})
	if err != nil {
		return failf("%v", err)
	}
	if ex.coap != codes.Changed || len(ex.body) == 0 {
		return failf("answered %s with %d bytes; want 2.04 with a TEEP message", coapLabel(ex), len(ex.body))
	}
	if !ex.hasFormat || ex.format != coapbind.ContentFormat {
		return failf("2.04 without Content-Format %d", coapbind.ContentFormat)
	}
	return passf("2.04, Content-Format %d, %d bytes", coapbind.ContentFormat, len(ex.body))
}

func wantCoAP(ex *exchange, err error, want codes.Code) (Status, string) {
	if err != nil {
		return failf("%v", err)
	}
	if ex.coap != want {
		return failf("answered %s, want %s", coapLabel(ex), coapbind.Label(want))
	}
	return passf("%s", coapLabel(ex))
}

func checkCoAPWrongFormat(r *tamRun) (Status, string) {
	ex, err := r.do(http.MethodPost, []byte{0xa0}, map[string]string{"Accept": MediaType, "Content-Type": "text/plain"})
	return wantCoAP(ex, err, codes.UnsupportedMediaType)
}

func checkCoAPMissingFormat(r *tamRun) (Status, string) {
	ex, err := r.do(http.MethodPost, []byte{0xa0}, map[string]string{"Accept": MediaType})
	return wantCoAP(ex, err, codes.UnsupportedMediaType)
}

func checkCoAPWrongAccept(r *tamRun) (Status, string) {
	ex, err := r.do(http.MethodPost, nil, map[string]string{"Accept": "text/plain"})
	return wantCoAP(ex, err, codes.NotAcceptable)
}

func checkCoAPOnlyPOST(r *tamRun) (Status, string) {
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		ex, err := r.do(m, nil, map[string]string{"Accept": MediaType})
		if err != nil {
			return failf("%s: %v", m, err)
		}
		if ex.coap != codes.MethodNotAllowed {
			return failf("%s answered %s, want 4.05", m, coapLabel(ex))
		}
	}
	return passf("4.05")
}

// checkCoAPOversized announces an OversizedBody body with Size1 on its
// first Block1 block (RFC 7959 §4): the TAM must refuse it with 4.13 and
// say its limit in Size1 rather than collect the blocks.
func checkCoAPOversized(r *tamRun) (Status, string) {
	szx := blockwise.SZX1024
	if r.coap.reliable {
		szx = blockwise.SZXBERT
	}
	v, err := blockwise.EncodeBlockOption(szx, 0, true)
	if err != nil {
		return failf("%v", err)
	}
	block := make([]byte, 1024)
	block[0] = 0xd2 // a COSE_Sign1 tag, then zeros
	ex, err := r.coap.do(r.ctx, http.MethodPost, block, map[string]string{"Accept": MediaType, "Content-Type": MediaType},
		uintOption(message.Block1, v), uintOption(message.Size1, OversizedBody))
	if st, detail := wantCoAP(ex, err, codes.RequestEntityTooLarge); st != Pass {
		return st, detail
	}
	if !ex.hasSize1 || ex.size1 >= OversizedBody {
		return failf("4.13 without a Size1 below the %d bytes announced", OversizedBody)
	}
	return passf("4.13, Size1 %d", ex.size1)
}

func uintOption(id message.OptionID, v uint32) message.Option {
	buf := make([]byte, 4)
	n, _ := message.EncodeUint32(buf, v)
	return message.Option{ID: id, Value: buf[:n]}
}
