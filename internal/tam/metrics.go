package tam

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus collectors. They are registered with
// Config.Registerer when one is given (the server passes its own registry,
// never the global one, so tests can run many engines side by side).
type metrics struct {
	sessions     prometheus.Counter
	messagesIn   *prometheus.CounterVec // by type
	messagesOut  *prometheus.CounterVec // by type
	rejected     *prometheus.CounterVec // by kind and reason
	agentErrors  *prometheus.CounterVec // by TEEP err-code name
	updates      *prometheus.CounterVec // by outcome
	attestations *prometheus.CounterVec // by status
	duration     *prometheus.HistogramVec
	// pendingRefused counts sessions refused because the device already
	// had Config.MaxPendingPerDevice outstanding Updates.
	pendingRefused prometheus.Counter
	// catalogCache counts sessions that planned from the cached catalog
	// (hit) or reloaded it (miss: first session, or a catalog change).
	catalogCache               *prometheus.CounterVec
	catalogHits, catalogMisses prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teep_tam_sessions_started_total", Help: "TEEP sessions started (QueryRequests sent for an empty POST).",
		}),
		messagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_messages_received_total", Help: "Validly signed TEEP messages received, by type.",
		}, []string{"type"}),
		messagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_messages_sent_total", Help: "TEEP messages sent, by type.",
		}, []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_messages_rejected_total", Help: "Incoming messages dropped, by kind of failure.",
		}, []string{"kind"}),
		agentErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_agent_errors_total", Help: "TEEP Error messages received from Agents, by err-code.",
		}, []string{"code"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_updates_completed_total", Help: "Updates answered by the Agent, by outcome (success, error).",
		}, []string{"outcome"}),
		attestations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_attestations_total", Help: "Attestation appraisals, by result.",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "teep_tam_handle_duration_seconds",
			Help:    "Time to process one incoming TEEP message (or session start), by message type.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"type"}),
		pendingRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teep_tam_pending_refused_total", Help: "Sessions refused (retry later) because the device already had the maximum of outstanding Updates.",
		}),
		catalogCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_catalog_cache_total", Help: "Sessions that planned from the cached catalog (hit) or read it from the store (miss).",
		}, []string{"result"}),
	}
	m.catalogHits, m.catalogMisses = m.catalogCache.WithLabelValues("hit"), m.catalogCache.WithLabelValues("miss")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sessions, m.messagesIn, m.messagesOut, m.rejected, m.agentErrors, m.updates, m.attestations, m.duration, m.pendingRefused, m.catalogCache} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("tam: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func hexOrNil(b []byte) any {
	if b == nil {
		return nil
	}
	return fmt.Sprintf("%x", b)
}
