package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSeriesExistFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := NewRedeemer(reg)
	w := NewWorker(reg)
	if got := testutil.CollectAndCount(r.Decisions); got != len(DecisionTypes)*len(DecisionOutcomes) {
		t.Errorf("decisions series = %d", got)
	}
	if got := testutil.CollectAndCount(w.Handled); got != len(HandledOutcomes) {
		t.Errorf("handled series = %d", got)
	}
	if got := testutil.CollectAndCount(r.LinkChecks); got != len(LinkResults) {
		t.Errorf("link check series = %d", got)
	}
}

func TestAdminHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewWorker(reg).Received.Inc()
	var unhealthy error
	h := AdminHandler(reg, func() error { return unhealthy })

	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "approvals_worker_messages_received_total 1") {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz healthy: %d", code)
	}
	unhealthy = errors.New("draining")
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/healthz unhealthy: %d %q", code, body)
	}
}
