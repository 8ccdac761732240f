package device

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/teep-go/teep/internal/broker"
)

// Run runs the device. With Options.Once it syncs every TEE until the TAM
// has nothing more to do and returns the outcome. Otherwise it is the
// daemon: it serves the local API on the state directory's socket (and
// metrics when asked), runs a policy check every Interval (jittered) until
// ctx ends, and gives a session in progress a grace period to finish.
func (d *Device) Run(ctx context.Context) error {
	if d.opts.Once {
		return d.broker.Sync(ctx, "")
	}
	return d.daemon(ctx)
}

func (d *Device) daemon(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	sock := filepath.Join(d.opts.StateDir, FileSocket)
	ln, err := broker.ListenUnix(sock)
	if err != nil {
		return fmt.Errorf("local API socket: %w", err)
	}
	defer os.Remove(sock)
	// Sessions run on work, which outlives ctx by the grace period.
	work, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	go d.grace(ctx, work, cancelWork)
	served := make(chan error, 1)
	go func() { served <- broker.Serve(ctx, ln, d.broker.LocalHandler(), apiShutdown, d.log) }()
	if err := d.serveMetrics(ctx); err != nil {
		stop()
		<-served
		return err
	}
	d.log.Info("device running", "tees", strings.Join(d.broker.TEEs(), ","), "socket", sock, "interval", d.opts.Interval)
	if d.opts.Ready != nil {
		d.opts.Ready(stop)
	}
	d.loop(ctx, work)
	d.log.Info("device shutting down")
	cancelWork()
	return <-served
}

// loop runs policy checks on work until ctx ends.
func (d *Device) loop(ctx, work context.Context) {
	for {
		if err := d.broker.Sync(work, ""); err != nil {
			d.log.Warn("policy check failed", "err", err)
		} else {
			d.log.Info("policy check complete", "next", time.Now().Add(d.opts.Interval).Format(time.RFC3339))
		}
		t := time.NewTimer(broker.Jitter(d.opts.Interval))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// grace aborts the work still going on GracePeriod after ctx ends.
func (d *Device) grace(ctx, work context.Context, abort context.CancelFunc) {
	<-ctx.Done()
	t := time.NewTimer(d.opts.GracePeriod)
	defer t.Stop()
	select {
	case <-t.C:
		d.log.Warn("shutdown grace period over; aborting the session in progress")
		abort()
	case <-work.Done():
	}
}

func (d *Device) serveMetrics(ctx context.Context) error {
	if d.opts.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", d.opts.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{}))
	go broker.Serve(ctx, ln, mux, metricsShutdown, d.log)
	d.log.Info("metrics", "addr", ln.Addr().String())
	return nil
}
