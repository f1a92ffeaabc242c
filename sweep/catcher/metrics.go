package catcher

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/sweep/control"
)

type metrics struct {
	replies                                        [4]prometheus.Counter
	sent, sendErrors, blocked, drops, storeDropped prometheus.Counter
	sweeps                                         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, a *Agent) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "catchmap_catch_" + name, Help: help})
	}
	m := &metrics{
		sent:         counter("sent_total", "Echo requests sent from the anycast address."),
		sendErrors:   counter("send_errors_total", "Echo requests the kernel refused to send."),
		blocked:      counter("blocked_total", "Targets not probed because this site's allow or block list excludes them."),
		drops:        counter("kernel_drops_total", "Replies the kernel dropped because the catching socket's receive buffer was full."),
		storeDropped: counter("store_dropped_total", "Replies caught but not kept because the store was full."),
		sweeps:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "catchmap_catch_sweeps", Help: "Sweeps this site knows now."}),
	}
	byClass := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "catchmap_catch_replies_total",
		Help: "Echo replies to the anycast address, by class: caught, other_source, forged, stray."}, []string{"class"})
	for i, c := range control.Classes {
		m.replies[i] = byClass.WithLabelValues(c)
	}
	var errs []error
	for _, c := range []prometheus.Collector{byClass, m.sent, m.sendErrors, m.blocked, m.drops, m.storeDropped, m.sweeps,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catchmap_catch_read_buffer_bytes",
			Help: "The catching socket's receive buffer as the kernel granted it."}, func() float64 { return float64(a.sock.ReadBuffer()) }),
	} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
