package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/teep-go/teep/internal/progress"
	"github.com/teep-go/teep/suit/processor"
)

// Defaults for HTTP.
const (
	DefaultMaxSize        = 4 << 30
	DefaultConnectTimeout = 10 * time.Second
	DefaultHeaderTimeout  = 30 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	MaxRedirects          = 5
)

// ProgressMinBytes is the smallest announced payload that gets a progress
// bar.
const ProgressMinBytes = 1 << 20

// ErrTooLarge is returned when a body exceeds MaxSize.
var ErrTooLarge = errors.New("fetch: payload exceeds the size limit")

// HTTP fetches https URIs (and http ones only with AllowHTTPUnsafe).
// Bodies are streamed; the processor hashes and stages them as they arrive.
type HTTP struct {
	// Client overrides the default client (which has connect, TLS and
	// header timeouts and refuses redirects to http).
	Client *http.Client
	// MaxSize refuses bodies larger than this (by Content-Length up front,
	// and while reading). Default DefaultMaxSize.
	MaxSize int64
	// IdleTimeout aborts a transfer that makes no progress for this long.
	IdleTimeout time.Duration
	// AllowHTTPUnsafe permits plain http:// URIs.
	AllowHTTPUnsafe bool
	UserAgent       string
	// Progress, when a terminal, shows a bar while a payload of at least
	// ProgressMinBytes downloads.
	Progress io.Writer

	once   sync.Once
	client *http.Client
}

func (h *HTTP) init() {
	h.once.Do(func() {
		if h.Client != nil {
			h.client = h.Client
			return
		}
		dialer := &net.Dialer{Timeout: DefaultConnectTimeout, KeepAlive: 30 * time.Second}
		tr := &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   DefaultConnectTimeout,
			ResponseHeaderTimeout: DefaultHeaderTimeout,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          4,
			IdleConnTimeout:       90 * time.Second,
		}
		h.client = &http.Client{Transport: tr, CheckRedirect: h.checkRedirect}
	})
}

func (h *HTTP) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return fmt.Errorf("fetch: more than %d redirects", MaxRedirects)
	}
	if req.URL.Scheme != "https" && !(h.AllowHTTPUnsafe && req.URL.Scheme == "http") {
		return fmt.Errorf("fetch: refusing redirect to %s", req.URL.Redacted())
	}
	return nil
}

func (h *HTTP) maxSize() int64 {
	if h.MaxSize > 0 {
		return h.MaxSize
	}
	return DefaultMaxSize
}

// Fetch implements processor.Fetcher.
func (h *HTTP) Fetch(ctx context.Context, uri string) (io.ReadCloser, int64, error) {
	h.init()
	u, err := url.Parse(uri)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch: %w", err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && h.AllowHTTPUnsafe:
	case u.Scheme == "http":
		return nil, 0, fmt.Errorf("fetch: plain http is not allowed (%s)", u.Redacted())
	default:
		return nil, 0, fmt.Errorf("fetch: unsupported scheme %q", u.Scheme)
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, 0, fmt.Errorf("fetch: %w", err)
	}
	if h.UserAgent != "" {
		req.Header.Set("User-Agent", h.UserAgent)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		cancel()
		return nil, 0, fmt.Errorf("fetch: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, 0, fmt.Errorf("fetch: %s: %s", u.Redacted(), resp.Status)
	}
	limit := h.maxSize()
	if resp.ContentLength > limit {
		resp.Body.Close()
		cancel()
		return nil, 0, fmt.Errorf("%w: %s announces %d bytes (limit %d)", ErrTooLarge, u.Redacted(), resp.ContentLength, limit)
	}
	idle := h.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	var src io.Reader = resp.Body
	if h.Progress != nil {
		src = progress.Transfer(src, h.Progress, "fetching "+path.Base(u.Path), resp.ContentLength, ProgressMinBytes)
	}
	b := &body{ctx: ctx, rc: resp.Body, src: src, cancel: cancel, limit: limit, idle: idle}
	b.timer = time.AfterFunc(idle, func() { b.timedOut.Store(true); cancel() })
	return b, resp.ContentLength, nil
}

// body enforces the size limit and the idle timeout while the processor reads.
type body struct {
	ctx      context.Context
	rc       io.ReadCloser
	src      io.Reader // rc, or rc counted on a progress bar
	cancel   context.CancelFunc
	limit    int64
	n        int64
	idle     time.Duration
	timer    *time.Timer
	timedOut atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.timedOut.Load() {
		return 0, fmt.Errorf("fetch: no data for %s", b.idle)
	}
	if err := b.ctx.Err(); err != nil {
		return 0, fmt.Errorf("fetch: %w", err)
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if b.n > b.limit {
		return n, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, b.limit)
	}
	if err != nil {
		// A cancelled transfer may surface as a plain EOF: never let it
		// pass for a complete body.
		if b.timedOut.Load() {
			return n, fmt.Errorf("fetch: no data for %s", b.idle)
		}
		if cerr := b.ctx.Err(); cerr != nil {
			return n, fmt.Errorf("fetch: %w", cerr)
		}
	}
	return n, err
}

func (b *body) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel()
	return err
}

// Files serves URIs from local files, for offline installs and tests: an
// exact entry in Map wins, otherwise the last path segment of the URI is
// looked up in Dir.
type Files struct {
	Map map[string]string // URI -> file
	Dir string
}

// Fetch implements processor.Fetcher.
func (f *Files) Fetch(_ context.Context, uri string) (io.ReadCloser, int64, error) {
	name, ok := f.Map[uri]
	if !ok && f.Dir != "" {
		if u, err := url.Parse(uri); err == nil {
			base := path.Base(u.Path)
			if base != "." && base != "/" && base != ".." && !strings.ContainsAny(base, `/\`) {
				name, ok = filepath.Join(f.Dir, base), true
			}
		}
	}
	if !ok {
		return nil, 0, fmt.Errorf("%w: no local file for %s", processor.ErrNotFound, uri)
	}
	file, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, fmt.Errorf("%w: %s (for %s)", processor.ErrNotFound, name, uri)
		}
		return nil, 0, fmt.Errorf("fetch: %w", err)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, fmt.Errorf("fetch: %w", err)
	}
	return file, st.Size(), nil
}

// Chain tries each fetcher in turn and returns the first success; a fetcher
// that answers ErrNotFound passes to the next.
type Chain []processor.Fetcher

// Fetch implements processor.Fetcher.
func (c Chain) Fetch(ctx context.Context, uri string) (io.ReadCloser, int64, error) {
	var errs []error
	for _, f := range c {
		rc, n, err := f.Fetch(ctx, uri)
		if err == nil {
			return rc, n, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, processor.ErrNotFound) {
			break
		}
	}
	if len(errs) == 0 {
		return nil, 0, fmt.Errorf("%w: no fetcher for %s", processor.ErrNotFound, uri)
	}
	return nil, 0, errors.Join(errs...)
}
