package fleetsim

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/tam/teephttp"
)

// The transport floor replays as many rounds as the run measured, within
// [minTransportRounds, maxTransportRounds], transportBatches times, and
// keeps the median batch (as the signature floor does, so that a batch
// other load preempted does not move it).
const (
	minTransportRounds = 100
	maxTransportRounds = 1000
	transportBatches   = 5
)

// exchange is one POST of a round: what the device sent (empty: the
// session's start) and what the TAM answered (nil: 204).
type exchange struct {
	req, resp []byte
}

// recorder is a light device's exchanger that keeps the POSTs of the last
// round it completed, for the transport floor.
type recorder struct {
	exchanger
	mu        sync.Mutex
	cur, last []exchange
}

func (r *recorder) post(ctx context.Context, body []byte) ([]byte, error) {
	out, err := r.exchanger.post(ctx, body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(body) == 0 {
		r.cur = nil // a round starts with an empty POST
	}
	if err != nil {
		r.cur = nil
		return out, err
	}
	r.cur = append(r.cur, exchange{req: body, resp: out})
	if out == nil { // 204: the round is over
		r.last = r.cur
	}
	return out, err
}

// round returns the POSTs of the last completed round; nil if none (or
// for a nil recorder).
func (r *recorder) round() []exchange {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// transportFloor measures what net/http alone costs per round: this
// process's CPU time (both sides) for one round of the recorded POSTs,
// sent by concurrency clients through the devices' HTTP client and
// answered over loopback by a bare server with the recorded answers and
// the headers draft-ietf-teep-otrp-over-http-15 §4 asks for. No TEEP
// work, no database: added to the signature floor, it is what a round
// cannot cost less than over HTTP on this machine. It returns CPU
// nanoseconds per round, 0 where CPU time is unknown.
func transportFloor(ctx context.Context, round []exchange, rounds int64, concurrency int) (float64, error) {
	if len(round) == 0 {
		return 0, errors.New("fleetsim: transport floor: no recorded round")
	}
	rounds = min(max(rounds, minTransportRounds), maxTransportRounds)
	answers := make(map[string][]byte, len(round))
	for _, x := range round {
		answers[string(x.req)] = x.resp
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxResponseBytes))
		resp, ok := answers[string(body)]
		if err != nil || !ok {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		httpd.SecurityHeaders(w.Header())
		if resp == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", teephttp.MediaType)
		_, _ = w.Write(resp)
	})}
	go func() { _ = srv.Serve(ln) }() // until Close
	defer srv.Close()
	c := httpClient(concurrency, nil)
	defer c.CloseIdleConnections()
	url := "http://" + ln.Addr().String() + "/tam"
	one := func() error {
		for _, x := range round {
			if _, err := post(ctx, c, url, x.req); err != nil {
				return err
			}
		}
		return nil
	}
	if err := one(); err != nil { // and open the first connection
		return 0, err
	}
	var out []float64
	for range transportBatches {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, concurrency)
		cpu0 := cpuTime()
		for range concurrency {
			wg.Go(func() {
				for next.Add(1) <= rounds {
					if err := one(); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		cpu := cpuTime() - cpu0
		close(errs)
		if err := <-errs; err != nil {
			return 0, err
		}
		out = append(out, float64(cpu)/float64(rounds))
	}
	return median(out), nil
}
