// Package suitmetrics counts SUIT processor runs in Prometheus: it is the
// processor.Observer a device registers so that the public processor
// library need not depend on Prometheus.
package suitmetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/teep-go/teep/suit/processor"
)

// Metrics are the processor's Prometheus metrics. It implements
// processor.Observer.
type Metrics struct {
	runs      *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	installed prometheus.Counter
	bytes     prometheus.Counter
	removed   prometheus.Counter
}

var _ processor.Observer = (*Metrics)(nil)

// New registers the metrics with reg (prometheus.DefaultRegisterer when
// nil).
func New(reg prometheus.Registerer) (*Metrics, error) {
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

// Observe counts one finished run.
func (m *Metrics) Observe(res *processor.Result) {
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
