package processor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the processor's Prometheus metrics. Create them with
// NewMetrics and pass them in Config.Metrics; nil disables metrics.
type Metrics struct {
	runs      *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	installed prometheus.Counter
	bytes     prometheus.Counter
	removed   prometheus.Counter
}

// NewMetrics registers the metrics with reg (prometheus.DefaultRegisterer
// when nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_suit_runs_total",
			Help: "SUIT procedures run, by procedure, result and SUIT_Report reason.",
		}, []string{"procedure", "result", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "teep_suit_run_duration_seconds",
			Help:    "Duration of SUIT procedures.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"procedure"}),
		installed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teep_suit_components_installed_total",
			Help: "Components installed by committed SUIT procedures.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teep_suit_installed_bytes_total",
			Help: "Bytes of components installed by committed SUIT procedures.",
		}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teep_suit_components_removed_total",
			Help: "Components removed by committed SUIT procedures.",
		}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.duration, m.installed, m.bytes, m.removed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe logs and counts a finished run.
func (p *Processor) observe(res *Result) {
	attrs := []any{"procedure", res.Procedure, "manifest", res.ManifestID.String(),
		"sequence", res.SequenceNumber, "digest", res.Digest.String(), "duration", res.Duration}
	if res.Failure != nil {
		p.log.Warn("suit: procedure failed", append(attrs, "reason", res.Failure.Reason.String(), "error", res.Failure.Error())...)
	} else {
		p.log.Info("suit: procedure succeeded", append(attrs, "installed", len(res.Installed), "removed", len(res.Removed))...)
	}
	m := p.cfg.Metrics
	if m == nil {
		return
	}
	result, reason := "success", "ok"
	if res.Failure != nil {
		result, reason = "failure", res.Failure.Reason.String()
	}
	m.runs.WithLabelValues(res.Procedure, result, reason).Inc()
	m.duration.WithLabelValues(res.Procedure).Observe(res.Duration.Seconds())
	for _, c := range res.Installed {
		m.installed.Inc()
		m.bytes.Add(float64(c.Size))
	}
	m.removed.Add(float64(len(res.Removed)))
}
