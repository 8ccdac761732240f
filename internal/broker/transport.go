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
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/progress"
)

// MediaType is the TEEP media type (draft-ietf-teep-protocol-26 §11.1).
const MediaType = "application/teep+cbor"

// Defaults of the TEEP/HTTP client.
const (
	// DefaultMaxMessageSize bounds a TAM response; Updates carry whole
	// SUIT envelopes with integrated payloads, so it is generous.
	DefaultMaxMessageSize = 32 << 20
	DefaultRequestTimeout = 60 * time.Second
	DefaultBodyTimeout    = 10 * time.Minute
	DefaultMaxAttempts    = 4
	DefaultBaseDelay      = 500 * time.Millisecond
	DefaultMaxDelay       = 30 * time.Second
)

// Errors of the TEEP/HTTP client.
var (
	// ErrRedirect: the TAM answered with a redirect, which
	// draft-ietf-teep-otrp-over-http-15 §4 forbids following.
	ErrRedirect = errors.New("broker: TAM answered with a redirect, which is not followed")
	// ErrBadResponse: a response that is not a TEEP/HTTP response.
	ErrBadResponse = errors.New("broker: bad response from TAM")
)

// HTTPError is a TAM answer with an error status.
type HTTPError struct {
	Status int
	Body   string // first bytes of the body, for the log
}

func (e *HTTPError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("broker: TAM answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("broker: TAM answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Body)
}

// Retry is the retry policy for requests that did not reach the TAM or that
// the TAM could not serve (transport errors, 429, 502, 503, 504): exponential
// backoff with jitter, honouring Retry-After. Only the empty POST that starts
// a session is retried as it is: a TEEP message may have reached the TAM,
// which then consumed its token, so resending the same bytes would only be
// refused. The Broker restarts such a session from an empty POST instead.
type Retry struct {
	MaxAttempts int           // total attempts, ≥ 1
	BaseDelay   time.Duration // delay before the second attempt
	MaxDelay    time.Duration // cap on any one delay
}

// ClientOptions configure NewClient.
type ClientOptions struct {
	// RootCAs verify the TAM's certificate; nil uses the system roots.
	RootCAs *x509.CertPool
	// RequestTimeout bounds the wait for the TAM's response headers (0:
	// DefaultRequestTimeout); BodyTimeout bounds reading the body after
	// them (0: DefaultBodyTimeout), generous because an Update carries whole
	// Trusted Components. Neither bounds the Agent's own processing, which
	// draft-ietf-teep-otrp-over-http-15 §5.6 leaves to the Agent.
	RequestTimeout time.Duration
	BodyTimeout    time.Duration
	// MaxMessageSize bounds a response body (0: DefaultMaxMessageSize).
	MaxMessageSize int64
	// Retry policy (zero: the defaults above).
	Retry Retry
	// UserAgent is sent as User-Agent (draft-15 §4 allows an
	// implementation-specific value).
	UserAgent string
	// Transport replaces the HTTP transport (tests); RootCAs is then unused.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Progress, when a terminal, shows a bar while a response of at least
	// ProgressMinBytes (an Update carrying a large component) arrives.
	Progress io.Writer
}

// ProgressMinBytes is the smallest announced response body that gets a
// progress bar: below it a transfer is over before a bar would help.
const ProgressMinBytes = 1 << 20

// Client is a TEEP/HTTP client (draft-ietf-teep-otrp-over-http-15 §5).
type Client struct {
	http     *http.Client
	timeout  time.Duration
	bodyTO   time.Duration
	maxSize  int64
	retry    Retry
	ua       string
	log      *slog.Logger
	sleep    func(context.Context, time.Duration) error
	progress io.Writer

	// typedEmptyPOST holds the TAM URIs that refused an empty POST without
	// a Content-Type with 415 and took one with it (see Post).
	typedEmptyPOST sync.Map
}

// LoadCAFile reads PEM certificates for ClientOptions.RootCAs.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pool, err := httpd.LoadCertPool(path)
	if err != nil {
		return nil, fmt.Errorf("TAM CA file: %w", err)
	}
	return pool, nil
}

// NewClient returns a TEEP/HTTP client.
func NewClient(o ClientOptions) *Client {
	rt := o.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// BCP 195 (RFC 9325): TLS 1.2 or later.
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
		rt = t
	}
	c := &Client{
		timeout: orDuration(o.RequestTimeout, DefaultRequestTimeout),
		bodyTO:  orDuration(o.BodyTimeout, DefaultBodyTimeout),
		http: &http.Client{
			Transport: rt,
			// draft-15 §4: redirects MUST NOT be followed automatically.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Jar:           nil, // draft-15 §4: cookies are not used
		},
		maxSize:  o.MaxMessageSize,
		retry:    o.Retry,
		ua:       o.UserAgent,
		log:      o.Logger,
		sleep:    sleepCtx,
		progress: o.Progress,
	}
	if c.maxSize <= 0 {
		c.maxSize = DefaultMaxMessageSize
	}
	if c.retry.MaxAttempts <= 0 {
		c.retry.MaxAttempts = DefaultMaxAttempts
	}
	c.retry.BaseDelay = orDuration(c.retry.BaseDelay, DefaultBaseDelay)
	c.retry.MaxDelay = orDuration(c.retry.MaxDelay, DefaultMaxDelay)
	if c.ua == "" {
		c.ua = "teep-go-broker"
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// CheckTAMURI validates a TAM URI: absolute http, https or one of the CoAP
// schemes (docs/coap-binding.md), with a host.
func CheckTAMURI(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("TAM URI %q: %w", uri, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" && !IsCoAPScheme(u.Scheme) {
		return nil, fmt.Errorf("TAM URI %q: scheme must be https, http, coaps, coap, coaps+tcp or coap+tcp", uri)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("TAM URI %q: no host", uri)
	}
	if u.User != nil {
		return nil, fmt.Errorf("TAM URI %q: user information is not allowed", uri)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("TAM URI %q: fragment is not allowed", uri)
	}
	return u, nil
}

// Post sends one TEEP/HTTP request: an empty body starts a session, a
// non-empty one carries a TEEP message. It returns the TAM's message, or
// nil when the TAM answered without content (the session is over).
func (c *Client) Post(ctx context.Context, uri string, msg []byte) ([]byte, error) {
	if u, err := CheckTAMURI(uri); err != nil {
		return nil, err
	} else if IsCoAPScheme(u.Scheme) {
		return nil, fmt.Errorf("TAM URI %q: a CoAP URI needs the CoAP client", uri)
	}
	var last error
	attempts := c.retry.MaxAttempts
	if len(msg) > 0 {
		attempts = 1 // see Retry: the Broker restarts the session instead
	}
	for attempt := 1; ; attempt++ {
		body, retryAfter, err := c.postOnce(ctx, uri, msg)
		if err == nil {
			return body, nil
		}
		last = err
		if len(msg) == 0 && isStatus(err, http.StatusUnsupportedMediaType) {
			if _, known := c.typedEmptyPOST.LoadOrStore(uri, true); !known {
				// draft-15 §5.1 sends the empty POST with only an Accept
				// header; some TAMs want a Content-Type anyway. Be liberal:
				// try once more with one, and remember it for this TAM.
				c.log.Warn("TAM refused an empty POST without Content-Type (415), which draft-ietf-teep-otrp-over-http-15 §5.1 sends; retrying with Content-Type for this TAM", "tam", uri)
				attempt--
				continue
			}
		}
		if !retryable(err) || attempt >= attempts || ctx.Err() != nil {
			break
		}
		d := c.backoff(attempt, retryAfter)
		c.log.Warn("TAM request failed, retrying", "tam", uri, "attempt", attempt, "delay", d, "err", err)
		if err := c.sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("%w (gave up waiting to retry: %v)", last, err)
		}
	}
	return nil, last
}

// backoff is the delay before attempt+1: BaseDelay·2^(attempt-1), capped,
// with "equal jitter" (a uniform draw from the upper half), or the server's
// Retry-After when that is longer (still capped).
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	return c.retry.delay(attempt, retryAfter)
}

// delay is the backoff of both transports (HTTP and CoAP).
func (r Retry) delay(attempt int, retryAfter time.Duration) time.Duration {
	d := r.BaseDelay << min(attempt-1, 30)
	if d <= 0 || d > r.MaxDelay {
		d = r.MaxDelay
	}
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, r.MaxDelay)
	}
	return d
}

// isStatus says whether err is the TAM answering with HTTP status code.
func isStatus(err error, code int) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == code
}

type retryableError struct{ error }

func (r retryableError) Unwrap() error { return r.error }

func retryable(err error) bool {
	var r retryableError
	return errors.As(err, &r)
}

// errTimedOut marks an attempt cancelled by the client's own timers.
var errTimedOut = errors.New("timed out")

func (c *Client) postOnce(ctx context.Context, uri string, msg []byte) ([]byte, time.Duration, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(c.timeout, func() {
		cancel(fmt.Errorf("%w: no response headers within %v", errTimedOut, c.timeout))
	})
	defer timer.Stop()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, uri, bytes.NewReader(msg))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", MediaType)
	if _, typed := c.typedEmptyPOST.Load(uri); len(msg) > 0 || typed {
		req.Header.Set("Content-Type", MediaType)
	}
	req.Header.Set("User-Agent", c.ua)
	resp, err := c.http.Do(req)
	if err != nil {
		if cause := context.Cause(actx); errors.Is(cause, errTimedOut) {
			return nil, 0, retryableError{fmt.Errorf("broker: POST %s: %w", uri, cause)}
		}
		if ctx.Err() != nil {
			return nil, 0, err
		}
		err = fmt.Errorf("broker: POST %s: %w", uri, err)
		if transient(err) {
			return nil, 0, retryableError{err}
		}
		return nil, 0, err
	}
	defer resp.Body.Close()
	timer.Stop()
	// A timer of its own: the deferred Stop above holds the first one.
	bodyTimer := time.AfterFunc(c.bodyTO, func() {
		cancel(fmt.Errorf("%w: body not read within %v", errTimedOut, c.bodyTO))
	})
	defer bodyTimer.Stop()
	var src io.Reader = resp.Body
	if c.progress != nil {
		src = progress.Transfer(src, c.progress, "receiving from TAM", resp.ContentLength, ProgressMinBytes)
	}
	body, err := io.ReadAll(io.LimitReader(src, c.maxSize+1))
	if err != nil {
		if cause := context.Cause(actx); errors.Is(cause, errTimedOut) {
			err = cause
		}
		return nil, 0, retryableError{fmt.Errorf("broker: read response from %s: %w", uri, err)}
	}
	if int64(len(body)) > c.maxSize {
		return nil, 0, fmt.Errorf("%w: body larger than %d bytes", ErrBadResponse, c.maxSize)
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, 0, fmt.Errorf("%w (%d to %q)", ErrRedirect, resp.StatusCode, resp.Header.Get("Location"))
	case resp.StatusCode >= 400:
		he := &HTTPError{Status: resp.StatusCode, Body: snippet(body, resp.Header.Get("Content-Type"))}
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return nil, retryAfter(resp.Header.Get("Retry-After")), retryableError{he}
		}
		return nil, 0, he
	case resp.StatusCode < 200:
		return nil, 0, fmt.Errorf("%w: status %d", ErrBadResponse, resp.StatusCode)
	}
	if len(body) == 0 {
		return nil, 0, nil // 204 (or any 2xx without content): session over
	}
	if ct := resp.Header.Get("Content-Type"); !isTEEPMediaType(ct) {
		return nil, 0, fmt.Errorf("%w: Content-Type %q, want %s", ErrBadResponse, ct, MediaType)
	}
	return body, 0, nil
}

// transient tells network failures worth retrying (refused connections,
// resets, timeouts) from ones that will not change (a certificate the
// client does not trust, a malformed URL).
func transient(err error) bool {
	var (
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
		rhe tls.RecordHeaderError
	)
	if errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie) || errors.As(err, &rhe) {
		return false
	}
	var oe *net.OpError
	var ne net.Error
	return errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// isTEEPMediaType accepts the TEEP media type, ignoring case and spaces.
// The type has no parameters (§11.1), so any parameter makes it another type.
func isTEEPMediaType(ct string) bool {
	return strings.EqualFold(strings.TrimSpace(ct), MediaType)
}

// snippet is what an error answer of the TAM said: a problem document's
// detail, the start of a text body, or its size and type.
func snippet(body []byte, ct string) string { return httpd.ErrorText(ct, body) }

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
