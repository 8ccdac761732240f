package fleetsim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/coapbind"
)

// exchanger carries a light device's TEEP messages to the TAM: post sends
// one (empty to start a session) and returns the answer, nil when the TAM
// ends the session.
type exchanger interface {
	post(ctx context.Context, body []byte) ([]byte, error)
	close()
}

// httpExchanger is TEEP over HTTP (draft-ietf-teep-otrp-over-http-15 §5),
// without retries: a benchmark counts a failure, it does not hide it.
type httpExchanger struct {
	c   *http.Client
	url string
}

func (h *httpExchanger) post(ctx context.Context, body []byte) ([]byte, error) {
	return post(ctx, h.c, h.url, body)
}

func (h *httpExchanger) close() { h.c.CloseIdleConnections() }

// coapExchanger is TEEP over CoAP (docs/coap-binding.md) through the
// Broker's client, one attempt per message.
type coapExchanger struct {
	c   *broker.CoAPClient
	url string
}

func (c *coapExchanger) post(ctx context.Context, body []byte) ([]byte, error) {
	b, err := c.c.Post(ctx, c.url, body)
	if err != nil {
		var ce *broker.CoAPError
		if errors.As(err, &ce) {
			return nil, fail("coap-"+coapbind.Label(ce.Code), "%w", err)
		}
		return nil, fail("transport", "%w", err)
	}
	if len(b) > MaxResponseBytes {
		return nil, fail("protocol", "answer exceeds %d bytes", MaxResponseBytes)
	}
	return b, nil
}

func (c *coapExchanger) close() { c.c.Close() }

// newExchangers returns the transport of a TAM URL: http, https, coap,
// coaps (DTLS with certificates), coap+tcp or coaps+tcp, as a source of an
// exchanger per device. Over HTTP the devices share one client (its
// connection pool). Over CoAP each device has its own client, and so its
// own socket and source address, as a real device has: the TAM tells
// concurrent block-wise transfers apart by endpoint. roots verify a TLS or
// DTLS certificate (nil: the system's).
func newExchangers(tamURL string, concurrency int, roots *x509.CertPool) (func() exchanger, error) {
	u, err := broker.CheckTAMURI(tamURL)
	if err != nil {
		return nil, err
	}
	switch s := strings.ToLower(u.Scheme); {
	case s == "http" || s == "https":
		h := &httpExchanger{url: tamURL, c: httpClient(concurrency, roots)}
		return func() exchanger { return h }, nil
	default:
		return func() exchanger {
			return &coapExchanger{url: tamURL, c: broker.NewCoAPClient(broker.CoAPOptions{RootCAs: roots, ExchangeTimeout: time.Minute,
				MaxMessageSize: MaxResponseBytes, Retry: broker.Retry{MaxAttempts: 1}})}
		}, nil
	}
}

// httpClient is the devices' (and the admin API's) HTTP client: no
// redirects (draft-ietf-teep-otrp-over-http-15 §4), TLS 1.2 or later.
func httpClient(concurrency int, roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency, IdleConnTimeout: time.Minute,
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}}}
}

// ErrNotLoopback: the simulator loads a TAM hard; it drives one on this
// machine only unless told otherwise (Options.NonLoopbackUnsafe).
var ErrNotLoopback = errors.New("fleetsim: the TAM is not on a loopback address (the simulator loads it hard; --tam-non-loopback-unsafe allows it)")

// checkLoopback refuses a URL whose host is not a loopback address or
// "localhost" (resolved, every address loopback).
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("fleetsim: %q: %w", raw, err)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("fleetsim: %q: no host", raw)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%w: %s", ErrNotLoopback, host)
		}
		return nil
	}
	if !strings.EqualFold(host, "localhost") {
		return fmt.Errorf("%w: %s", ErrNotLoopback, host)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("fleetsim: %s: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%w: %s resolves to %s", ErrNotLoopback, host, ip)
		}
	}
	return nil
}
