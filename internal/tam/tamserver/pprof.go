package tamserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
)

// Sampling of the block and mutex profiles while --pprof serves them (both
// are off by default in Go, so /debug/pprof/block and /mutex would be
// empty): one event per 10 µs spent blocked on average, and one in 10
// mutex contentions. Coarse enough to cost little on the hot path, fine
// enough to show what a request waits for (a database connection, a lock).
const (
	blockProfileRate     = 10_000 // ns
	mutexProfileFraction = 10
)

// enableContentionProfiles turns on the block and mutex profiles; they are
// process-wide, so only a served profiling listener turns them on.
func enableContentionProfiles() {
	runtime.SetBlockProfileRate(blockProfileRate)
	runtime.SetMutexProfileFraction(mutexProfileFraction)
}

// ErrPprofNotLoopback refuses a profiling address that others could reach:
// profiles reveal memory contents and running code paths.
var ErrPprofNotLoopback = errors.New("tamserver: the pprof address must be a loopback address (127.0.0.1, ::1 or localhost)")

// listenPprof binds the profiling listener of Options.PprofAddr, loopback
// only.
func listenPprof(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tamserver: pprof address: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, ErrPprofNotLoopback
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tamserver: pprof: %w", err)
	}
	return ln, nil
}

// pprofHandler serves net/http/pprof under /debug/pprof/ on its own mux, so
// the profiling endpoints never appear on the TEEP or admin listeners.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
