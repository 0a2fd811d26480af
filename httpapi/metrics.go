package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkey-dev/latchkey"
)

// metrics live on the server's own registry, never the global one, so that
// two servers in one process (tests) do not collide.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	signIns     *prometheus.CounterVec
	refreshes   *prometheus.CounterVec
	reuse       prometheus.Counter
	rateLimited *prometheus.CounterVec
	// rateLimiterErrors counts checks the shared limiter could not answer
	// (the in-process fallback decided them).
	rateLimiterErrors prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, e *latchkey.Engine) (*metrics, error) {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latchkey_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "latchkey_http_request_duration_seconds",
			Help: "HTTP request latency by route pattern.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latchkey_sign_ins_total",
			Help: "Sign-in attempts by result (success, failure)."}, []string{"result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latchkey_refreshes_total",
			Help: "Refresh attempts by outcome (rotated, or the error code)."}, []string{"outcome"}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{Name: "latchkey_reuse_detections_total",
			Help: "Refresh tokens presented again after rotation; each ended a session."}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latchkey_rate_limited_total",
			Help: "Requests refused by a rate limit, by limit."}, []string{"limit"}),
		rateLimiterErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "latchkey_rate_limiter_errors_total",
			Help: "Rate-limit checks the shared limiter failed to answer; the in-process fallback decided them."}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "latchkey_password_hash_queue_depth",
		Help: "Password hashes waiting for a worker."}, func() float64 { return float64(e.HashQueueDepth()) })
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.signIns, m.refreshes, m.reuse, m.rateLimited, m.rateLimiterErrors,
		queue, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
