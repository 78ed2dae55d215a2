package redeemer

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// routeMetrics hands out http_requests_total's and
// http_request_duration_seconds's children by route and status code.
// WithLabelValues hashes and looks up its labels on every call, a
// noticeable part of a GET; these are resolved once. A request counter is
// resolved on first use, as WithLabelValues would create it, so the
// series exposed are the same: only the codes actually answered.
type routeMetrics struct {
	m         *metrics.Redeemer
	durations [len(routeNames)]prometheus.Observer
	counters  [len(routeNames)][maxStatus - minStatus]atomic.Pointer[prometheus.Counter]
}

// routeNames index routeMetrics' arrays; every route ServeHTTP names is one.
var routeNames = [...]string{routeLinkGet, routeLinkPost, routeOther}

// The status codes cached: net/http writes only three-digit codes.
const minStatus, maxStatus = 100, 600

func (rm *routeMetrics) init(m *metrics.Redeemer) {
	rm.m = m
	for i, name := range routeNames {
		rm.durations[i] = m.HTTPDuration.WithLabelValues(name)
	}
}

func routeIndex(route string) int {
	for i, name := range routeNames {
		if name == route {
			return i
		}
	}
	return -1
}

func (rm *routeMetrics) duration(route string) prometheus.Observer {
	if i := routeIndex(route); i >= 0 {
		return rm.durations[i]
	}
	return rm.m.HTTPDuration.WithLabelValues(route)
}

func (rm *routeMetrics) requests(route string, code int) prometheus.Counter {
	i := routeIndex(route)
	if i < 0 || code < minStatus || code >= maxStatus {
		return rm.m.HTTPRequests.WithLabelValues(route, strconv.Itoa(code))
	}
	p := &rm.counters[i][code-minStatus]
	if c := p.Load(); c != nil {
		return *c
	}
	c := rm.m.HTTPRequests.WithLabelValues(route, strconv.Itoa(code))
	p.Store(&c)
	return c
}
