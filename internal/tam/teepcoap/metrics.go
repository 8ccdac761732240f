package teepcoap

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the binding, labelled by transport (udp, dtls, tcp, tls).
type metrics struct {
	requests        *prometheus.CounterVec // transport, code
	duration        *prometheus.HistogramVec
	retransmissions *prometheus.CounterVec // transport
	blocks          *prometheus.CounterVec // transport, option (block1, block2)
	reassemblies    *prometheus.CounterVec // transport
	rejected        *prometheus.CounterVec // transport, reason
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_coap_requests_total", Help: "TEEP CoAP requests handled, by transport and response code.",
		}, []string{"transport", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "teep_tam_coap_request_duration_seconds", Help: "TEEP CoAP request latency (whole body) by transport.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"transport"}),
		retransmissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_coap_retransmissions_total", Help: "Duplicate confirmable messages received (answered from the response cache), by transport.",
		}, []string{"transport"}),
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_coap_blocks_total", Help: "Block-wise messages received, by transport and option (block1: request blocks, block2: response continuations).",
		}, []string{"transport", "option"}),
		reassemblies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_coap_block1_reassemblies_total", Help: "Request bodies completed from Block1 transfers, by transport.",
		}, []string{"transport"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_coap_rejected_total", Help: "CoAP messages refused before reassembly (block options, sizes, peers), by transport and reason.",
		}, []string{"transport", "reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.retransmissions, m.blocks, m.reassemblies, m.rejected} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("teepcoap: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
