package broker

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Broker's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	sessions *prometheus.CounterVec // by tee, result
	active   *prometheus.GaugeVec   // by tee
	posts    *prometheus.CounterVec // by tee, outcome
}

// NewMetrics registers the Broker metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_broker_sessions_total",
			Help: "TEEP/HTTP sessions by TEE and result (ok, transport_error, agent_error, too_long).",
		}, []string{"tee", "result"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "teep_broker_sessions_active",
			Help: "TEEP/HTTP sessions in progress by TEE.",
		}, []string{"tee"}),
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_broker_http_posts_total",
			Help: "POSTs to TAMs (HTTP and CoAP) by TEE and outcome (ok, redirect, http_error, coap_error, error).",
		}, []string{"tee", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.sessions, m.active, m.posts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) sessionStarted(tee string) {
	if m != nil {
		m.active.WithLabelValues(tee).Inc()
	}
}

func (m *Metrics) sessionEnded(tee, result string) {
	if m != nil {
		m.active.WithLabelValues(tee).Dec()
		m.sessions.WithLabelValues(tee, result).Inc()
	}
}

func (m *Metrics) posted(tee string, err error) {
	if m == nil {
		return
	}
	var he *HTTPError
	var ce *CoAPError
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrRedirect):
		outcome = "redirect"
	case errors.As(err, &he):
		outcome = "http_error"
	case errors.As(err, &ce):
		outcome = "coap_error"
	default:
		outcome = "error"
	}
	m.posts.WithLabelValues(tee, outcome).Inc()
}
